"""What can go wrong, as a small hierarchy: every exception the client raises is a ParleyClientError."""

from __future__ import annotations

from typing import Any


class ParleyClientError(Exception):
    """The base of every error this package raises."""


class HandshakeRefused(ParleyClientError):
    """The server answered the WebSocket handshake with an HTTP status instead of 101: 401 for a missing,
    bad or expired token, 403 when `$connect` refused, 429 over the connection rate."""

    def __init__(self, status: int) -> None:
        super().__init__(f"handshake refused with HTTP {status}")
        self.status = status


class ConnectionLost(ParleyClientError):
    """The connection ended (or was not open) while a request waited for its reply."""


class RequestTimeout(ParleyClientError, TimeoutError):
    """No reply came in time; the connection may still be open."""


class ServerError(ParleyClientError):
    """Parley (or the gateway in front of it) refused a request: `code` is Parley's stable error code
    (`not_found`, `rate_limited`, ...), or `gateway` for API Gateway's own answers."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame
        self.code: str = str(frame.get("code") or "gateway")
        self.retry_after_ms: int | None = frame.get("retryAfterMs")
        super().__init__(f"{self.code}: {frame.get('message', '')}")
