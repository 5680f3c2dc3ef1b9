"""TokenVerifier with a shared HS256 secret: who a token says the caller is, and every reason to refuse it."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from parley.auth import LEEWAY_SECONDS, MAX_TOKEN_BYTES, Identity, SharedSecret, TokenVerifier
from parley.config import Settings
from parley.errors import BadRequest, InvalidToken

SECRET = "test-secret-that-is-long-enough-for-hs256!"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "alice",
        "workspace": "acme",
        "name": "Alice",
        "exp": int(time.time()) + 600,
        "iat": int(time.time()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(secret: str = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def verifier(**kwargs: Any) -> TokenVerifier:
    return TokenVerifier(SharedSecret(lambda: SECRET), **kwargs)


def reason(raw: str | None, **kwargs: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier(**kwargs).verify(raw)
    return caught.value.reason


# ---- accepted --------------------------------------------------------------------------------------


def test_a_valid_token_is_the_identity_it_claims():
    exp = int(time.time()) + 600
    identity = verifier().verify(token(exp=exp))
    assert identity == Identity(user_id="alice", name="Alice", workspace="acme", expires_at=exp)


def test_the_name_defaults_to_the_subject():
    assert verifier().verify(token(name=None)).name == "alice"


def test_the_authorizer_context_carries_the_identity():
    exp = int(time.time()) + 600
    context = verifier().verify(token(exp=exp)).authorizer_context()
    assert context == {"userId": "alice", "userName": "Alice", "workspace": "acme", "tokenExp": exp}


def test_a_token_expired_within_the_leeway_is_accepted():
    assert verifier().verify(token(exp=int(time.time()) - LEEWAY_SECONDS + 5)).user_id == "alice"


def test_issuer_and_audience_are_ignored_when_not_configured():
    assert verifier().verify(token(iss="someone", aud="something")).user_id == "alice"


def test_issuer_and_audience_are_accepted_when_they_match():
    raw = token(iss="https://issuer.example", aud="parley")
    assert verifier(issuer="https://issuer.example", audience="parley").verify(raw).user_id == "alice"


def test_the_secret_is_fetched_per_verification_so_rotation_needs_no_restart():
    secrets = iter([SECRET, "a-rotated-secret-that-is-also-long-enough"])
    rotating = TokenVerifier(SharedSecret(lambda: next(secrets)))
    assert rotating.verify(token()).user_id == "alice"
    assert rotating.verify(token(secret="a-rotated-secret-that-is-also-long-enough")).user_id == "alice"


def test_a_float_exp_is_truncated_to_seconds():
    exp = time.time() + 600.7
    assert verifier().verify(token(exp=exp)).expires_at == int(exp)


@pytest.mark.parametrize("sub", ["auth0|123", "u" * 128, "名前", "a.b@example.com"])
def test_subjects_without_whitespace_or_hash_are_accepted(sub):
    assert verifier().verify(token(sub=sub)).user_id == sub


# ---- refused ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, ""])
def test_a_missing_token_is_refused(raw):
    assert reason(raw) == "missing token"


def test_an_oversized_token_is_refused_before_parsing():
    raw = token(name="n" * 50) + "x" * MAX_TOKEN_BYTES
    assert reason(raw) == "token too large"


@pytest.mark.parametrize("raw", ["garbage", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9"])
def test_a_malformed_token_is_refused(raw):
    assert reason(raw) == "malformed token"


def test_an_unsigned_alg_none_token_is_refused():
    header = (
        base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    )
    payload = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    assert reason(f"{header}.{payload}.") == "algorithm 'none' not accepted"


def test_another_hmac_algorithm_is_refused():
    assert reason(token(secret=SECRET * 2, algorithm="HS512")) == "algorithm 'HS512' not accepted"


def test_an_asymmetric_token_is_refused_by_a_shared_secret_verifier():
    key = ec.generate_private_key(ec.SECP256R1())
    raw = jwt.encode(claims(), key, algorithm="ES256")
    assert reason(raw) == "algorithm 'ES256' not accepted"


def test_a_token_signed_with_another_secret_is_refused():
    assert reason(token(secret="another-secret-that-is-long-enough-too!")) == "InvalidSignatureError"


def test_a_tampered_payload_is_refused():
    header, _, signature = token().split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="mallory")).encode()).rstrip(b"=").decode()
    assert reason(f"{header}.{forged}.{signature}") == "InvalidSignatureError"


def test_a_token_expired_beyond_the_leeway_is_refused():
    assert reason(token(exp=int(time.time()) - LEEWAY_SECONDS - 5)) == "expired"


def test_a_token_not_yet_valid_is_refused():
    assert reason(token(nbf=int(time.time()) + LEEWAY_SECONDS + 60)) == "not yet valid"


@pytest.mark.parametrize("claim", ["sub", "workspace", "exp", "iat"])
def test_a_token_without_a_required_claim_is_refused(claim):
    missing: dict[str, Any] = {claim: None}
    assert reason(token(**missing)) == "MissingRequiredClaimError"


def test_a_non_numeric_exp_is_refused():
    assert reason(token(exp="tomorrow")) == "DecodeError"


def test_a_numeric_string_exp_is_refused():
    # PyJWT reads "1790000000" as a number; the identity needs a real one for tokenExp
    assert reason(token(exp=str(int(time.time()) + 600))) == "bad exp claim"


@pytest.mark.parametrize("sub", ["", "bob smith", "bob#1", "u" * 129, 42, ["alice"]])
def test_a_bad_subject_is_refused(sub):
    assert reason(token(sub=sub)) in ("bad sub claim", "InvalidSubjectError")


@pytest.mark.parametrize("workspace", ["", "a b", "acme#1", "w" * 65, "ümlaut", 7, True])
def test_a_bad_workspace_is_refused(workspace):
    assert reason(token(workspace=workspace)) == "bad workspace claim"


@pytest.mark.parametrize("name", ["", "n" * 101, 5, {"first": "Al"}])
def test_a_bad_name_is_refused(name):
    assert reason(token(name=name)) == "bad name claim"


# Python's `$` matches before a trailing newline; a `match` with `^...$` let these through.
INVISIBLE = {
    "a trailing newline": "\n",
    "a bidi override (U+202E)": "\u202e",
    "a right-to-left mark (U+200F)": "\u200f",
    "a zero-width space (U+200B)": "\u200b",
    "a byte-order mark (U+FEFF)": "\ufeff",
    "a line separator (U+2028)": "\u2028",
    "a paragraph separator (U+2029)": "\u2029",
    "a NUL": "\x00",
    "a C1 control (U+0085)": "\x85",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_subject_with_a_control_format_or_separator_character_is_refused(char):
    assert reason(token(sub=f"alice{char}")) == "bad sub claim"


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_a_name_with_a_control_format_or_separator_character_is_refused(char):
    assert reason(token(name=f"Alice{char}")) == "bad name claim"


def test_a_workspace_with_a_trailing_newline_is_refused():
    assert reason(token(workspace="acme\n")) == "bad workspace claim"


def test_a_name_of_only_spaces_is_refused():
    assert reason(token(name="   ")) == "bad name claim"


def test_a_name_with_spaces_and_accents_is_accepted():
    assert verifier().verify(token(name="Zoë van Dijk")).name == "Zoë van Dijk"


def test_the_protocol_refuses_exactly_the_user_ids_the_authorizer_refuses():
    # the same rule (parley.names) on both sides: a frame may name any user a token can be
    from parley.protocol import InviteFrame, parse_frame

    for sub in ["alice", "auth0|123", *(f"alice{c}" for c in INVISIBLE.values()), "bob smith", "b#1"]:
        try:
            verifier().verify(token(sub=sub))
            token_ok = True
        except InvalidToken:
            token_ok = False
        try:
            parse_frame(json.dumps({"action": "invite", "channel": "general", "user": sub}), InviteFrame)
            frame_ok = True
        except BadRequest:
            frame_ok = False
        assert token_ok == frame_ok, sub


# ---- token lifetime ------------------------------------------------------------------------------


def test_a_token_living_longer_than_24_hours_is_refused():
    now = int(time.time())
    assert reason(token(iat=now, exp=now + 24 * 3600 + 1)) == "token lifetime (exp - iat) above the maximum"


def test_a_token_living_exactly_24_hours_is_accepted():
    now = int(time.time())
    assert verifier().verify(token(iat=now, exp=now + 24 * 3600)).expires_at == now + 24 * 3600


def test_the_maximum_lifetime_is_configurable():
    now = int(time.time())
    short = TokenVerifier(SharedSecret(lambda: SECRET), max_lifetime_s=600)
    with pytest.raises(InvalidToken):
        short.verify(token(iat=now, exp=now + 601))
    assert short.verify(token(iat=now, exp=now + 600)).user_id == "alice"


def test_an_iat_in_the_past_does_not_stretch_the_lifetime():
    # a token minted a year ago with an exp still ahead is refused: its lifetime counts from iat
    now = int(time.time())
    assert (
        reason(token(iat=now - 365 * 86400, exp=now + 600)) == "token lifetime (exp - iat) above the maximum"
    )


@pytest.mark.parametrize("iat", ["1790000000", True])
def test_a_non_numeric_iat_is_refused(iat):
    assert reason(token(iat=iat)) in ("bad iat claim", "InvalidIssuedAtError")


def test_the_settings_give_the_verifier_its_maximum_lifetime():
    from parley.deps import build_verifier

    settings = Settings(
        state_table="s",
        messages_table="m",
        idempotency_table="i",
        connections_endpoint="https://x",
        jwt_secret_param="/p",
        max_token_lifetime_seconds=3600,
    )
    assert build_verifier(settings)._max_lifetime_s == 3600


def test_a_wrong_issuer_is_refused_when_one_is_configured():
    assert reason(token(iss="https://evil.example"), issuer="https://issuer.example") == "InvalidIssuerError"


def test_a_missing_issuer_is_refused_when_one_is_configured():
    assert reason(token(), issuer="https://issuer.example") == "MissingRequiredClaimError"


def test_a_wrong_audience_is_refused_when_one_is_configured():
    assert reason(token(aud="other"), audience="parley") == "InvalidAudienceError"


def test_a_missing_audience_is_refused_when_one_is_configured():
    assert reason(token(), audience="parley") == "MissingRequiredClaimError"


def test_a_cognito_access_token_is_refused():
    # an access token carries client_id, not aud: Parley accepts only ID tokens (token_use "id")
    assert reason(token(token_use="access")) == "bad token_use claim"


def test_a_cognito_id_token_is_accepted():
    assert verifier().verify(token(token_use="id")).user_id == "alice"


def test_refusal_reasons_never_contain_the_token():
    raw = token(secret="another-secret-that-is-long-enough-too!")
    assert raw not in reason(raw)
    assert SECRET not in reason(raw)


# ---- settings: what a JWKS deployment must name ----------------------------------------------------

BASE_ENV = {
    "STATE_TABLE": "state",
    "MESSAGES_TABLE": "messages",
    "IDEMPOTENCY_TABLE": "idempotency",
    "CONNECTIONS_ENDPOINT": "https://api.example/prod",
    "JWKS_URL": "https://idp.example/.well-known/jwks.json",
}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "JWT_ISSUER and JWT_AUDIENCE"),
        ({"JWT_ISSUER": "https://idp.example/"}, "JWT_AUDIENCE"),
        ({"JWT_AUDIENCE": "parley-web"}, "JWT_ISSUER"),
    ],
    ids=["neither", "no audience", "no issuer"],
)
def test_a_jwks_container_without_issuer_or_audience_fails_at_cold_start(env, missing):
    # Given JWKS_URL without an issuer or an audience (a JWKS signs every app of its identity provider)
    # When the settings are read
    with pytest.raises(RuntimeError) as caught:
        Settings.from_env(BASE_ENV | env)
    # Then the error names what is missing
    assert str(caught.value) == f"Parley is misconfigured: JWKS_URL is set, so {missing} must be set too"


def test_a_jwks_container_with_issuer_and_audience_starts():
    env = BASE_ENV | {"JWT_ISSUER": "https://idp.example/", "JWT_AUDIENCE": "parley-web"}
    assert Settings.from_env(env).jwt_audience == "parley-web"


def test_a_shared_secret_container_needs_neither_issuer_nor_audience():
    env = {k: v for k, v in BASE_ENV.items() if k != "JWKS_URL"} | {"JWT_SECRET_PARAM": "/parley/jwt"}
    assert Settings.from_env(env).jwt_issuer == ""
