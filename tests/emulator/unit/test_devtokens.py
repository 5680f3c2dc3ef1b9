"""Development tokens: HS256 JWTs with sub, name, iat, exp and extra claims."""

import jwt
import pytest

from ws_emulator.gateway.devtokens import mint_token, parse_claims

SECRET = "a-development-secret-of-32-bytes!"


def test_token_carries_standard_and_extra_claims():
    token = mint_token(SECRET, "alice", name="Alice", claims={"workspace": "demo"}, now=1_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "alice", "name": "Alice", "workspace": "demo", "iat": 1_000, "exp": 4_600}


def test_name_defaults_to_sub_and_extra_claims_cannot_override_sub():
    token = mint_token(SECRET, "bob", claims={"sub": "mallory"})
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "bob"
    assert claims["name"] == "bob"


def test_wrong_secret_does_not_verify():
    token = mint_token(SECRET, "alice")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET + "x", algorithms=["HS256"])


def test_claims_must_be_a_json_object():
    assert parse_claims('{"a": 1}') == {"a": 1}
    assert parse_claims(None) == {}
    with pytest.raises(ValueError):
        parse_claims("[1]")
    with pytest.raises(ValueError):
        parse_claims("{nope")
