"""Development-only HS256 tokens, so a local client can pass an authorizer that checks JWTs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

DEFAULT_TTL_S = 3600
# The only secret the token endpoint runs with. An endpoint that mints a token for anyone who asks is
# harmless only while its secret is one nobody would deploy: started with any other secret, it could
# be minting valid tokens for a real stack, so the emulator refuses to start (see Config).
DEV_TOKEN_SECRET = "ws-emulator-development-secret-not-for-production"


def parse_claims(text: str | None) -> dict[str, Any]:
    """Extra claims given on the command line as a JSON object."""
    if not text:
        return {}
    try:
        claims = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"claims must be a JSON object: {exc}") from exc
    if not isinstance(claims, dict):
        raise ValueError('claims must be a JSON object, e.g. \'{"workspace": "demo"}\'')
    return claims


def token_reply(
    minter: Callable[[str, str | None], str], query: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    """Status and JSON document of `GET /_emulator/token?sub=alice&name=Alice` (both ports answer it)."""
    sub = query.get("sub")
    if not sub:
        return 400, {"message": "query parameter 'sub' is required"}
    try:
        return 200, {"token": minter(sub, query.get("name") or None)}
    except ValueError as exc:
        return 400, {"message": str(exc)}


def mint_token(
    secret: str,
    sub: str,
    *,
    name: str | None = None,
    claims: Mapping[str, Any] | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    now: float | None = None,
) -> str:
    """An HS256 JWT with sub, name, iat, exp and the extra claims (which may override name but not sub)."""
    if not secret:
        raise ValueError("a secret is required")
    if not sub:
        raise ValueError("a subject (sub) is required")
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"name": name or sub, **dict(claims or {})}
    payload.update({"sub": sub, "iat": issued, "exp": issued + ttl_s})
    return str(jwt.encode(payload, secret, algorithm="HS256"))
