"""JWT verification for the `$connect` authorizer: the one place a token is read. Never log a token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.exceptions import UnsupportedAlgorithm

from parley.errors import InvalidToken, KeysUnavailable
from parley.names import name_problem, user_id_problem, workspace_problem

LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 4096  # far above any sane JWT; bigger ones are refused before any parsing
HMAC_ALGORITHMS = ["HS256"]
JWKS_ALGORITHMS = ["RS256", "ES256"]
JWKS_LIFESPAN_SECONDS = 300  # a key removed from the JWKS is refused at most this long after
JWKS_REFRESH_COOLDOWN_SECONDS = 30  # an unknown kid refetches the set at most this often
# Cognito marks its tokens: only an ID token carries `aud` (an access token has `client_id`)
ACCEPTED_TOKEN_USE = "id"
# A token may live at most this long from `iat` to `exp` unless configured otherwise
# (MAX_TOKEN_LIFETIME_SECONDS): a stolen long-lived token is a long-lived door.
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600
# A workspace admin's token carries `"parley:admin": true` (exactly true: "true" or 1 are not admins).
# The authorizer passes it on in its context; it may delete anyone's message in the token's workspace.
ADMIN_CLAIM = "parley:admin"


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    name: str
    workspace: str
    expires_at: int  # epoch seconds
    admin: bool = False

    def authorizer_context(self) -> dict[str, str | int | bool]:
        """What API Gateway hands every later event as requestContext.authorizer (`admin` only when
        true, so the context of every other user is as it always was)."""
        context: dict[str, str | int | bool] = {
            "userId": self.user_id,
            "userName": self.name,
            "workspace": self.workspace,
            "tokenExp": self.expires_at,
        }
        if self.admin:
            context["admin"] = True
        return context


class KeySource(Protocol):
    algorithms: list[str]

    def key_for(self, token: str) -> Any: ...


class SharedSecret:
    """HS256 with a secret fetched by `fetch` (Powertools parameters, cached) so rotation needs no deploy."""

    algorithms = HMAC_ALGORITHMS

    def __init__(self, fetch: Callable[[], str]) -> None:
        self._fetch = fetch

    def key_for(self, token: str) -> Any:
        return self._fetch()


class _KeySetClient(jwt.PyJWKClient):
    """PyJWKClient whose key-set failures (unreachable, not JSON, no usable key) are KeysUnavailable,
    so that only "no key for this kid" is left to mean a refused token."""

    def get_signing_keys(self, refresh: bool = False) -> list[jwt.PyJWK]:
        try:
            return super().get_signing_keys(refresh)
        except jwt.PyJWKClientConnectionError:
            raise KeysUnavailable("JWKS unreachable") from None
        except Exception as exc:  # any failure to produce a key set is the endpoint's, not the token's
            raise KeysUnavailable(f"JWKS unusable: {type(exc).__name__}") from None


class Jwks:
    """RS256/ES256 with keys from a JWKS URL (Cognito, Auth0).

    Only the key set is cached, for `lifespan` seconds: a key lookup goes through the set each time
    (PyJWT's per-key cache, `cache_keys=True`, never expires, so a key removed from the JWKS would be
    trusted for the container's life). An unknown kid refetches the set once, at most every
    `cooldown` seconds, so a rotated-in key works before the set expires and junk kids cannot make
    every request a fetch."""

    algorithms = JWKS_ALGORITHMS

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = JWKS_LIFESPAN_SECONDS,
        cooldown: float = JWKS_REFRESH_COOLDOWN_SECONDS,
        timeout: float = 5,
    ) -> None:
        self._client = _KeySetClient(
            url, cache_keys=False, lifespan=lifespan, cooldown_duration=cooldown, timeout=timeout
        )

    def key_for(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid")
        try:
            # the PyJWK itself, not its key: PyJWT then refuses a token whose alg is not the key's
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientError:
            raise InvalidToken("no signing key for this kid") from None


class TokenVerifier:
    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str = "",
        audience: str = "",
        max_lifetime_s: int = MAX_TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self._keys = keys
        self._issuer = issuer or None
        self._audience = audience or None
        self._max_lifetime_s = max_lifetime_s

    def verify(self, token: str | None) -> Identity:
        if not token:
            raise InvalidToken("missing token")
        if len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
            raise InvalidToken("token too large")
        if not token.isascii():  # a compact JWS is base64url and dots; PyJWT raises on lone surrogates
            raise InvalidToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        # PyJWT enforces `algorithms` too; checking first gives a clear reason and fetches no key for junk.
        if header.get("alg") not in self._keys.algorithms:
            raise InvalidToken(f"algorithm {header.get('alg')!r} not accepted")
        try:
            claims = jwt.decode(
                token,
                key=self._keys.key_for(token),
                algorithms=self._keys.algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                options={
                    # `iat` too: without it a token's lifetime cannot be bounded (see _identity)
                    "require": ["exp", "iat", "sub", "workspace"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("not yet valid") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # cryptography's, when a key cannot serve the token's algorithm: still the token's fault
            raise InvalidToken(f"key does not fit the token: {type(exc).__name__}") from None
        return _identity(claims, self._max_lifetime_s)


def _identity(claims: dict[str, Any], max_lifetime_s: int = MAX_TOKEN_LIFETIME_SECONDS) -> Identity:
    if "token_use" in claims and claims["token_use"] != ACCEPTED_TOKEN_USE:
        raise InvalidToken("bad token_use claim")
    sub, workspace, name, exp = (
        claims.get("sub"),
        claims.get("workspace"),
        claims.get("name"),
        claims["exp"],
    )
    if not isinstance(sub, str) or user_id_problem(sub):
        raise InvalidToken("bad sub claim")
    if not isinstance(workspace, str) or workspace_problem(workspace):
        raise InvalidToken("bad workspace claim")
    if name is None:
        name = sub
    if not isinstance(name, str) or name_problem(name):
        raise InvalidToken("bad name claim")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise InvalidToken("bad exp claim")
    iat = claims["iat"]  # PyJWT has checked it is not in the future (int() of it: "1" passes)
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidToken("bad iat claim")
    if exp - iat > max_lifetime_s:
        raise InvalidToken("token lifetime (exp - iat) above the maximum")
    admin = claims.get(ADMIN_CLAIM, False)
    if not isinstance(admin, bool):
        raise InvalidToken(f"bad {ADMIN_CLAIM} claim")
    return Identity(user_id=sub, name=name, workspace=workspace, expires_at=int(exp), admin=admin)
