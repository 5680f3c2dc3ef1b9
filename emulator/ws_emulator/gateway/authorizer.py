"""REQUEST authorizer rules for `$connect`: identity sources and how a result becomes 401/403/500 or Allow."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# AWS caps the authorizer's response (policy + context) at 8 KB.
MAX_RESULT_BYTES = 8 * 1024


@dataclass(frozen=True)
class AuthDecision:
    """Either allowed (status 0) with the principal and context, or a handshake status to answer."""

    status: int
    principal_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 0

    def request_context_authorizer(self, integration_latency_ms: int) -> dict[str, Any]:
        """What every later event of the connection carries as `requestContext.authorizer`."""
        return {
            "principalId": self.principal_id,
            "integrationLatency": integration_latency_ms,
            **self.context,
        }


def identity_value(
    source: str, headers: Sequence[tuple[str, str]], query: Sequence[tuple[str, str]]
) -> str | None:
    """One identity source's value, or None when absent (header names match case-insensitively)."""
    if source.startswith("route.request.header."):
        wanted = source.removeprefix("route.request.header.").lower()
        values = [value for key, value in headers if key.lower() == wanted]
    elif source.startswith("route.request.querystring."):
        wanted = source.removeprefix("route.request.querystring.")
        values = [value for key, value in query if key == wanted]
    else:
        # stageVariables.* and context.* always resolve on AWS; the emulator has nothing to check there.
        return ""
    return values[-1] if values and values[-1] != "" else None


def missing_identity_sources(
    sources: Sequence[str], headers: Sequence[tuple[str, str]], query: Sequence[tuple[str, str]]
) -> list[str]:
    """Identity sources absent from the request: any one makes API Gateway answer 401 without invoking."""
    return [source for source in sources if identity_value(source, headers, query) is None]


def decide(ok: bool, payload: Any, error: Mapping[str, Any] | None, method_arn: str) -> AuthDecision:
    """Turn an authorizer invocation into the gateway's decision, as API Gateway does."""
    if not ok:
        message = (error or {}).get("errorMessage")
        if message == "Unauthorized":
            return AuthDecision(401, reason="authorizer raised Unauthorized")
        return AuthDecision(500, reason=f"authorizer failed: {message}")
    problem = _malformed(payload)
    if problem is not None:
        return AuthDecision(500, reason=problem)
    effect = policy_effect(payload["policyDocument"], method_arn)
    if effect != "Allow":
        return AuthDecision(403, reason=f"policy effect {effect or 'none'} for {method_arn}")
    return AuthDecision(
        0, principal_id=str(payload["principalId"]), context=_stringified(payload.get("context") or {})
    )


def _malformed(payload: Any) -> str | None:
    """Why API Gateway would refuse this result with a 500, or None when it is well formed."""
    if not isinstance(payload, dict):
        return "authorizer returned no policy object"
    if len(json.dumps(payload).encode()) > MAX_RESULT_BYTES:
        return "authorizer result over 8 KB"
    if not isinstance(payload.get("principalId"), str | int) or not isinstance(
        payload.get("policyDocument"), dict
    ):
        return "authorizer result needs principalId and policyDocument"
    context = payload.get("context") or {}
    # AWS refuses nested objects or arrays in the context map and fails the request.
    if not isinstance(context, dict) or not all(_is_scalar(value) for value in context.values()):
        return "authorizer context values must be strings, numbers or booleans"
    return None


def _stringified(context: Mapping[str, Any]) -> dict[str, str]:
    # API Gateway hands context values on as strings: 123 -> "123", True -> "true"; null values are dropped.
    out: dict[str, str] = {}
    for key, value in context.items():
        if value is None:
            continue
        out[key] = json.dumps(value) if isinstance(value, bool | int | float) else str(value)
    return out


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def policy_effect(policy: Mapping[str, Any], resource: str) -> str | None:
    """Allow if some statement allows execute-api:Invoke on the resource and none denies it (Deny wins)."""
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    effects: set[str] = set()
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        if _matches(statement.get("Action"), "execute-api:Invoke") and _matches(
            statement.get("Resource"), resource
        ):
            effects.add(str(statement.get("Effect", "")))
    if "Deny" in effects:
        return "Deny"
    return "Allow" if "Allow" in effects else None


def _matches(patterns: Any, value: str) -> bool:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False
    # IAM wildcards: `*` any run, `?` one character; fnmatchcase also reads `[`, absent from ARNs and actions.
    return any(isinstance(pattern, str) and fnmatch.fnmatchcase(value, pattern) for pattern in patterns)
