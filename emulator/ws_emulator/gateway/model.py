"""What the gateway serves and holds: one API's routes and authorizer, its settings, an open connection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection

from ws_emulator.gateway import closing, limits
from ws_emulator.gateway.events import ApiInfo, ClientInfo
from ws_emulator.gateway.routing import SelectionExpression


@dataclass(frozen=True)
class AuthorizerDef:
    logical_id: str
    function_id: str
    identity_sources: tuple[str, ...]


@dataclass(frozen=True)
class RouteDef:
    key: str
    function_id: str | None
    authorizer: AuthorizerDef | None = None
    has_route_response: bool = False


@dataclass(frozen=True)
class GatewayApi:
    """One WebSocket API as the gateway serves it."""

    info: ApiInfo
    selection: SelectionExpression
    routes: Mapping[str, RouteDef]
    selection_text: str = "$request.body.action"


@dataclass(frozen=True)
class GatewaySettings:
    idle_timeout_s: float = limits.IDLE_TIMEOUT_S
    max_duration_s: float = limits.MAX_CONNECTION_DURATION_S
    connect_rate: float = limits.CONNECT_RATE_PER_S
    frame_limit_bytes: int = limits.FRAME_LIMIT_BYTES
    message_limit_bytes: int = limits.MESSAGE_LIMIT_BYTES
    # How long shutdown waits for the `$disconnect` of every open connection (like uvicorn's
    # --timeout-graceful-shutdown); with thousands open, a slow handler must not hold the exit forever.
    shutdown_timeout_s: float = 30.0


@dataclass
class Connection:
    """One open client connection and what later events need from its handshake."""

    client: ClientInfo
    ws: ServerConnection
    authorizer: dict[str, Any] | None
    connected_mono: float
    last_active_mono: float
    last_active_ms: int
    close_cause: closing.CloseCause | None = None
    closing: bool = False
    frames_in: int = 0
    frames_out: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def short_id(self) -> str:
        return self.client.connection_id[:8]

    def describe(self) -> dict[str, Any]:
        """GetConnection's wire shape (botocore reads camelCase keys and ISO-8601 times)."""
        return {
            "connectedAt": _iso(self.client.connected_at_ms),
            "identity": {"sourceIp": self.client.source_ip, "userAgent": self.client.user_agent or ""},
            "lastActiveAt": _iso(self.last_active_ms),
        }


def _iso(epoch_ms: int) -> str:
    return (
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
