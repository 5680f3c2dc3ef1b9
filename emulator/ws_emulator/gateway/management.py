"""The `@connections` management API, the Lambda Invoke API (gateway.lambda_invoke) and the emulator's
admin endpoints, served over asyncio streams."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from ws_emulator.errors import ClientThrottledError, ConnectionGoneError
from ws_emulator.faults import Faults
from ws_emulator.gateway import limits
from ws_emulator.gateway.devtokens import token_reply
from ws_emulator.gateway.events import new_id
from ws_emulator.gateway.http11 import (
    CONTINUE,
    MAX_HEAD_BYTES,
    BadRequest,
    HttpRequest,
    HttpResponse,
    body_length,
    parse_head,
)
from ws_emulator.gateway.origins import AccessPolicy, Refusal

KEEP_ALIVE_TIMEOUT_S = 75.0
CONNECTIONS_SEGMENT = "/@connections/"
LAMBDA_PREFIX = "/2015-03-31/functions/"


class ConnectionsBackend(Protocol):
    """What the management API needs from the gateway."""

    async def post(self, connection_id: str, data: bytes) -> None: ...
    def describe(self, connection_id: str) -> dict[str, Any]: ...
    def delete(self, connection_id: str) -> None: ...
    def summary(self) -> list[dict[str, Any]]: ...


def json_response(status: int, document: Any) -> HttpResponse:
    return HttpResponse(
        status,
        json.dumps(document).encode(),
        [("Content-Type", "application/json"), ("x-amzn-RequestId", new_id())],
    )


def aws_error(status: int, error_type: str, message: str) -> HttpResponse:
    """An error botocore maps to `client.exceptions.<error_type>` (it reads x-amzn-ErrorType first)."""
    response = json_response(status, {"message": message})
    response.headers.append(("x-amzn-ErrorType", error_type))
    return response


class ManagementApi:
    """Serves `/{stage}/@connections/{id}` (POST, GET, DELETE) and `/_emulator/*` on its own port."""

    def __init__(
        self,
        backend: ConnectionsBackend,
        *,
        stage: str,
        log: logging.Logger,
        dead_letters: Callable[[], Mapping[str, Any]] | None = None,
        token_minter: Callable[[str, str | None], str] | None = None,
        faults: Faults | None = None,
        info: Callable[[], Mapping[str, Any]] | None = None,
        message_limit_bytes: int = limits.MESSAGE_LIMIT_BYTES,
        authorize: Callable[[str | None, str, str], str | None] | None = None,
        access: AccessPolicy | None = None,
        lambda_api: Callable[[HttpRequest], Awaitable[HttpResponse]] | None = None,
        put_events: Callable[[Mapping[str, str]], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.backend = backend
        # the Lambda Invoke API (gateway.lambda_invoke), and the PutEvents entries recorded (aws.eventbridge)
        self.lambda_api = lambda_api
        self.put_events = put_events
        self.stage = stage
        self.log = log
        self.dead_letters = dead_letters
        self.token_minter = token_minter
        self.faults = faults or Faults()
        self.info = info
        self.message_limit_bytes = message_limit_bytes
        # (Authorization header, method, connection id) -> why IAM refuses the call, or None.
        self.authorize = authorize
        # None: the strictest policy for the socket it is given (see start()).
        self.access = access
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, sock: socket.socket) -> None:
        host, self.port = sock.getsockname()[:2]
        if self.access is None:
            self.access = AccessPolicy.build(str(host), int(self.port))
        self._server = await asyncio.start_server(self._serve_client, sock=sock, limit=MAX_HEAD_BYTES)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Idle keep-alive clients would otherwise hold the server open.
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._server = None

    # ---- HTTP/1.1 --------------------------------------------------------------------------------

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), KEEP_ALIVE_TIMEOUT_S)
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            await self._write(writer, HttpResponse(431), keep_alive=False)
            return False
        try:
            method, target, version, headers = parse_head(head[:-4])
            length = body_length(headers)
        except BadRequest as exc:
            await self._write(writer, json_response(exc.status, {"message": str(exc)}), keep_alive=False)
            return False
        assert self.access is not None
        misdirected = self.access.host_refusal(headers.get("host"), self.port)
        if misdirected is not None:
            # Before the body is read: a rebinding page gets nothing, not even a 100 Continue.
            self.log.warning(
                "refused %s (%d): Host %r",
                target.partition("?")[0][:80],
                misdirected.status,
                headers.get("host"),
            )
            await self._write(writer, _refusal_response(misdirected), keep_alive=False)
            return False
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(CONTINUE)
        body = await reader.readexactly(length) if length else b""
        path, _, query = target.partition("?")
        request = HttpRequest(method, path, tuple(parse_qsl(query)), version, headers, body)
        try:
            response = await self.handle(request)
        except Exception:
            self.log.exception("management API failed on %s %s", method, path)
            response = aws_error(500, "InternalServerErrorException", "Internal server error")
        await self._write(writer, response, keep_alive=request.keep_alive)
        return request.keep_alive

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, response: HttpResponse, *, keep_alive: bool) -> None:
        writer.write(response.encode(keep_alive=keep_alive))
        await writer.drain()

    # ---- routes ----------------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Dispatch one parsed request."""
        refused = self._browser_refusal(request)
        if refused is not None:
            return refused
        if request.path.startswith("/_emulator/"):
            return await self._admin(request)
        if request.path.startswith(LAMBDA_PREFIX) and self.lambda_api is not None:
            return await self.lambda_api(request)
        return await self._connections(request)

    async def _connections(self, request: HttpRequest) -> HttpResponse:
        prefix, sep, raw_id = request.path.partition(CONNECTIONS_SEGMENT)
        if not sep or not raw_id or "/" in raw_id:
            return aws_error(403, "ForbiddenException", "Forbidden")
        if prefix not in ("", f"/{self.stage}"):
            return aws_error(403, "ForbiddenException", f"Forbidden: unknown stage {prefix.strip('/')!r}")
        return await self._connection_call(request, unquote(raw_id))

    async def _connection_call(self, request: HttpRequest, connection_id: str) -> HttpResponse:
        """POST, GET or DELETE on one connection, once IAM allows the caller."""
        if self.authorize is not None:
            denial = self.authorize(request.headers.get("authorization"), request.method, connection_id)
            if denial is not None:
                return aws_error(403, "ForbiddenException", denial)
        if request.method == "POST":
            return await self._post(connection_id, request.body)
        operations = {"GET": self._get, "DELETE": self._delete}
        operation = operations.get(request.method)
        if operation is None:
            return aws_error(403, "ForbiddenException", f"Forbidden: {request.method} is not supported")
        return operation(connection_id)

    def _browser_refusal(self, request: HttpRequest) -> HttpResponse | None:
        """origins.py's rules: admin endpoints for the emulator's own pages, @connections for SDKs."""
        access = self.access or AccessPolicy.build("127.0.0.1", self.port)
        origin = request.headers.get("origin")
        if request.path.startswith("/_emulator/"):
            refusal = access.admin_refusal(
                request.method, origin, request.headers.get("content-type"), has_body=bool(request.body)
            )
            response = _refusal_response(refusal) if refusal is not None else None
        else:
            refusal = access.connections_refusal(origin)
            response = aws_error(403, "ForbiddenException", refusal.message) if refusal is not None else None
        if refusal is not None:
            self.log.warning(
                "refused %s %s (%d): Origin %r", request.method, request.path[:80], refusal.status, origin
            )
        return response

    async def _post(self, connection_id: str, data: bytes) -> HttpResponse:
        if len(data) > self.message_limit_bytes:
            return aws_error(413, "PayloadTooLargeException", "Request entity too large")
        fault = self.faults.pick()
        if fault == "gone":
            return aws_error(410, "GoneException", f"Injected fault: {connection_id} is gone")
        if fault == "throttle":
            return aws_error(429, "LimitExceededException", "Injected fault: rate exceeded")
        try:
            await self.backend.post(connection_id, data)
        except ConnectionGoneError:
            return aws_error(410, "GoneException", _gone_message(connection_id))
        except ClientThrottledError:
            return aws_error(429, "LimitExceededException", "Client buffer full")
        return HttpResponse(200, b"", [("x-amzn-RequestId", new_id())])

    def _get(self, connection_id: str) -> HttpResponse:
        try:
            return json_response(200, self.backend.describe(connection_id))
        except ConnectionGoneError:
            return aws_error(410, "GoneException", _gone_message(connection_id))

    def _delete(self, connection_id: str) -> HttpResponse:
        try:
            self.backend.delete(connection_id)
        except ConnectionGoneError:
            return aws_error(410, "GoneException", _gone_message(connection_id))
        return HttpResponse(204, b"", [("x-amzn-RequestId", new_id())])

    async def _admin(self, request: HttpRequest) -> HttpResponse:
        name = request.path.removeprefix("/_emulator/").rstrip("/")
        if name == "faults":
            return self._faults(request)
        if request.method != "GET":
            return json_response(405, {"message": f"{request.method} not allowed on {request.path}"})
        if name == "dead-letters":
            # Peeking at queues is blocking boto3 work: keep it off the loop that serves the sockets.
            letters = await asyncio.to_thread(self.dead_letters) if self.dead_letters else {}
            return json_response(200, {"deadLetters": dict(letters)})
        endpoints: dict[str, Callable[[], HttpResponse]] = {
            "health": lambda: json_response(200, {"status": "ok", **(self.info() if self.info else {})}),
            "connections": lambda: json_response(200, {"connections": self.backend.summary()}),
            "token": lambda: self._token(dict(request.query)),
            "events": lambda: json_response(
                200, {"events": self.put_events(dict(request.query)) if self.put_events else []}
            ),
        }
        endpoint = endpoints.get(name)
        if endpoint is None:
            return json_response(404, {"message": f"no such endpoint: {request.path}"})
        return endpoint()

    def _faults(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("PUT", "POST"):
            try:
                self.faults.configure(json.loads(request.body or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:
                return json_response(400, {"message": f"bad fault settings: {exc}"})
            self.log.warning("fault injection now %s", self.faults.as_dict())
        elif request.method == "DELETE":
            self.faults.clear()
        return json_response(200, self.faults.as_dict())

    def _token(self, query: Mapping[str, str]) -> HttpResponse:
        if self.token_minter is None:
            return json_response(
                404, {"message": "development tokens are off (start with --dev-token-secret)"}
            )
        status, document = token_reply(self.token_minter, query)
        return json_response(status, document)


def _refusal_response(refusal: Refusal) -> HttpResponse:
    return json_response(refusal.status, {"message": refusal.message})


def _gone_message(connection_id: str) -> str:
    """AWS's GoneException carries no detail; naming the id helps whoever reads the handler's logs."""
    return f"Connection {connection_id} is gone"
