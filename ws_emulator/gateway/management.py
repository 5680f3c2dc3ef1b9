"""The `@connections` management API and the emulator's admin endpoints, over a small HTTP/1.1 server."""

from __future__ import annotations

import asyncio
import email.utils
import http
import json
import logging
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from ws_emulator.gateway import limits
from ws_emulator.gateway.devtokens import token_reply
from ws_emulator.gateway.events import new_id
from ws_emulator.gateway.server import GoneError, ThrottledError

MAX_HEAD_BYTES = 64 * 1024
# Bodies above the 128 KB post limit are still read (up to this) so the client gets a clean 413.
MAX_BODY_BYTES = 4 * 1024 * 1024
KEEP_ALIVE_TIMEOUT_S = 75.0
CONNECTIONS_SEGMENT = "/@connections/"


class ConnectionsBackend(Protocol):
    """What the management API needs from the gateway."""

    async def post(self, connection_id: str, data: bytes) -> None: ...
    def describe(self, connection_id: str) -> dict[str, Any]: ...
    def delete(self, connection_id: str) -> None: ...
    def summary(self) -> list[dict[str, Any]]: ...


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.1 request we can answer; the connection is then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    version: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encode(self, *, keep_alive: bool) -> bytes:
        try:
            phrase = http.HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


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


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers of one request (pure); raises BadRequest on anything malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "undecodable head") from exc
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].startswith("/"):
        raise BadRequest(400, f"bad request line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        # Folded lines and spaces before the colon are request smuggling vectors: refuse them.
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise BadRequest(400, f"bad header line: {line[:80]!r}")
        key = name.lower()
        if key == "content-length" and key in headers and headers[key] != value.strip():
            raise BadRequest(400, "conflicting Content-Length headers")
        headers[key] = value.strip()
    return parts[0], parts[1], parts[2], headers


def body_length(headers: Mapping[str, str]) -> int:
    """Content-Length of the body; chunked uploads are not supported (boto3 always sends a length)."""
    if "transfer-encoding" in headers:
        raise BadRequest(501, "Transfer-Encoding is not supported; send Content-Length")
    raw = headers.get("content-length", "0")
    if not raw.isdigit():
        raise BadRequest(400, f"bad Content-Length: {raw!r}")
    length = int(raw)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "request body too large")
    return length


@dataclass
class Faults:
    """Fault injection: a share of @connections posts answered 410 or 429 although the socket is fine,
    and a share of the functions' DynamoDB requests answered ProvisionedThroughputExceededException."""

    post_gone_rate: float = 0.0
    post_throttle_rate: float = 0.0
    seed: int | None = None
    dynamodb_throttle_rate: float = 0.0
    dynamodb_throttled: int = 0  # requests answered with the throttling error so far
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _dynamodb_rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - test fault injection, not security
        self._dynamodb_rng = random.Random(self.seed)  # noqa: S311

    def throttle_dynamodb(self) -> bool:
        """Whether to throttle one DynamoDB request (called one request at a time)."""
        if not self.dynamodb_throttle_rate or self._dynamodb_rng.random() >= self.dynamodb_throttle_rate:
            return False
        self.dynamodb_throttled += 1
        return True

    def pick(self) -> str | None:
        """'gone', 'throttle' or None for one post."""
        if not (self.post_gone_rate or self.post_throttle_rate):
            return None
        roll = self._rng.random()
        if roll < self.post_gone_rate:
            return "gone"
        if roll < self.post_gone_rate + self.post_throttle_rate:
            return "throttle"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "postGoneRate": self.post_gone_rate,
            "postThrottleRate": self.post_throttle_rate,
            "dynamodbThrottleRate": self.dynamodb_throttle_rate,
            "dynamodbThrottled": self.dynamodb_throttled,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Faults:
        gone = float(document.get("postGoneRate", 0.0))
        throttle = float(document.get("postThrottleRate", 0.0))
        dynamodb = float(document.get("dynamodbThrottleRate", 0.0))
        if not (0 <= gone <= 1 and 0 <= throttle <= 1 and gone + throttle <= 1):
            raise ValueError("rates must be between 0 and 1 and add up to at most 1")
        if not 0 <= dynamodb <= 1:
            raise ValueError("dynamodbThrottleRate must be between 0 and 1")
        seed = document.get("seed")
        return cls(gone, throttle, int(seed) if seed is not None else None, dynamodb)


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
    ) -> None:
        self.backend = backend
        self.stage = stage
        self.log = log
        self.dead_letters = dead_letters
        self.token_minter = token_minter
        self.faults = faults or Faults()
        self.info = info
        self.message_limit_bytes = message_limit_bytes
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, sock: socket.socket) -> None:
        self.port = sock.getsockname()[1]
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
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
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
        if request.path.startswith("/_emulator/"):
            return await self._admin(request)
        prefix, sep, raw_id = request.path.partition(CONNECTIONS_SEGMENT)
        if not sep or not raw_id or "/" in raw_id:
            return aws_error(403, "ForbiddenException", "Forbidden")
        if prefix not in ("", f"/{self.stage}"):
            return aws_error(403, "ForbiddenException", f"Forbidden: unknown stage {prefix.strip('/')!r}")
        connection_id = unquote(raw_id)
        if request.method == "POST":
            return await self._post(connection_id, request.body)
        operations = {"GET": self._get, "DELETE": self._delete}
        operation = operations.get(request.method)
        if operation is None:
            return aws_error(403, "ForbiddenException", f"Forbidden: {request.method} is not supported")
        return operation(connection_id)

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
        except GoneError:
            return aws_error(410, "GoneException", _gone_message(connection_id))
        except ThrottledError:
            return aws_error(429, "LimitExceededException", "Client buffer full")
        return HttpResponse(200, b"", [("x-amzn-RequestId", new_id())])

    def _get(self, connection_id: str) -> HttpResponse:
        try:
            return json_response(200, self.backend.describe(connection_id))
        except GoneError:
            return aws_error(410, "GoneException", _gone_message(connection_id))

    def _delete(self, connection_id: str) -> HttpResponse:
        try:
            self.backend.delete(connection_id)
        except GoneError:
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
        }
        endpoint = endpoints.get(name)
        if endpoint is None:
            return json_response(404, {"message": f"no such endpoint: {request.path}"})
        return endpoint()

    def _faults(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("PUT", "POST"):
            try:
                self.faults = Faults.from_dict(json.loads(request.body or b"{}"))
            except (ValueError, TypeError, AttributeError) as exc:
                return json_response(400, {"message": f"bad fault settings: {exc}"})
            self.log.warning("fault injection now %s", self.faults.as_dict())
        elif request.method == "DELETE":
            self.faults = Faults()
        return json_response(200, self.faults.as_dict())

    def _token(self, query: Mapping[str, str]) -> HttpResponse:
        if self.token_minter is None:
            return json_response(
                404, {"message": "development tokens are off (start with --dev-token-secret)"}
            )
        status, document = token_reply(self.token_minter, query)
        return json_response(status, document)


def _gone_message(connection_id: str) -> str:
    """AWS's GoneException carries no detail; naming the id helps whoever reads the handler's logs."""
    return f"Connection {connection_id} is gone"
