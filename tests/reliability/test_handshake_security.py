"""Security at the handshake, through the emulator: no bad token opens a connection or reaches `$connect`,
and no token ever appears in a log line the functions (or the emulator) emit during a whole session.

The unit and integration matrices (tests/unit/test_auth_unit.py, tests/integration/test_auth_matrix.py)
call the verifier and the authorizer directly; here every token goes through a real WebSocket
handshake, the emulator's REQUEST authorizer and its `$connect` route, as API Gateway would run them.
Two emulators: HS256 with the SSM secret (LogLevel DEBUG, for the log check), and a JWKS deployment
(RS256) with JwtIssuer and JwtAudience set, whose keys a local HTTP server on 127.0.0.1 publishes.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from parley_client import Connection, HandshakeRefused
from tests.reliability.conftest import SECRET, Running, report, serve
from tests.support.ws_client import Peer

ISSUER = "https://issuer.reliability.test/"
AUDIENCE = "parley-reliability"
KID = "reliability-key-1"
# the HS512 case signs with the 42-byte HS256 secret on purpose
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "mallory", "workspace": "acme", "exp": now + 600, "iat": now}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def _hs256_with_key_bytes(claims: dict[str, Any], key: bytes) -> str:
    """HS256 keyed with arbitrary bytes (PyJWT refuses PEM keys for HMAC, an attacker's code would not)."""
    import hashlib
    import hmac

    signing_input = (
        f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# ---- fixtures ---------------------------------------------------------------------------------------


class Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        jwk.update({"kid": KID, "use": "sig", "alg": "RS256"})
        self.jwks = json.dumps({"keys": [jwk]}).encode()

    def rs256(self, claims: dict[str, Any], kid: str = KID) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@contextlib.contextmanager
def jwks_server(body: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hs_emu(emu: Running) -> Running:
    """The session's emulator: HS256 with the SSM secret, functions logging at DEBUG."""
    return emu


@pytest.fixture(scope="module")
def jwks_emu(keys: Keys) -> Iterator[Running]:
    with (
        jwks_server(keys.jwks) as url,
        serve(parameter_overrides={"JwksUrl": url, "JwtIssuer": ISSUER, "JwtAudience": AUDIENCE}) as running,
    ):
        yield running


# ---- the matrix ---------------------------------------------------------------------------------


def hs_matrix(keys: Keys) -> dict[str, tuple[str | None, dict[str, str]]]:
    """name -> (token for ?token=, or None for no query string; extra request headers)."""
    good = _claims()
    oversized = jwt.encode(_claims(pad="x" * 5000), SECRET, algorithm="HS256")
    assert len(oversized) > 4096
    return {
        "no token": (None, {}),
        "empty": ("", {}),
        "garbage": ("not-a-jwt", {}),
        "three garbage parts": ("a.b.c", {}),
        "alg none": (_unsigned(good), {}),
        "alg None spelled otherwise": (_unsigned(good, "None"), {}),
        "HS256 wrong secret": (
            jwt.encode(good, "another-secret-of-sufficient-length!!", algorithm="HS256"),
            {},
        ),
        "HS512 right secret": (jwt.encode(good, SECRET, algorithm="HS512"), {}),
        "RS256 against HS256 config": (keys.rs256(good), {}),
        "HS256 keyed with the RSA public key": (_hs256_with_key_bytes(good, keys.public_pem), {}),
        "signature stripped": (jwt.encode(good, SECRET, algorithm="HS256").rsplit(".", 1)[0] + ".", {}),
        "expired": (jwt.encode(_claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"), {}),
        "not yet valid": (jwt.encode(_claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256"), {}),
        "missing exp": (jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"), {}),
        "missing sub": (jwt.encode(_claims(sub=None), SECRET, algorithm="HS256"), {}),
        "missing workspace": (jwt.encode(_claims(workspace=None), SECRET, algorithm="HS256"), {}),
        "sub not a string": (jwt.encode(_claims(sub=42), SECRET, algorithm="HS256"), {}),
        "workspace with a #": (jwt.encode(_claims(workspace="acme#x"), SECRET, algorithm="HS256"), {}),
        "oversized": (oversized, {}),
        "token in Authorization header": (None, {"Authorization": f"Bearer {jwt.encode(good, SECRET)}"}),
        "token in a token header": (None, {"token": jwt.encode(good, SECRET)}),
    }


def jwks_matrix(keys: Keys) -> dict[str, str]:
    good = _claims(iss=ISSUER, aud=AUDIENCE)
    return {
        "HS256 with the SSM secret against JWKS config": jwt.encode(good, SECRET, algorithm="HS256"),
        "HS256 keyed with the RSA public key": _hs256_with_key_bytes(good, keys.public_pem),
        "alg none": _unsigned(good),
        "wrong iss": keys.rs256(_claims(iss="https://evil.test/", aud=AUDIENCE)),
        "missing iss": keys.rs256(_claims(aud=AUDIENCE)),
        "wrong aud": keys.rs256(_claims(iss=ISSUER, aud="someone-else")),
        "missing aud": keys.rs256(_claims(iss=ISSUER)),
        "unknown kid": keys.rs256(good, kid="not-published"),
        "other RSA key, same kid": jwt.encode(
            good,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": KID},
        ),
        "expired": keys.rs256(_claims(iss=ISSUER, aud=AUDIENCE, exp=int(time.time()) - 120)),
        "missing workspace": keys.rs256(_claims(iss=ISSUER, aud=AUDIENCE, workspace=None)),
    }


async def _status_of_handshake(url: str, headers: dict[str, str]) -> int:
    try:
        async with await Connection.open(url, additional_headers=headers, open_timeout=30):
            return 101
    except HandshakeRefused as exc:
        return exc.status


def _mallory_connections(emu: Running) -> int:
    """Connection items of the matrix's identity (every bad token claims sub mallory)."""
    return sum(
        1
        for item in emu.table_items("StateTable")
        if item["PK"]["S"].startswith("CONN#") and item.get("userId", {}).get("S") == "mallory"
    )


async def _assert_refused_before_connect(
    emu: Running, cases: dict[str, tuple[str | None, dict[str, str]]]
) -> None:
    connects_before = len(emu.logs.connect_invocations())
    open_before = set(emu.emulator.gateway.connections)
    statuses = {}
    for name, (tok, headers) in cases.items():
        url = emu.ws_url if tok is None else f"{emu.ws_url}?token={tok}"
        statuses[name] = await _status_of_handshake(url, headers)
    assert statuses == {name: 401 for name in cases}, statuses
    # none reached $connect: no invocation in the emulator's event log, nothing in the connections table
    assert len(emu.logs.connect_invocations()) == connects_before
    assert _mallory_connections(emu) == 0
    assert set(emu.emulator.gateway.connections) <= open_before


async def test_every_bad_token_is_refused_before_connect(hs_emu: Running, keys: Keys) -> None:
    # GIVEN the HS256 deployment and a control: a good token opens a connection through $connect
    connects = len(hs_emu.logs.connect_invocations())
    async with await Connection.open(hs_emu.url("alice", "acme"), open_timeout=30):
        assert len(hs_emu.logs.connect_invocations()) == connects + 1
    # WHEN every token of the matrix tries the handshake / THEN each gets 401 and $connect never runs
    cases = hs_matrix(keys)
    await _assert_refused_before_connect(hs_emu, cases)
    report("handshake-token-matrix", deployment="HS256", cases=len(cases), refused=len(cases))


async def test_jwks_deployment_refuses_confusion_and_wrong_issuer_or_audience(
    jwks_emu: Running, keys: Keys
) -> None:
    # GIVEN a JWKS deployment with issuer and audience, where a good RS256 token connects
    good = keys.rs256(_claims(sub="trent", iss=ISSUER, aud=AUDIENCE))
    assert await _status_of_handshake(f"{jwks_emu.ws_url}?token={good}", {}) == 101
    # WHEN the confusion and claim cases try / THEN 401 each, before $connect
    cases: dict[str, tuple[str | None, dict[str, str]]] = {
        name: (tok, {}) for name, tok in jwks_matrix(keys).items()
    }
    await _assert_refused_before_connect(jwks_emu, cases)
    report(
        "handshake-token-matrix", deployment="JWKS RS256 + iss + aud", cases=len(cases), refused=len(cases)
    )


async def test_no_token_appears_in_any_log_line_of_a_session(hs_emu: Running, keys: Keys) -> None:
    # GIVEN a whole session: refused handshakes, then two users doing every action, bad frames, disconnects
    start = len(hs_emu.logs.snapshot())
    tokens: list[str] = [t for t, _ in hs_matrix(keys).values() if t]
    for tok in tokens[:6]:
        await _status_of_handshake(f"{hs_emu.ws_url}?token={tok}", {})
    from tests.reliability.conftest import token

    alice_token, bob_token = token("alice", "acme-logs"), token("bob", "acme-logs")
    tokens += [alice_token, bob_token]
    alice = await Peer.open(f"{hs_emu.ws_url}?token={alice_token}")
    bob = await Peer.open(f"{hs_emu.ws_url}?token={bob_token}")
    created = await alice.request({"action": "create_channel", "name": "secret", "private": True}, timeout=30)
    for frame in (
        {"action": "join", "channel": "general"},
        {"action": "invite", "channel": created["channel"]["id"], "user": "bob"},
        {"action": "channels"},
        {"action": "message", "channel": "general", "text": "hi", "clientMsgId": "c1"},
        {"action": "history", "channel": "general"},
        {"action": "presence", "channel": "general"},
        {"action": "heartbeat"},
        {"action": "message", "channel": "nope", "text": "x"},
        {"action": "join", "channel": "Bad Name"},
        {"action": "frobnicate", "token": alice_token},
        "not json " + alice_token,
    ):
        if isinstance(frame, str):
            await alice.request_raw(frame, timeout=30)
        else:
            await alice.request(frame, timeout=30)
    await alice.send({"action": "typing", "channel": "general"})
    assert (await bob.request({"action": "join", "channel": "general"}, timeout=30))["type"] == "joined"
    await alice.request({"action": "leave", "channel": "general"}, timeout=30)
    await alice.close()
    await bob.close()
    await hs_emu.drain()
    # THEN no log line holds a token, nor the signature of one
    lines = hs_emu.logs.snapshot()[start:]
    assert len(lines) > 20  # the capture really saw the functions' logs
    leaks = [
        line
        for line in lines
        for tok in tokens
        if tok in line or (len(tok.rsplit(".", 1)[-1]) > 16 and tok.rsplit(".", 1)[-1] in line)
    ]
    assert leaks == []
    report("token-not-logged", log_lines=len(lines), tokens_checked=len(tokens), leaks=len(leaks))
