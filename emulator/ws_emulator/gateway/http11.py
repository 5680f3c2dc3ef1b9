"""A small HTTP/1.1 codec (pure): request heads parsed strictly, responses formatted with their length.

The management port speaks HTTP/1.1 with keep-alive (boto3's pool reuses connections); the WebSocket
port answers plain GETs and refused handshakes with `Connection: close`. Both use what is here, so
the rules against request smuggling (no folded lines, no conflicting lengths, no chunked bodies) are
written once.
"""

from __future__ import annotations

import email.utils
import http
from collections.abc import Mapping
from dataclasses import dataclass, field

from ws_emulator.errors import EmulatorError

MAX_HEAD_BYTES = 64 * 1024
# Bodies above the 128 KB post limit are still read (up to this) so the client gets a clean 413.
MAX_BODY_BYTES = 4 * 1024 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def reason_phrase(status: int, unknown: str = "Error") -> str:
    """The standard reason phrase of a status code; `unknown` for codes HTTP does not name."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return unknown


def closing_headers(content_type: str, length: int) -> list[tuple[str, str]]:
    """The headers of a one-shot answer after which the server closes the connection."""
    return [
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
    ]


class BadRequest(EmulatorError):
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
        lines = [f"HTTP/1.1 {self.status} {reason_phrase(self.status, 'Unknown')}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


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
