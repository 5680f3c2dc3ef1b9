"""The WebSocket front end: handshake (authorizer, `$connect`), route dispatch, limits, `$disconnect`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import http
import json
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from ws_emulator.errors import ClientThrottledError, ConnectionGoneError
from ws_emulator.gateway import authorizer as authz
from ws_emulator.gateway import limits
from ws_emulator.gateway.events import (
    ApiInfo,
    ClientInfo,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
    new_id,
)
from ws_emulator.gateway.routing import CONNECT_ROUTE, DISCONNECT_ROUTE, SelectionExpression, select_route
from ws_emulator.gateway.static_site import PlainReply, Site

# Outgoing bytes buffered for one client before @connections posts answer 429, as AWS does when a
# client does not read. Also the write high-water mark, so a post never waits on a slow reader.
CLIENT_BUFFER_LIMIT = 1024 * 1024
# Messages of one connection waiting for their turn; beyond it the server stops reading that socket.
PER_CONNECTION_QUEUE = 64
# After $connect accepted, the rest of the handshake takes microseconds; past this it has failed.
HANDSHAKE_GRACE_S = 10.0


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
    close_cause: limits.CloseCause | None = None
    closing: bool = False
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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _status_of(result: InvocationResult) -> int:
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


def _route_response_body(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("body") is None:
        return None
    body = payload["body"]
    return body if isinstance(body, str) else json.dumps(body)


def _json_response(status: int, body: Mapping[str, Any]) -> Response:
    # Built by hand: `respond()` only takes standard codes and plain text, and $connect may answer any code.
    data = json.dumps(body).encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", new_id()),
        ]
    )
    return Response(status, _phrase(status), headers, data)


def _is_upgrade(headers: Headers) -> bool:
    return any("websocket" in value.lower() for value in headers.get_all("Upgrade"))


def _plain_response(reply: PlainReply) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(reply.body))),
            *reply.headers,
        ]
    )
    return Response(reply.status, _phrase(reply.status), headers, reply.body)


_REJECT_MESSAGES = {
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal server error",
}


class Gateway:
    """Serves one WebSocket API: accepts connections on a socket and invokes the template's functions."""

    def __init__(
        self,
        api: GatewayApi,
        invoker: Invoker,
        settings: GatewaySettings,
        *,
        log: logging.Logger,
        event_log: logging.Logger,
        function_names: Mapping[str, str] | None = None,
        site: Site | None = None,
    ) -> None:
        self.api = api
        self.invoker = invoker
        self.settings = settings
        self.log = log
        self.event_log = event_log
        self.function_names = dict(function_names or {})
        self.site = site
        self.connections: dict[str, Connection] = {}
        self.disconnects_running = 0
        self._pending: dict[ServerConnection, Connection] = {}
        self._orphans: set[asyncio.Task[None]] = set()
        self._bucket = limits.TokenBucket(settings.connect_rate)
        self._server: Server | None = None
        self.port = 0
        self.host = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already bound socket, so ports are known before functions get their environment."""
        self.host, self.port = sock.getsockname()[:2]
        self._server = await serve(
            self._handle,
            sock=sock,
            process_request=self._handshake,
            max_size=(self.settings.message_limit_bytes, self.settings.frame_limit_bytes),
            # API Gateway does not negotiate permessage-deflate; limits then apply to bytes on the wire.
            compression=None,
            # API Gateway answers pings but never sends them: liveness is the idle timeout's job.
            ping_interval=None,
            # The handshake waits for the authorizer and $connect, each up to the 29 s integration timeout.
            open_timeout=60,
            write_limit=CLIENT_BUFFER_LIMIT,
            server_header="ws-emulator",
            logger=logging.getLogger("ws_emulator.websockets"),
        )

    async def shutdown(self) -> None:
        """Stop accepting, close every connection with 1001 and wait until each `$disconnect` has run,
        for at most `shutdown_timeout_s`."""
        if self._server is None:
            return
        open_before = len(self.connections)
        self._server.close(close_connections=True, code=limits.GOING_AWAY, reason=limits.GOING_AWAY_REASON)
        try:
            await asyncio.wait_for(self._server.wait_closed(), self.settings.shutdown_timeout_s)
        except TimeoutError:
            self.log.warning(
                "shutdown: %d $disconnect invocation(s) still running after %g s (%d connection(s) were "
                "open); not waiting for them",
                self.disconnects_running,
                self.settings.shutdown_timeout_s,
                open_before,
            )
        self._server = None

    # ---- handshake -------------------------------------------------------------------------------

    def _path_matches(self, path: str) -> bool:
        return path.rstrip("/") in ("", f"/{self.api.info.stage}")

    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query_string = request.path.partition("?")
        if self.site is not None and not _is_upgrade(request.headers):
            # A page and its token on the same origin as the socket; they count against no WebSocket limit.
            reply = await self.site.respond(path, query_string)
            if reply is not None:
                return _plain_response(reply)
        if not self._path_matches(path):
            return _json_response(403, {"message": "Forbidden"})
        if not self._bucket.try_take(time.monotonic()):
            self.log.warning("new connection refused: over %s connections/s", self.settings.connect_rate)
            return _json_response(429, {"message": "Too Many Requests"})
        now_ms = _now_ms()
        remote = ws.remote_address
        source_ip = str(remote[0]) if remote else "127.0.0.1"
        client = ClientInfo(
            connection_id=new_id(),
            connected_at_ms=now_ms,
            source_ip=source_ip,
            user_agent=request.headers.get("User-Agent"),
            headers=_with_forwarding(request.headers, source_ip, self.port),
            query=tuple(parse_qsl(query_string, keep_blank_values=True)),
        )
        route = self.api.routes.get(CONNECT_ROUTE)
        authorizer_context: dict[str, Any] | None = None
        if route is not None and route.authorizer is not None:
            decision, latency_ms = await self._authorize(route.authorizer, client)
            if not decision.allowed:
                return _json_response(
                    decision.status, {"message": _REJECT_MESSAGES.get(decision.status, "Error")}
                )
            authorizer_context = decision.request_context_authorizer(latency_ms)
        if route is not None and route.function_id is not None:
            event = connect_event(
                self.api.info, client, request_id=new_id(), now_ms=_now_ms(), authorizer=authorizer_context
            )
            result = await self.invoker.invoke(route.function_id, event)
            status = _status_of(result)
            self._log_event(CONNECT_ROUTE, client.connection_id, route.function_id, status, result)
            if not 200 <= status < 300:
                self._log_error(CONNECT_ROUTE, client.connection_id, result)
                body = _route_response_body(result.payload) if result.ok else None
                message = _REJECT_MESSAGES.get(status, body or _phrase(status))
                return _json_response(status, {"message": message})
        mono = time.monotonic()
        # Should the handshake still fail (client gone), the handler never runs: forget it later.
        asyncio.get_running_loop().call_later(HANDSHAKE_GRACE_S, self._forget_pending, ws)
        self._pending[ws] = Connection(
            client=client,
            ws=ws,
            authorizer=authorizer_context,
            connected_mono=mono,
            last_active_mono=mono,
            last_active_ms=now_ms,
        )
        return None

    def _forget_pending(self, ws: ServerConnection) -> None:
        conn = self._pending.pop(ws, None)
        if conn is not None:
            self.log.info("connection %s never opened after $connect", conn.client.connection_id)
            cause = limits.client_close_cause(None, None)
            task = asyncio.create_task(self._disconnect(conn, cause))
            self._orphans.add(task)
            task.add_done_callback(self._orphans.discard)

    async def _authorize(self, spec: AuthorizerDef, client: ClientInfo) -> tuple[authz.AuthDecision, int]:
        missing = authz.missing_identity_sources(spec.identity_sources, client.headers, client.query)
        if missing:
            self._log_event(
                "authorizer", client.connection_id, spec.function_id, 401, None, note="no identity"
            )
            self.log.info("401 without invoking %s: missing %s", spec.logical_id, ", ".join(missing))
            return authz.AuthDecision(401, reason="missing identity source"), 0
        event = authorizer_event(self.api.info, client, request_id=new_id(), now_ms=_now_ms())
        result = await self.invoker.invoke(spec.function_id, event)
        decision = authz.decide(result.ok, result.payload, result.error, self.api.info.connect_method_arn)
        shown = "Allow" if decision.allowed else str(decision.status)
        self._log_event("authorizer", client.connection_id, spec.function_id, shown, result)
        if decision.status == 500:
            self.log.error("authorizer %s: %s", spec.logical_id, decision.reason)
            self._log_error("authorizer", client.connection_id, result)
        return decision, int(result.duration_ms)

    # ---- connection life -------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = self._pending.pop(ws, None)
        if conn is None:
            # Only if the handshake outlived HANDSHAKE_GRACE_S: its $disconnect has already run.
            await ws.close(1011, "Internal server error")
            return
        cid = conn.client.connection_id
        self.connections[cid] = conn
        queue: asyncio.Queue[str | bytes | None] = asyncio.Queue(PER_CONNECTION_QUEUE)
        worker = asyncio.create_task(self._dispatch_loop(conn, queue))
        watchdog = asyncio.create_task(self._watchdog(conn))
        try:
            async for message in ws:
                conn.last_active_mono = time.monotonic()
                conn.last_active_ms = _now_ms()
                await queue.put(message)
        except ConnectionClosed:
            pass
        finally:
            # Gone for the management API at once; messages already received are still dispatched, as on AWS.
            self.connections.pop(cid, None)
            # The socket is closed by now, so interrupting a close the watchdog started loses nothing.
            watchdog.cancel()
            await queue.put(None)
            await asyncio.gather(worker, watchdog, return_exceptions=True)
            await self._disconnect(conn, self._close_cause(conn))

    def _close_cause(self, conn: Connection) -> limits.CloseCause:
        if conn.close_cause is not None:
            return conn.close_cause
        protocol = conn.ws.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        if sent is not None and (received is None or not protocol.close_rcvd_then_sent):
            # The server spoke first without a recorded cause: the frame parser (1009) or server shutdown.
            return limits.CloseCause(int(sent.code), sent.reason or _default_reason(int(sent.code)))
        return limits.client_close_cause(
            int(received.code) if received is not None else None, received.reason if received else None
        )

    async def _watchdog(self, conn: Connection) -> None:
        while True:
            deadline, cause = limits.next_deadline(
                connected_at=conn.connected_mono,
                last_active=conn.last_active_mono,
                idle_timeout_s=self.settings.idle_timeout_s,
                max_duration_s=self.settings.max_duration_s,
            )
            delay = deadline - time.monotonic()
            if delay <= 0:
                await self.close_connection(conn, cause)
                return
            await asyncio.sleep(delay)

    async def close_connection(self, conn: Connection, cause: limits.CloseCause) -> None:
        """Close from the server side; the cause is what `$disconnect` will report."""
        if conn.closing:
            return
        conn.closing = True
        conn.close_cause = cause
        await conn.ws.close(cause.status_code, cause.reason)

    async def _disconnect(self, conn: Connection, cause: limits.CloseCause) -> None:
        route = self.api.routes.get(DISCONNECT_ROUTE)
        cid = conn.client.connection_id
        if route is None or route.function_id is None:
            self.log.debug("connection %s closed (%s %s)", cid, cause.status_code, cause.reason)
            return
        event = disconnect_event(
            self.api.info,
            conn.client,
            status_code=cause.status_code,
            reason=cause.reason,
            request_id=new_id(),
            now_ms=_now_ms(),
            authorizer=conn.authorizer,
        )
        self.disconnects_running += 1
        try:
            result = await self.invoker.invoke(route.function_id, event)
        finally:
            self.disconnects_running -= 1
        self._log_event(DISCONNECT_ROUTE, cid, route.function_id, _status_of(result), result)
        self._log_error(DISCONNECT_ROUTE, cid, result)

    # ---- messages --------------------------------------------------------------------------------

    async def _dispatch_loop(self, conn: Connection, queue: asyncio.Queue[str | bytes | None]) -> None:
        while (message := await queue.get()) is not None:
            try:
                await self._dispatch(conn, message)
            except Exception:
                # A bug here must not end the connection's worker and silently drop later messages.
                self.log.exception("dispatch failed on %s", conn.client.connection_id)

    async def _dispatch(self, conn: Connection, message: str | bytes) -> None:
        cid = conn.client.connection_id
        request_id = new_id()
        if isinstance(message, bytes):
            body, is_base64, selectable = base64.b64encode(message).decode(), True, None
        else:
            body, is_base64, selectable = message, False, message
        route_key = select_route(self.api.selection, selectable, self.api.routes)
        if route_key is None:
            self._log_event("(no route)", cid, None, 403, None)
            await self._send(conn, {"message": "Forbidden", "connectionId": cid, "requestId": request_id})
            return
        route = self.api.routes[route_key]
        if route.function_id is None:
            return
        event = message_event(
            self.api.info,
            conn.client,
            route_key=route_key,
            body=body,
            is_base64_encoded=is_base64,
            message_id=new_id(),
            request_id=request_id,
            now_ms=_now_ms(),
            authorizer=conn.authorizer,
        )
        result = await self.invoker.invoke(route.function_id, event)
        self._log_event(route_key, cid, route.function_id, _status_of(result), result)
        if not result.ok:
            self._log_error(route_key, cid, result)
            await self._send(
                conn, {"message": "Internal server error", "connectionId": cid, "requestId": request_id}
            )
            return
        if route.has_route_response:
            reply = _route_response_body(result.payload)
            if reply is not None:
                await self._send_raw(conn, reply)

    async def _send(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        await self._send_raw(conn, json.dumps(frame))

    async def _send_raw(self, conn: Connection, data: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(data)

    # ---- management API --------------------------------------------------------------------------

    def _open(self, connection_id: str) -> Connection:
        conn = self.connections.get(connection_id)
        if conn is None or conn.ws.protocol.state is not State.OPEN or conn.closing:
            raise ConnectionGoneError(connection_id)
        return conn

    async def post(self, connection_id: str, data: bytes) -> None:
        """PostToConnection: a text frame when the data is UTF-8, else a binary frame."""
        conn = self._open(connection_id)
        transport = conn.ws.transport
        if transport is not None and transport.get_write_buffer_size() >= CLIENT_BUFFER_LIMIT:
            raise ClientThrottledError(connection_id)
        try:
            frame: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            frame = data
        try:
            await conn.ws.send(frame)
        except ConnectionClosed as exc:
            raise ConnectionGoneError(connection_id) from exc
        conn.last_active_ms = _now_ms()

    def describe(self, connection_id: str) -> dict[str, Any]:
        return self._open(connection_id).describe()

    def delete(self, connection_id: str) -> None:
        """DeleteConnection: answers at once; the close and `$disconnect` follow, as on AWS."""
        conn = self._open(connection_id)
        task = asyncio.create_task(self.close_connection(conn, limits.DELETED))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    def summary(self) -> list[dict[str, Any]]:
        """Open connections for the admin endpoint."""
        return [
            {"connectionId": cid, "authorizer": conn.authorizer, **conn.describe()}
            for cid, conn in self.connections.items()
        ]

    # ---- logging ---------------------------------------------------------------------------------

    def _log_event(
        self,
        route: str,
        connection_id: str,
        function_id: str | None,
        status: int | str,
        result: InvocationResult | None,
        *,
        note: str = "",
    ) -> None:
        name = self.function_names.get(function_id, function_id) if function_id else "-"
        duration_ms = result.duration_ms if result is not None else 0.0
        # The runtime reports cold starts separately (Lambda bills and logs Init Duration apart, too).
        if getattr(result, "cold_start", False):
            note = f"{note}  cold start, init {getattr(result, 'init_ms', 0.0):.0f} ms".strip()
        self.event_log.info(
            "%-12s %-8s %-24s %-5s %7.1f ms%s",
            route,
            connection_id[:8],
            name,
            status,
            duration_ms,
            f"  {note}" if note else "",
        )

    def _log_error(self, route: str, connection_id: str, result: InvocationResult) -> None:
        if result.ok or result.error is None:
            return
        error = result.error
        self.log.warning(
            "%s on %s: %s: %s", route, connection_id[:8], error.get("errorType"), error.get("errorMessage")
        )
        trace = error.get("stackTrace")
        if trace:
            self.log.debug("%s", "".join(trace) if isinstance(trace, list) else trace)


def _with_forwarding(headers: Headers, source_ip: str, port: int) -> tuple[tuple[str, str], ...]:
    """Handshake headers plus the X-Forwarded-* ones API Gateway's front end adds (unless present)."""
    pairs = list(headers.raw_items())
    present = {name.lower() for name, _ in pairs}
    added = {"X-Forwarded-For": source_ip, "X-Forwarded-Port": str(port), "X-Forwarded-Proto": "http"}
    pairs += [(name, value) for name, value in added.items() if name.lower() not in present]
    return tuple(pairs)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _default_reason(code: int) -> str:
    if code == limits.GOING_AWAY:
        return limits.GOING_AWAY_REASON
    if code == limits.MESSAGE_TOO_BIG:
        return "Message too big"
    return ""
