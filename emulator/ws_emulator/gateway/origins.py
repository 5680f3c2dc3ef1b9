"""Who may talk to the emulator (pure): the Host of every request, the Origin of handshakes and admin calls.

A page on any web site can make the developer's browser send requests to 127.0.0.1. These rules keep
such a page out, on both ports, and every endpoint asks the same `AccessPolicy`:

- `host_refusal`: a `Host` that is not a loopback name or address (or the configured `--host`) with
  the port the request arrived on is a DNS-rebinding attempt (a foreign name resolved to 127.0.0.1);
  answered 421 Misdirected Request.
- `handshake_refusal`: a WebSocket handshake from a browser page of another origin (403). No `Origin`
  at all is a CLI or SDK client (wscat, Python websockets), which is let in.
- `admin_refusal`: `/_emulator/*` answers no page but the emulator's own (403), and a write with a
  body must say `Content-Type: application/json` (415), which no page can send cross-origin without a
  CORS preflight the emulator never grants.
- `connections_refusal`: the `@connections` API is for SDKs (boto3 sends no `Origin`): any `Origin` is 403.

The emulator's own origins are the loopback origins of its WebSocket port (where the static site and
the dashboard are served): `http://127.0.0.1:PORT`, `http://localhost:PORT`, `http://[::1]:PORT`, and
`http://HOST:PORT` for a specific configured `--host`. `--allow-origin` adds origins for handshakes only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names, not a bind
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
JSON_TYPES = frozenset({"application/json"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Refusal:
    """A request answered with this status and message instead of being served."""

    status: int
    message: str


def _bare(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def is_loopback_host(name: str) -> bool:
    """`localhost`, a `*.localhost` name (RFC 6761: always loopback) or a loopback IPv4/IPv6 address."""
    bare = _bare(name)
    if bare == "localhost" or bare.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(_bare(name))
    except ValueError:
        return False
    return True


def split_host(value: str) -> tuple[str, int] | None:
    """`Host` header value as (bare lower-case name, port); port 80 when absent; None when malformed."""
    if not value or any(ch in value for ch in "/?#@ \t\\"):
        return None
    try:
        parts = urlsplit(f"//{value}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return _bare(parts.hostname), port if port is not None else 80


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a trailing slash; None if it is not an origin."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    if "@" in parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class AccessPolicy:
    """The checks for one emulator: its bind address, its WebSocket (page) port and extra origins.

    `machine_names` are the names a wildcard bind (`0.0.0.0`, `::`) is also reached by (the host name);
    with a wildcard bind any IP literal is accepted too (a rebinding attack needs a DNS name).
    """

    bind_host: str
    page_port: int
    extra_origins: frozenset[str] = frozenset()
    machine_names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls,
        bind_host: str,
        page_port: int,
        extra_origins: Iterable[str] = (),
        machine_names: Iterable[str] = (),
    ) -> AccessPolicy:
        origins = frozenset(o for o in (normalize_origin(x) for x in extra_origins) if o is not None)
        names = frozenset(_bare(name) for name in machine_names if name)
        return cls(bind_host, page_port, origins, names)

    @property
    def wildcard(self) -> bool:
        return _bare(self.bind_host) in {_bare(h) for h in WILDCARD_HOSTS}

    @cached_property
    def _own(self) -> frozenset[str]:
        names = list(LOOPBACK_NAMES)
        bare = _bare(self.bind_host)
        if not self.wildcard and not is_loopback_host(bare):
            names.append(f"[{bare}]" if ":" in bare else bare)
        return frozenset(f"http://{name}:{self.page_port}" for name in names)

    def own_origins(self) -> frozenset[str]:
        """The origins of pages the emulator serves itself (static site, dashboard)."""
        return self._own

    @cached_property
    def _handshake(self) -> frozenset[str]:
        return self._own | self.extra_origins

    def handshake_origins(self) -> frozenset[str]:
        """Origins whose pages may open WebSockets: the emulator's own and `--allow-origin`'s."""
        return self._handshake

    # ---- the checks ------------------------------------------------------------------------------

    def host_refusal(self, host_header: str | None, port: int) -> Refusal | None:
        """421 unless `Host` names this machine by a loopback name, the configured host (or, on a
        wildcard bind, its host name or an IP address) with the port the request came in on."""
        if host_header is None:
            return Refusal(400, "a Host header is required")
        parsed = split_host(host_header)
        if parsed is None:
            return Refusal(400, "malformed Host header")
        name, got_port = parsed
        if got_port != port:
            return Refusal(421, f"Misdirected Request: this server is port {port}")
        if is_loopback_host(name) or name == _bare(self.bind_host):
            return None
        if self.wildcard and (is_ip_literal(name) or name in self.machine_names):
            return None
        return Refusal(
            421, "Misdirected Request: Host is not a loopback name or the emulator's --host (DNS rebinding?)"
        )

    def handshake_refusal(self, origin: str | None) -> Refusal | None:
        """403 for a browser page of a foreign origin; no Origin (a CLI or SDK client) is welcome."""
        if origin is None:
            return None
        if normalize_origin(origin) in self.handshake_origins():
            return None
        return Refusal(403, "Forbidden")

    def admin_refusal(
        self, method: str, origin: str | None, content_type: str | None, has_body: bool
    ) -> Refusal | None:
        """The rules of every `/_emulator/*` endpoint: only the emulator's own pages, JSON for writes."""
        if origin is not None and normalize_origin(origin) not in self.own_origins():
            return Refusal(403, "Forbidden: the admin endpoints answer no other web page")
        if method.upper() in WRITE_METHODS and has_body and _media_type(content_type) not in JSON_TYPES:
            return Refusal(415, "Unsupported Media Type: send the body as Content-Type: application/json")
        return None

    @staticmethod
    def connections_refusal(origin: str | None) -> Refusal | None:
        """The `@connections` API serves SDKs only: a request from a browser page (any Origin) is 403."""
        if origin is not None:
            return Refusal(403, "Forbidden: @connections does not serve browser pages")
        return None
