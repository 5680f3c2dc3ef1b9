"""The gateway's side of the dashboard's WebSocket: who may open it, and who serves it once open.

The socket at `/_emulator/live` is the emulator's own, not the API's: no authorizer, no `$connect`, no
route. It shows invocations and can close connections, so only a page of the emulator's own origin may
open it (a browser always sends `Origin` on a WebSocket handshake; a foreign page cannot forge it).
"""

from __future__ import annotations

from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers

from ws_emulator.gateway.static_site import PlainReply

LIVE_PATH = "/_emulator/live"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def own_origins(bound_host: str, port: int) -> frozenset[str]:
    """The origins of pages the emulator itself serves on its WebSocket port."""
    hosts = {bound_host if ":" not in bound_host else f"[{bound_host}]", *LOOPBACK_NAMES}
    return frozenset(f"http://{host}:{port}" for host in hosts)


def origin_refusal(origin: str | None, bound_host: str, port: int) -> PlainReply | None:
    """None when `origin` is the emulator's own; else a 403 that says why."""
    if origin is not None and origin in own_origins(bound_host, port):
        return None
    shown = "no Origin header" if origin is None else f"Origin {origin!r}"
    message = f"{LIVE_PATH} is for the emulator's own dashboard page: {shown} is not its origin\n"
    return PlainReply(403, message.encode(), "text/plain; charset=utf-8")


class LiveEndpoint(Protocol):
    """What serves the dashboard's socket (ws_emulator.observe.dashboard.Dashboard)."""

    path: str

    def refusal(self, headers: Headers, bound_host: str, port: int) -> PlainReply | None: ...

    async def serve(self, ws: ServerConnection) -> None: ...
