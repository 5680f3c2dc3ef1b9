"""The WebSocket front end (asyncio): handshake (authorizer, `$connect`), dispatch, limits, `$disconnect`.

It only moves bytes and awaits invocations: what to refuse is in handshake.py, why a connection
ended in closing.py, where a frame goes in routing.py, deadlines and rates in limits.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from ws_emulator.errors import ClientThrottledError, ConnectionGoneError
from ws_emulator.gateway import authorizer as authz
from ws_emulator.gateway import closing, handshake, limits
from ws_emulator.gateway.events import (
    ClientInfo,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
    new_id,
)
from ws_emulator.gateway.handshake import Rejection
from ws_emulator.gateway.http11 import closing_headers, reason_phrase
from ws_emulator.gateway.integration import InvocationResult, Invoker, route_response_body
from ws_emulator.gateway.live import LiveEndpoint
from ws_emulator.gateway.model import AuthorizerDef, Connection, GatewayApi, GatewaySettings
from ws_emulator.gateway.origins import AccessPolicy, Refusal
from ws_emulator.gateway.routing import CONNECT_ROUTE, DISCONNECT_ROUTE, select_route
from ws_emulator.gateway.static_site import PlainReply, Site

# Outgoing bytes buffered for one client before @connections posts answer 429, as AWS does when a
# client does not read. Also the write high-water mark, so a post never waits on a slow reader.
CLIENT_BUFFER_LIMIT = 1024 * 1024
# Messages of one connection waiting for their turn; beyond it the server stops reading that socket.
PER_CONNECTION_QUEUE = 64
# After $connect accepted, the rest of the handshake takes microseconds; past this it has failed.
HANDSHAKE_GRACE_S = 10.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rejected(rejection: Rejection) -> Response:
    # Built by hand: `respond()` only takes standard codes and plain text, and $connect may answer any code.
    data = json.dumps(rejection.body).encode()
    headers = Headers([*closing_headers("application/json", len(data)), ("x-amzn-RequestId", new_id())])
    return Response(rejection.status, reason_phrase(rejection.status), headers, data)


def _single(headers: Headers, name: str) -> str | None:
    """A header's value; None when absent, "" (which no check accepts) when repeated."""
    values = headers.get_all(name)
    if not values:
        return None
    return values[0] if len(values) == 1 else ""


def _refused(refusal: Refusal) -> Response:
    return _plain_response(
        PlainReply(
            refusal.status,
            json.dumps({"message": refusal.message}).encode(),
            "application/json",
            (("X-Content-Type-Options", "nosniff"),),
        )
    )


def _plain_response(reply: PlainReply) -> Response:
    headers = Headers([*closing_headers(reply.content_type, len(reply.body)), *reply.headers])
    return Response(reply.status, reason_phrase(reply.status), headers, reply.body)


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
        access: AccessPolicy | None = None,
        post_observer: Callable[[str], None] | None = None,
        live: LiveEndpoint | None = None,
    ) -> None:
        self.api = api
        self.invoker = invoker
        self.settings = settings
        self.log = log
        self.event_log = event_log
        self.function_names = dict(function_names or {})
        self.site = site
        # None: the strictest policy for the socket it is given (loopback origins of its own port).
        self.access = access
        # Counts `@connections` posts by outcome (ok, gone, throttled) for the dashboard.
        self.post_observer = post_observer
        # The dashboard's own WebSocket (`/_emulator/live`): no authorizer, no routes, same origin only.
        self.live = live
        self._live_sockets: set[ServerConnection] = set()
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
        if self.access is None:
            self.access = AccessPolicy.build(str(self.host), int(self.port))
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
        self._server.close(close_connections=True, code=closing.GOING_AWAY, reason=closing.GOING_AWAY_REASON)
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

    async def _handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        # Host and Origin rules first, for the API, the pages and the dashboard's socket alike.
        refusal = self._access_refusal(path, request)
        if refusal is not None:
            return _refused(refusal)
        if self.live is not None and path == self.live.path:
            return self._live_handshake(ws, request)
        return await self._api_handshake(ws, request)

    def _live_handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        """The dashboard's socket: accepted for the emulator's own origin only, never seen by the API."""
        assert self.live is not None
        not_ours = self.live.refusal(request.headers, self.host, self.port)
        if not_ours is not None:
            return _plain_response(not_ours)
        self._live_sockets.add(ws)
        return None

    async def _api_handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        path, _, query_string = request.path.partition("?")
        if self.site is not None and not handshake.is_upgrade(request.headers.get_all("Upgrade")):
            # A page and its token on the same origin as the socket; they count against no WebSocket limit.
            reply = await self.site.respond(path, query_string)
            if reply is not None:
                return _plain_response(reply)
        early = handshake.early_rejection(
            path, self.api.info.stage, lambda: self._bucket.try_take(time.monotonic())
        )
        if early is not None:
            if early.status == 429:
                self.log.warning("new connection refused: over %s connections/s", self.settings.connect_rate)
            return _rejected(early)
        now_ms = _now_ms()
        client = handshake.client_info(
            connection_id=new_id(),
            now_ms=now_ms,
            remote=ws.remote_address,
            user_agent=request.headers.get("User-Agent"),
            headers=tuple(request.headers.raw_items()),
            query_string=query_string,
            port=self.port,
        )
        route = self.api.routes.get(CONNECT_ROUTE)
        authorizer_context: dict[str, Any] | None = None
        if route is not None and route.authorizer is not None:
            decision, latency_ms = await self._authorize(route.authorizer, client)
            refused = handshake.authorizer_rejection(decision)
            if refused is not None:
                return _rejected(refused)
            authorizer_context = decision.request_context_authorizer(latency_ms)
        if route is not None and route.function_id is not None:
            event = connect_event(
                self.api.info, client, request_id=new_id(), now_ms=_now_ms(), authorizer=authorizer_context
            )
            result = await self.invoker.invoke(route.function_id, event)
            refused = handshake.connect_rejection(result)
            if refused is not None:
                self._log_error(CONNECT_ROUTE, client.connection_id, result)
                return _rejected(refused)
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

    def _access_refusal(self, path: str, request: Request) -> Refusal | None:
        """Host on every request (DNS rebinding), Origin on `/_emulator/*` and on handshakes."""
        assert self.access is not None
        headers = request.headers
        host, origin = _single(headers, "Host"), _single(headers, "Origin")
        refusal = self.access.host_refusal(host, self.port)
        if refusal is None and path.startswith("/_emulator/"):
            # Plain GETs only on this port (websockets refuses other methods), so no body to check.
            refusal = self.access.admin_refusal("GET", origin, None, has_body=False)
        if refusal is None and handshake.is_upgrade(headers.get_all("Upgrade")):
            refusal = self.access.handshake_refusal(origin)
        if refusal is not None:
            # The Origin is the attacker's page, worth showing; nothing secret is in these headers.
            self.log.warning("refused %s (%d): Host %r, Origin %r", path[:80], refusal.status, host, origin)
        return refusal

    def _forget_pending(self, ws: ServerConnection) -> None:
        conn = self._pending.pop(ws, None)
        if conn is not None:
            self.log.info("connection %s never opened after $connect", conn.client.connection_id)
            cause = closing.client_close_cause(None, None)
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
        if decision.status == 500:
            self.log.error("authorizer %s: %s", spec.logical_id, decision.reason)
            self._log_error("authorizer", client.connection_id, result)
        return decision, int(result.duration_ms)

    # ---- connection life -------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if ws in self._live_sockets and self.live is not None:
            try:
                await self.live.serve(ws)
            finally:
                self._live_sockets.discard(ws)
            return
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
                conn.frames_in += 1
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

    def _close_cause(self, conn: Connection) -> closing.CloseCause:
        protocol = conn.ws.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        return closing.close_cause(
            conn.close_cause,
            closing.CloseFrame(int(sent.code), sent.reason) if sent is not None else None,
            closing.CloseFrame(int(received.code), received.reason) if received is not None else None,
            received_then_sent=protocol.close_rcvd_then_sent,
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

    async def close_connection(self, conn: Connection, cause: closing.CloseCause) -> None:
        """Close from the server side; the cause is what `$disconnect` will report."""
        if conn.closing:
            return
        conn.closing = True
        conn.close_cause = cause
        await conn.ws.close(cause.status_code, cause.reason)

    async def _disconnect(self, conn: Connection, cause: closing.CloseCause) -> None:
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
        reply = route_response_body(result.payload) if result.ok and route.has_route_response else None
        too_large = limits.oversized_reply(reply, self.settings.message_limit_bytes) if reply else None
        if too_large:
            # The invocation's own line comes from the recorder; this one says why its reply is missing.
            name = self.function_names.get(route.function_id, route.function_id)
            self.event_log.warning("%-12s %-8s %-24s %s", route_key, cid[:8], name, too_large)
        if not result.ok:
            self._log_error(route_key, cid, result)
            await self._send(
                conn, {"message": "Internal server error", "connectionId": cid, "requestId": request_id}
            )
            return
        if reply is not None and too_large is None:
            await self._send_raw(conn, reply)

    async def _send(self, conn: Connection, frame: Mapping[str, Any]) -> None:
        await self._send_raw(conn, json.dumps(frame))

    async def _send_raw(self, conn: Connection, data: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.send(data)
            conn.frames_out += 1

    # ---- management API --------------------------------------------------------------------------

    def _open(self, connection_id: str) -> Connection:
        conn = self.connections.get(connection_id)
        if conn is None or conn.ws.protocol.state is not State.OPEN or conn.closing:
            raise ConnectionGoneError(connection_id)
        return conn

    async def post(self, connection_id: str, data: bytes) -> None:
        """PostToConnection: a text frame when the data is UTF-8, else a binary frame."""
        try:
            await self._post(connection_id, data)
        except ConnectionGoneError:
            self._count_post("gone")
            raise
        except ClientThrottledError:
            self._count_post("throttled")
            raise
        self._count_post("ok")

    def _count_post(self, outcome: str) -> None:
        if self.post_observer is not None:
            self.post_observer(outcome)

    async def _post(self, connection_id: str, data: bytes) -> None:
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
        conn.frames_out += 1
        conn.last_active_ms = _now_ms()

    def describe(self, connection_id: str) -> dict[str, Any]:
        return self._open(connection_id).describe()

    def delete(self, connection_id: str) -> None:
        """DeleteConnection: answers at once; the close and `$disconnect` follow, as on AWS."""
        conn = self._open(connection_id)
        task = asyncio.create_task(self.close_connection(conn, closing.DELETED))
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)

    def summary(self) -> list[dict[str, Any]]:
        """Open connections for the admin endpoint."""
        return [
            {"connectionId": cid, "authorizer": conn.authorizer, **conn.describe()}
            for cid, conn in self.connections.items()
        ]

    def live_connections(self) -> list[dict[str, Any]]:
        """Open connections as the dashboard lists them: identity, age, activity, frames each way."""
        now_mono, now_ms = time.monotonic(), _now_ms()
        rows = []
        for cid, conn in self.connections.items():
            authorizer = conn.authorizer or {}
            rows.append(
                {
                    "connectionId": cid,
                    "principalId": authorizer.get("principalId"),
                    "context": {
                        k: v for k, v in authorizer.items() if k not in ("principalId", "integrationLatency")
                    },
                    "sourceIp": conn.client.source_ip,
                    "connectedForS": round(now_mono - conn.connected_mono, 1),
                    "idleForS": round(max(0, now_ms - conn.last_active_ms) / 1000, 1),
                    "framesIn": conn.frames_in,
                    "framesOut": conn.frames_out,
                }
            )
        return rows

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
