"""Plain HTTP on the WebSocket port: the files of `--static-dir` and the development token endpoint.

A browser page served from the same origin as the WebSocket endpoint can open `ws://{host}/` and fetch
its development token without CORS. The path rules are pure (`static_file_path`); only `Site.respond`
touches the file system.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, unquote

from ws_emulator.gateway.devtokens import token_reply

TOKEN_PATH = "/_emulator/token"
# Sent with every answer of this port: a page of `--static-dir` loads only its own files and talks to
# WebSockets, and no other site may frame it (clickjacking); a `<meta>` CSP cannot say frame-ancestors.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
DASHBOARD_PREFIX = "/_emulator/"
INDEX = "index.html"
# Explicit for what a web client is made of: mimetypes reads the host's tables, which differ between
# machines (a `.js` served as text/plain would be refused as a module script).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}


def content_type(name: str) -> str:
    """The Content-Type for a file name: our table first, then the platform's, else opaque bytes."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def static_file_path(url_path: str) -> PurePosixPath | None:
    """The file a URL path names, relative to the static root; None when it may not be served.

    Refused: `..` and every other dot segment (also hidden files such as `.git` or `.env`), backslashes
    and NUL bytes, all checked after percent-decoding so `%2e%2e` cannot sneak through. A path ending in
    `/` names that folder's index.html.
    """
    decoded = unquote(url_path)
    if not decoded.startswith("/") or "\\" in decoded or "\x00" in decoded:
        return None
    segments = decoded.split("/")[1:]
    if segments and segments[-1] == "":
        segments[-1] = INDEX
    if any(not segment or segment.startswith(".") for segment in segments):
        return None
    return PurePosixPath(*segments)


@dataclass(frozen=True)
class PlainReply:
    """One HTTP answer the gateway writes instead of a WebSocket handshake."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _text(status: int, message: str) -> PlainReply:
    return PlainReply(status, (message + "\n").encode(), "text/plain; charset=utf-8", SECURITY_HEADERS)


class Site:
    """Answers plain (non-upgrade) GET requests on the WebSocket port; None means: not mine."""

    def __init__(
        self,
        static_root: Path | None,
        token_minter: Callable[[str, str | None], str] | None = None,
        dashboard_root: Path | None = None,
    ) -> None:
        self.static_root = static_root.resolve() if static_root is not None else None
        self.token_minter = token_minter
        # The emulator's own dashboard page, served under /_emulator/ whatever --static-dir holds.
        self.dashboard_root = dashboard_root.resolve() if dashboard_root is not None else None

    async def respond(self, path: str, query: str) -> PlainReply | None:
        if path == TOKEN_PATH and self.token_minter is not None:
            status, document = token_reply(self.token_minter, dict(parse_qsl(query)))
            return PlainReply(
                status,
                _json(document),
                "application/json",
                (("Cache-Control", "no-store"), *SECURITY_HEADERS),
            )
        if self.dashboard_root is not None and path in ("/_emulator", DASHBOARD_PREFIX.rstrip("/")):
            return PlainReply(308, b"", "text/plain; charset=utf-8", (("Location", DASHBOARD_PREFIX),))
        if self.dashboard_root is not None and path.startswith(DASHBOARD_PREFIX) and path != TOKEN_PATH:
            return await self._static(path.removeprefix(DASHBOARD_PREFIX[:-1]), self.dashboard_root)
        if self.static_root is None:
            return None
        return await self._static(path, self.static_root)

    async def _static(self, path: str, root: Path) -> PlainReply:
        relative = static_file_path(path)
        if relative is None:
            return _text(404, "Not Found")
        candidate = root.joinpath(relative)
        try:
            # resolve() follows symlinks: one pointing out of the root must not expose its target.
            resolved = candidate.resolve(strict=True)
        except OSError:
            return _text(404, "Not Found")
        if not resolved.is_relative_to(root) or not resolved.is_file():
            return _text(404, "Not Found")
        try:
            body = await asyncio.to_thread(resolved.read_bytes)
        except OSError:
            return _text(404, "Not Found")
        # no-cache: a developer editing the page sees the change on reload, never a stale module.
        return PlainReply(
            200,
            body,
            content_type(resolved.name),
            (("Cache-Control", "no-cache"), *SECURITY_HEADERS),
        )


def _json(document: Mapping[str, object]) -> bytes:
    return json.dumps(document).encode()
