"""A Lambda proxy integration as the gateway sees it: the invoker it calls, how it reads the answer."""

from __future__ import annotations

import json
from typing import Any, Protocol


class InvocationResult(Protocol):
    """What the gateway reads from a function invocation (the runtime's InvokeResult)."""

    @property
    def ok(self) -> bool: ...
    @property
    def payload(self) -> Any: ...
    @property
    def error(self) -> dict[str, Any] | None: ...
    @property
    def duration_ms(self) -> float: ...


class Invoker(Protocol):
    """Runs a function off the event loop and never raises for handler errors."""

    async def invoke(self, function_id: str, event: dict[str, Any]) -> InvocationResult: ...


def status_of(result: InvocationResult) -> int:
    """The HTTP status an integration answered: its statusCode, 200 when it returned none, 500 on error."""
    if not result.ok:
        return 500
    payload = result.payload
    if isinstance(payload, dict) and "statusCode" in payload:
        try:
            return int(payload["statusCode"])
        except (TypeError, ValueError):
            return 500
    return 200


def route_response_body(payload: Any) -> str | None:
    """The frame a two-way route sends back: the returned `body`, as JSON when it is not a string."""
    if not isinstance(payload, dict) or payload.get("body") is None:
        return None
    body = payload["body"]
    return body if isinstance(body, str) else json.dumps(body)
