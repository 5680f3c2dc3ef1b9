"""The `$connect` authorizer under moto: which tokens open a connection, which are refused, what is logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.events import API_ID, DOMAIN, STAGE, authorizer_event
from tests.support.handlers import LambdaContext, load
from tests.support.world import JWT_SECRET, MotoAws

CONNECT_ARN = f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/{STAGE}/$connect"
LEEWAY_S = 30
MAX_TOKEN_BYTES = 4096
KID = "parley-test-key"
EC_KID = "parley-ec-key"
P384_KID = "parley-p384-key"
OCT_KID = "parley-hmac-key"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
P384_KEY = ec.generate_private_key(ec.SECP384R1())
OCT_SECRET = b"an-hmac-secret-in-a-jwks-of-thirty-two-bytes-or-more"


# ---- token building ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for alice@acme, five minutes to live; an override of None removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "workspace": "acme", "exp": now + 300, "iat": now}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs256(payload: dict[str, Any], secret: str | bytes = JWT_SECRET, **headers: Any) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWT built without PyJWT (which refuses to build these): HMAC-SHA256 with `key`, or unsigned."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@dataclass(frozen=True)
class RsaKey:
    private: rsa.RSAPrivateKey
    public_pem: bytes

    def sign(self, payload: dict[str, Any], kid: str | None = KID) -> str:
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(payload, self.private, algorithm="RS256", headers=headers)

    def jwk(self, kid: str = KID) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return jwk | {"kid": kid, "alg": "RS256", "use": "sig"}


def _rsa_key() -> RsaKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return RsaKey(private, pem)


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def other_rsa_key() -> RsaKey:
    return _rsa_key()


def sized_token(target_bytes: int) -> str:
    """A valid HS256 token of exactly `target_bytes`, padded with an extra claim and header field."""
    for pad in range(target_bytes * 3 // 4 - 400, target_bytes * 3 // 4):
        for kid in ("", "k", "kk", "kkk"):
            token = hs256(claims(pad="x" * pad), **({"kid": kid} if kid else {}))
            if len(token) == target_bytes:
                return token
    raise AssertionError(f"no token of exactly {target_bytes} bytes")


# ---- driving the authorizer ----------------------------------------------------------------------


@pytest.fixture
def authorizer(moto_aws: MotoAws) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """The real authorizer handler, HS256 mode with the SSM secret; parameter cache cleared per test."""
    from aws_lambda_powertools.utilities import parameters

    from parley import config, deps

    parameters.clear_caches()
    handler = load("authorizer").handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = handler(event, LambdaContext(function_name="parley-authorizer"))
        return result

    yield invoke
    # a test may have reconfigured (JWKS, issuer): leave no such settings cached for the next module
    config.settings.cache_clear()
    deps.verifier.cache_clear()
    parameters.clear_caches()


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Set authorizer settings as a new container would read them at cold start."""
    from parley import config, deps

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    deps.verifier.cache_clear()


def assert_refused(invoke: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any]) -> None:
    with pytest.raises(Exception) as refused:  # API Gateway needs exactly this
        invoke(event)
    assert type(refused.value) is Exception
    assert str(refused.value) == "Unauthorized"


def expected_policy(user: str, name: str, workspace: str, exp: int) -> dict[str, Any]:
    return {
        "principalId": user,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [CONNECT_ARN]}],
        },
        "context": {"userId": user, "userName": name, "workspace": workspace, "tokenExp": exp},
    }


# ---- HS256 (the SSM secret): accepted ------------------------------------------------------------


def test_valid_token_is_allowed_on_the_connect_route_with_the_identity_as_context(authorizer: Any) -> None:
    # Given a valid HS256 token with a display name
    payload = claims(name="Alice Liddell")
    # When the authorizer checks it
    policy = authorizer(authorizer_event(hs256(payload)))
    # Then it allows $connect and hands the identity on as context
    assert policy == expected_policy("alice", "Alice Liddell", "acme", payload["exp"])


def test_without_a_name_claim_the_user_name_is_the_user_id(authorizer: Any) -> None:
    # Given a valid token without `name`
    payload = claims()
    # When the authorizer checks it
    policy = authorizer(authorizer_event(hs256(payload)))
    # Then the user name falls back to the subject
    assert policy["context"] == {
        "userId": "alice",
        "userName": "alice",
        "workspace": "acme",
        "tokenExp": payload["exp"],
    }


def test_token_expired_within_the_leeway_is_still_accepted(authorizer: Any) -> None:
    # Given a token that expired 10 s ago (clock skew is tolerated up to 30 s)
    payload = claims(exp=int(time.time()) - 10)
    # When the authorizer checks it
    policy = authorizer(authorizer_event(hs256(payload)))
    # Then it is allowed
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"]["tokenExp"] == payload["exp"]


def test_not_before_within_the_leeway_is_accepted(authorizer: Any) -> None:
    # Given a token valid from 10 s in the future
    payload = claims(nbf=int(time.time()) + 10)
    # When the authorizer checks it
    policy = authorizer(authorizer_event(hs256(payload)))
    # Then it is allowed
    assert policy["principalId"] == "alice"


def test_token_of_exactly_the_size_limit_is_accepted(authorizer: Any) -> None:
    # Given a valid token of exactly 4096 bytes
    token = sized_token(MAX_TOKEN_BYTES)
    # When the authorizer checks it
    policy = authorizer(authorizer_event(token))
    # Then it is allowed: the limit is inclusive
    assert policy["principalId"] == "alice"


# ---- HS256: refused ------------------------------------------------------------------------------

Builder = Callable[[RsaKey], dict[str, Any]]


def _event(token: str) -> dict[str, Any]:
    return authorizer_event(token)


def _in_header(header: str, prefix: str) -> Builder:
    def build(_: RsaKey) -> dict[str, Any]:
        return authorizer_event(None, headers={"Host": DOMAIN, header: prefix + hs256(claims())})

    return build


def _without_query(_: RsaKey) -> dict[str, Any]:
    event = authorizer_event(None)
    event["queryStringParameters"] = None
    event["multiValueQueryStringParameters"] = None
    return event


REFUSED_HS256: dict[str, Builder] = {
    "no token": lambda _: authorizer_event(None),
    "no query string at all": _without_query,
    "empty token": lambda _: _event(""),
    "garbage": lambda _: _event("not-a-jwt"),
    "three garbage segments": lambda _: _event("aaa.bbb.ccc"),
    "non-ASCII": lambda _: _event("é.é.é"),
    "a lone surrogate": lambda _: _event("\ud800"),
    "valid token with a lone surrogate appended": lambda _: _event(hs256(claims()) + "\udc00"),
    "alg none, unsigned": lambda _: _event(hand_made({"alg": "none", "typ": "JWT"}, claims(), None)),
    "alg None, unsigned": lambda _: _event(hand_made({"alg": "None", "typ": "JWT"}, claims(), None)),
    "alg none with an HS256 signature": lambda _: _event(
        hand_made({"alg": "none", "typ": "JWT"}, claims(), JWT_SECRET.encode())
    ),
    "HS256, wrong secret": lambda _: _event(hs256(claims(), "another-secret-that-is-long-enough-too!!")),
    "HS256, tampered payload": lambda _: _event(
        hs256(claims()).split(".")[0]
        + "."
        + _segment(claims(sub="mallory"))
        + "."
        + hs256(claims()).split(".")[2]
    ),
    "RS256 against the HS256 config": lambda key: _event(key.sign(claims())),
    "HS256 signed with an RSA public key PEM (alg confusion)": lambda key: _event(
        hand_made({"alg": "HS256", "typ": "JWT"}, claims(), key.public_pem)
    ),
    "expired beyond the leeway": lambda _: _event(hs256(claims(exp=int(time.time()) - LEEWAY_S - 15))),
    "nbf beyond the leeway": lambda _: _event(hs256(claims(nbf=int(time.time()) + LEEWAY_S + 30))),
    "missing sub": lambda _: _event(hs256(claims(sub=None))),
    "missing workspace": lambda _: _event(hs256(claims(workspace=None))),
    "missing exp": lambda _: _event(hs256(claims(exp=None))),
    "exp not a number": lambda _: _event(hs256(claims(exp="tomorrow"))),
    "workspace with '#'": lambda _: _event(hs256(claims(workspace="acme#evil"))),
    "workspace with a space": lambda _: _event(hs256(claims(workspace="ac me"))),
    "workspace empty": lambda _: _event(hs256(claims(workspace=""))),
    "workspace not a string": lambda _: _event(hs256(claims(workspace=["acme"]))),
    "sub with '#'": lambda _: _event(hs256(claims(sub="alice#1"))),
    "sub empty": lambda _: _event(hs256(claims(sub=""))),
    "name too long": lambda _: _event(hs256(claims(name="n" * 101))),
    "oversized (4097 bytes)": lambda _: _event(sized_token(MAX_TOKEN_BYTES + 1)),
    "oversized (8 KB)": lambda _: _event(hs256(claims(pad="x" * 8000))),
    "in the Authorization header": _in_header("Authorization", "Bearer "),
    "in the Sec-WebSocket-Protocol header": _in_header("Sec-WebSocket-Protocol", ""),
}


@pytest.mark.parametrize("build", REFUSED_HS256.values(), ids=REFUSED_HS256.keys())
def test_bad_token_is_refused_with_unauthorized(authorizer: Any, rsa_key: RsaKey, build: Builder) -> None:
    # Given a connect request whose token must not open a connection
    event = build(rsa_key)
    # When the authorizer checks it
    # Then it raises exactly Exception("Unauthorized") (API Gateway answers 401)
    assert_refused(authorizer, event)


def test_refusal_is_counted_as_a_metric(authorizer: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a garbage token
    # When the authorizer refuses it
    assert_refused(authorizer, authorizer_event("garbage"))
    # Then the flushed EMF metrics count one refused token
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m.get("TokensRefused") for m in metrics] == [[1.0]]


# ---- the SSM secret under GetParameter throttling ------------------------------------------------


class ThrottledGetParameter:
    """Answers the first `times` GetParameter calls of a client with SSM's ThrottlingException (400)."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.calls = 0

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse, HTTPHeaders

        self.calls += 1
        if self.left <= 0:
            return None  # on to moto
        self.left -= 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.1"
        headers["x-amzn-ErrorType"] = "ThrottlingException"
        return AWSResponse(request.url, 400, headers, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def test_a_throttled_get_parameter_is_retried_and_the_connect_admitted(authorizer: Any) -> None:
    from parley import aws

    # Given a cold authorizer whose first GetParameter is throttled (40 TPS, a reconnect storm)
    throttle = ThrottledGetParameter(times=1)
    aws.ssm().meta.events.register_first("before-send.ssm.GetParameter", throttle)
    payload = claims()
    # When it checks a valid token
    policy = authorizer(authorizer_event(hs256(payload)))
    # Then the SDK retried, and the connect is allowed
    assert throttle.calls == 2
    assert policy == expected_policy("alice", "alice", "acme", payload["exp"])


def test_the_ssm_retries_fit_the_authorizer_timeout(authorizer: Any) -> None:
    from parley import aws
    from tests.support.template import read_template

    # Given the SSM client the authorizer reads its secret with, and the authorizer's Timeout
    template = read_template()
    function = template["Resources"]["AuthorizerFunction"]["Properties"]
    timeout = function.get("Timeout", template["Globals"]["Function"]["Timeout"])
    config: Any = aws.ssm().meta.config  # the stubs do not declare Config's attributes
    retries: dict[str, Any] = config.retries or {}
    attempts = retries["total_max_attempts"]
    # Then it retries throttles (standard mode, several attempts) ...
    assert retries["mode"] in ("standard", "adaptive") and attempts >= 3
    # ... and every attempt throttled (backoff rand(0,1) * 2**i s) or timing out still ends in time
    assert sum(2**i for i in range(attempts - 1)) < timeout
    assert attempts * (config.connect_timeout + config.read_timeout) < timeout


# ---- issuer and audience -------------------------------------------------------------------------

ISSUER = "https://issuer.parley.test/"
AUDIENCE = "parley-web"


@pytest.fixture
def with_iss_aud(authorizer: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    reconfigure(monkeypatch, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    return authorizer


@pytest.mark.parametrize(
    "extra",
    [{"iss": ISSUER, "aud": AUDIENCE}, {"iss": ISSUER, "aud": [AUDIENCE, "other-app"]}],
    ids=["aud string", "aud list containing ours"],
)
def test_right_issuer_and_audience_are_accepted(with_iss_aud: Any, extra: dict[str, Any]) -> None:
    # Given JWT_ISSUER and JWT_AUDIENCE are set, and a token naming both
    payload = claims(**extra)
    # When the authorizer checks it
    policy = with_iss_aud(authorizer_event(hs256(payload)))
    # Then it is allowed
    assert policy == expected_policy("alice", "alice", "acme", payload["exp"])


@pytest.mark.parametrize(
    "extra",
    [
        {"iss": "https://evil.example/", "aud": AUDIENCE},
        {"iss": ISSUER, "aud": "someone-else"},
        {"aud": AUDIENCE},
        {"iss": ISSUER},
        {"iss": ISSUER.rstrip("/"), "aud": AUDIENCE},
    ],
    ids=["wrong iss", "wrong aud", "missing iss", "missing aud", "iss without trailing slash"],
)
def test_wrong_or_missing_issuer_or_audience_is_refused(with_iss_aud: Any, extra: dict[str, Any]) -> None:
    # Given JWT_ISSUER and JWT_AUDIENCE are set, and a token that does not match them
    event = authorizer_event(hs256(claims(**extra)))
    # When the authorizer checks it
    # Then it is refused
    assert_refused(with_iss_aud, event)


# ---- JWKS mode -----------------------------------------------------------------------------------


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 (port chosen by the OS), serving whatever `keys` holds."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.body: bytes | None = None  # when set, served instead of the key set (a broken endpoint)
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = outer.body if outer.body is not None else json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


OTHER_TYPE_JWKS: list[dict[str, Any]] = [
    ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True) | {"kid": EC_KID, "use": "sig"},
    ECAlgorithm.to_jwk(P384_KEY.public_key(), as_dict=True) | {"kid": P384_KID, "use": "sig"},
    {"kty": "oct", "k": base64.urlsafe_b64encode(OCT_SECRET).rstrip(b"=").decode(), "kid": OCT_KID},
]


def es256(payload: dict[str, Any], kid: str = EC_KID) -> str:
    return jwt.encode(payload, EC_KEY, algorithm="ES256", headers={"kid": kid})


@pytest.fixture(scope="module")
def jwks_server(rsa_key: RsaKey) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.keys = [rsa_key.jwk(), *OTHER_TYPE_JWKS]
        yield server


@pytest.fixture
def jwks_authorizer(authorizer: Any, jwks_server: JwksServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    reconfigure(monkeypatch, JWKS_URL=jwks_server.url, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    return authorizer


def jclaims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for a JWKS deployment, which always checks the issuer and the audience."""
    return claims(**({"iss": ISSUER, "aud": AUDIENCE} | overrides))


def test_jwks_valid_rs256_token_is_accepted(jwks_authorizer: Any, rsa_key: RsaKey) -> None:
    # Given JWKS_URL points at a JWKS holding our RSA key, and an RS256 token signed with it
    payload = jclaims(name="Alice")
    # When the authorizer checks it
    policy = jwks_authorizer(authorizer_event(rsa_key.sign(payload)))
    # Then it is allowed with the identity as context
    assert policy == expected_policy("alice", "Alice", "acme", payload["exp"])


def test_jwks_keys_are_fetched_from_the_url(
    jwks_authorizer: Any, jwks_server: JwksServer, rsa_key: RsaKey
) -> None:
    # Given a fresh container in JWKS mode
    before = jwks_server.hits
    # When it verifies a token
    jwks_authorizer(authorizer_event(rsa_key.sign(jclaims())))
    # Then it fetched the key set from the configured URL
    assert jwks_server.hits > before


REFUSED_JWKS: dict[str, Callable[[RsaKey, RsaKey], str]] = {
    "HS256 signed with the JWKS public key PEM": lambda key, _: hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": KID}, jclaims(), key.public_pem
    ),
    "HS256 signed with the SSM secret": lambda _, __: hs256(jclaims(), kid=KID),
    "unknown kid": lambda key, _: key.sign(jclaims(), kid="no-such-key"),
    "no kid": lambda key, _: key.sign(jclaims(), kid=None),
    "right kid, signed by another key": lambda _, other: other.sign(jclaims()),
    "alg none with our kid": lambda _, __: hand_made({"alg": "none", "kid": KID}, jclaims(), None),
    "expired beyond the leeway": lambda key, _: key.sign(jclaims(exp=int(time.time()) - LEEWAY_S - 15)),
    "missing workspace": lambda key, _: key.sign(jclaims(workspace=None)),
    # alg and key type disagree: each must be a 401, never a 500 from cryptography
    "RS256 header, kid of an EC key": lambda key, _: key.sign(jclaims(), kid=EC_KID),
    "ES256 header, kid of the RSA key": lambda _, __: es256(jclaims(), kid=KID),
    "ES256 header, kid of a P-384 key": lambda _, __: es256(jclaims(), kid=P384_KID),
    "RS256 header, kid of an HMAC (oct) key": lambda key, _: key.sign(jclaims(), kid=OCT_KID),
    "HS256 signed with the JWKS's own HMAC key": lambda _, __: hs256(jclaims(), OCT_SECRET, kid=OCT_KID),
    "ES256 header with an RS256 signature, kid of the EC key": lambda key, _: ".".join(
        [es256(jclaims()).split(".")[0], *key.sign(jclaims()).split(".")[1:]]
    ),
    "RS256 header with an ES256 signature, kid of the RSA key": lambda key, _: ".".join(
        [key.sign(jclaims()).split(".")[0], *es256(jclaims()).split(".")[1:]]
    ),
    "kid not a string": lambda key, _: ".".join(
        [_segment({"alg": "RS256", "kid": 7}), _segment(jclaims()), key.sign(jclaims()).split(".")[2]]
    ),
    "Cognito access token (token_use access)": lambda key, _: key.sign(jclaims(token_use="access")),
}


def test_jwks_valid_es256_token_is_accepted(jwks_authorizer: Any) -> None:
    # Given a JWKS holding an EC P-256 key, and an ES256 token signed with it
    payload = jclaims()
    # When the authorizer checks it
    policy = jwks_authorizer(authorizer_event(es256(payload)))
    # Then it is allowed
    assert policy == expected_policy("alice", "alice", "acme", payload["exp"])


def test_jwks_cognito_id_token_is_accepted(jwks_authorizer: Any, rsa_key: RsaKey) -> None:
    # Given a Cognito-style ID token (token_use "id", aud the app client id)
    payload = jclaims(token_use="id")
    # When the authorizer checks it
    # Then it is allowed
    assert jwks_authorizer(authorizer_event(rsa_key.sign(payload)))["principalId"] == "alice"


@pytest.mark.parametrize("build", REFUSED_JWKS.values(), ids=REFUSED_JWKS.keys())
def test_jwks_bad_token_is_refused(
    jwks_authorizer: Any, rsa_key: RsaKey, other_rsa_key: RsaKey, build: Callable[[RsaKey, RsaKey], str]
) -> None:
    # Given JWKS mode and a token that must not open a connection
    event = authorizer_event(build(rsa_key, other_rsa_key))
    # When the authorizer checks it
    # Then it is refused
    assert_refused(jwks_authorizer, event)


# ---- the token is never logged -------------------------------------------------------------------


def _secret_parts(token: str) -> list[str]:
    """The token and its payload and signature segments: none of them may reach a log."""
    parts = [token, *(p for p in token.split(".")[1:] if len(p) >= 16)]
    return parts


LOGGED_CASES: dict[str, Callable[[], str]] = {
    "accepted": lambda: hs256(claims(name="Alice")),
    "wrong secret": lambda: hs256(claims(), "another-secret-that-is-long-enough-too!!"),
    "expired": lambda: hs256(claims(exp=int(time.time()) - 3600)),
    "alg none": lambda: hand_made({"alg": "none"}, claims(), None),
    "garbage": lambda: "garbage-token-" + "z" * 40,
    "lone surrogate appended": lambda: hs256(claims()) + "\udc00",
    "missing workspace": lambda: hs256(claims(workspace=None)),
}


class _CurrentStdout:
    """Writes to whatever sys.stdout is at the time of writing, as Lambda's stdout would be."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def logs_to_capsys(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Point the Powertools handler (bound to the stdout of its import) at capsys, at DEBUG."""
    from parley.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream, previous_level = handler.stream, logger.log_level
    # assigned, not setStream(): the old stream may be an earlier test's capture, already closed
    handler.stream = _CurrentStdout()
    logger.setLevel("DEBUG")
    try:
        yield capsys
    finally:
        handler.stream = previous_stream
        logger.setLevel(previous_level)


@pytest.mark.parametrize("make", LOGGED_CASES.values(), ids=LOGGED_CASES.keys())
def test_token_never_appears_in_log_output(
    authorizer: Any,
    logs_to_capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    make: Callable[[], str],
) -> None:
    # Given a token (accepted or refused), with every log line captured
    token = make()
    # When the authorizer checks it
    try:
        authorizer(authorizer_event(token))
        refused = False
    except Exception as exc:
        assert str(exc) == "Unauthorized"
        refused = True
    # Then no part of the token is in stdout, stderr or any log record
    captured = logs_to_capsys.readouterr()
    output = captured.out + captured.err + caplog.text
    for part in _secret_parts(token):
        assert part not in output
    # and a refusal was logged (with its reason), so the capture really saw the handler's logs
    assert ('"message":"token refused"' in captured.out) is refused


def _emitted_metrics(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def assert_jwks_outage(invoke: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any]) -> None:
    """A 500, not a 401: API Gateway answers anything but Exception("Unauthorized") with an error."""
    from parley.errors import KeysUnavailable

    with pytest.raises(KeysUnavailable):
        invoke(event)


@pytest.mark.parametrize(
    "body",
    [b"<html>502 Bad Gateway</html>", b"", b'{"keys": []}', b"[]", b'{"keys": [{"kty": "RSA"}]}'],
    ids=["HTML page", "empty body", "no keys", "not an object", "no usable key"],
)
def test_jwks_endpoint_serving_no_usable_key_set_is_an_outage_not_a_refused_token(
    jwks_authorizer: Any,
    jwks_server: JwksServer,
    rsa_key: RsaKey,
    capsys: pytest.CaptureFixture[str],
    body: bytes,
) -> None:
    # Given the JWKS endpoint answers 200 with something that is not a usable key set
    jwks_server.body = body
    try:
        # When a token that would otherwise be valid is checked
        # Then the authorizer fails (500), which AuthorizerErrorsAlarm sees
        assert_jwks_outage(jwks_authorizer, authorizer_event(rsa_key.sign(jclaims())))
    finally:
        jwks_server.body = None
    # and it is counted as JwksUnavailable, never as TokensRefused (the alarm subtracts those)
    metrics = _emitted_metrics(capsys.readouterr().out)
    assert [m.get("JwksUnavailable") for m in metrics] == [[1.0]]
    assert all("TokensRefused" not in m for m in metrics)


def test_jwks_endpoint_that_cannot_be_reached_is_an_outage_not_a_refused_token(
    authorizer: Any, monkeypatch: pytest.MonkeyPatch, rsa_key: RsaKey, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given JWKS_URL points at a port where nothing listens
    with JwksServer() as gone:
        url = gone.url
    reconfigure(monkeypatch, JWKS_URL=url, JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE)
    # When a token that would otherwise be valid is checked
    # Then the authorizer fails (500) and counts JwksUnavailable, not TokensRefused
    assert_jwks_outage(authorizer, authorizer_event(rsa_key.sign(jclaims())))
    metrics = _emitted_metrics(capsys.readouterr().out)
    assert [m.get("JwksUnavailable") for m in metrics] == [[1.0]]
    assert all("TokensRefused" not in m for m in metrics)


# ---- JWKS key lifetime: removal and rotation -------------------------------------------------------


def _jwks_verifier(url: str, *, lifespan: float, cooldown: float) -> Any:
    from parley.auth import Jwks, TokenVerifier

    return TokenVerifier(Jwks(url, lifespan=lifespan, cooldown=cooldown), issuer=ISSUER, audience=AUDIENCE)


def test_a_key_removed_from_the_jwks_is_refused_once_the_key_set_expires(rsa_key: RsaKey) -> None:
    from parley.errors import InvalidToken

    with JwksServer() as server:
        # Given a verifier that trusted a key (key set cached for 0.3 s)
        server.keys = [rsa_key.jwk()]
        verifier = _jwks_verifier(server.url, lifespan=0.3, cooldown=30)
        assert verifier.verify(rsa_key.sign(jclaims())).user_id == "alice"
        # When the key is removed from the JWKS (revoked) and the cache lifetime passes
        server.keys = [rsa_key.jwk(kid="the-next-key")]
        time.sleep(0.4)
        # Then a token signed with it is refused
        with pytest.raises(InvalidToken) as refused:
            verifier.verify(rsa_key.sign(jclaims()))
        assert refused.value.reason == "no signing key for this kid"


def test_a_key_is_still_trusted_within_the_key_set_lifetime(rsa_key: RsaKey) -> None:
    with JwksServer() as server:
        # Given a verifier that fetched the key set once
        server.keys = [rsa_key.jwk()]
        verifier = _jwks_verifier(server.url, lifespan=300, cooldown=30)
        verifier.verify(rsa_key.sign(jclaims()))
        # When it verifies more tokens before the set expires
        for _ in range(5):
            verifier.verify(rsa_key.sign(jclaims()))
        # Then it fetched the set only once
        assert server.hits == 1


def test_an_unknown_kid_refetches_the_key_set_so_a_rotated_key_works(
    rsa_key: RsaKey, other_rsa_key: RsaKey
) -> None:
    with JwksServer() as server:
        # Given a verifier with a fresh key set cached for 5 minutes
        server.keys = [rsa_key.jwk()]
        verifier = _jwks_verifier(server.url, lifespan=300, cooldown=0.2)
        verifier.verify(rsa_key.sign(jclaims()))
        # When the identity provider rotates in a new key and signs with it
        server.keys = [rsa_key.jwk(), other_rsa_key.jwk(kid="rotated")]
        time.sleep(0.3)
        # Then the first token with the new kid refetches the set and is accepted
        assert verifier.verify(other_rsa_key.sign(jclaims(), kid="rotated")).user_id == "alice"
        assert server.hits == 2


def test_unknown_kids_refetch_the_key_set_at_most_once_per_cooldown(rsa_key: RsaKey) -> None:
    from parley.errors import InvalidToken

    with JwksServer() as server:
        # Given a verifier whose key set was just fetched
        server.keys = [rsa_key.jwk()]
        verifier = _jwks_verifier(server.url, lifespan=300, cooldown=30)
        verifier.verify(rsa_key.sign(jclaims()))
        # When a flood of tokens names kids the JWKS does not hold
        for n in range(20):
            with pytest.raises(InvalidToken):
                verifier.verify(rsa_key.sign(jclaims(), kid=f"junk-{n}"))
        # Then no refetch happened within the cooldown: junk cannot turn requests into fetches
        assert server.hits == 1
