"""The opening handshake's decisions (pure): which requests are refused, with what, and who the client is.

The asyncio server (server.py) asks these in order: is it a page request (`is_upgrade`), may it
connect at all (`early_rejection`: path, then the new-connection rate), who is it (`client_info`),
did the authorizer let it in (`authorizer_rejection`), and did `$connect` (`connect_rejection`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ws_emulator.gateway.authorizer import AuthDecision
from ws_emulator.gateway.events import ClientInfo
from ws_emulator.gateway.http11 import reason_phrase
from ws_emulator.gateway.integration import InvocationResult, route_response_body, status_of

# The message of a refused handshake's JSON body, by status (clients should rely on the status only).
REJECT_MESSAGES = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal server error",
}


@dataclass(frozen=True)
class Rejection:
    """A handshake answered with an HTTP status instead of `101 Switching Protocols`."""

    status: int
    message: str

    @property
    def body(self) -> dict[str, Any]:
        return {"message": self.message}


def is_upgrade(upgrade_headers: Iterable[str]) -> bool:
    """Whether the request asks for a WebSocket (else it is a plain GET for the static site)."""
    return any("websocket" in value.lower() for value in upgrade_headers)


def path_matches(path: str, stage: str) -> bool:
    """`/` and `/{stage}` (with or without a trailing slash) are the API; anything else is 403."""
    return path.rstrip("/") in ("", f"/{stage}")


def early_rejection(path: str, stage: str, take_token: Callable[[], bool]) -> Rejection | None:
    """Refusals before anything is invoked: a foreign path (403), then the connection rate (429).

    `take_token` is only asked for a path that matches, so refused paths do not use up the rate.
    """
    if not path_matches(path, stage):
        return Rejection(403, REJECT_MESSAGES[403])
    if not take_token():
        return Rejection(429, REJECT_MESSAGES[429])
    return None


def with_forwarding(
    pairs: Sequence[tuple[str, str]], source_ip: str, port: int
) -> tuple[tuple[str, str], ...]:
    """Handshake headers plus the X-Forwarded-* ones API Gateway's front end adds (unless present)."""
    present = {name.lower() for name, _ in pairs}
    added = {"X-Forwarded-For": source_ip, "X-Forwarded-Port": str(port), "X-Forwarded-Proto": "http"}
    return (*pairs, *((name, value) for name, value in added.items() if name.lower() not in present))


def client_info(
    *,
    connection_id: str,
    now_ms: int,
    remote: Any,
    user_agent: str | None,
    headers: Sequence[tuple[str, str]],
    query_string: str,
    port: int,
) -> ClientInfo:
    """What the handshake tells about the client, fixed for the life of the connection."""
    source_ip = str(remote[0]) if remote else "127.0.0.1"
    return ClientInfo(
        connection_id=connection_id,
        connected_at_ms=now_ms,
        source_ip=source_ip,
        user_agent=user_agent,
        headers=with_forwarding(headers, source_ip, port),
        query=tuple(parse_qsl(query_string, keep_blank_values=True)),
    )


def authorizer_rejection(decision: AuthDecision) -> Rejection | None:
    """The authorizer's 401/403/500 as the handshake answer; None when it allowed the connection."""
    if decision.allowed:
        return None
    return Rejection(decision.status, REJECT_MESSAGES.get(decision.status, "Error"))


def connect_rejection(result: InvocationResult) -> Rejection | None:
    """`$connect`'s answer: a status outside 2xx refuses the handshake; None lets the client in.

    The known statuses carry API Gateway's message; others the handler's `body`, else the reason phrase.
    """
    status = status_of(result)
    if 200 <= status < 300:
        return None
    body = route_response_body(result.payload) if result.ok else None
    return Rejection(status, REJECT_MESSAGES.get(status, body or reason_phrase(status)))
