"""The embedded moto server serves SDKs only: no CORS, no browser pages, no DNS-rebinding names.

moto's server answers CORS preflights for every origin (flask-cors on each service's app) unless
`MOTO_DISABLE_GLOBAL_CORS` is set; moto reads it once, when `moto.settings` is imported, and
`moto.moto_server.werkzeug_app` copies the value at its own import. Without this, a web page the
developer visits could read the seeded SSM secret and every table. SDKs (boto3, the functions) send
no `Origin` header and a loopback `Host` (the server listens on 127.0.0.1 only), so refusing the
rest costs them nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from ws_emulator.gateway.origins import is_loopback_host, split_host

CORS_ENV = "MOTO_DISABLE_GLOBAL_CORS"

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def disable_global_cors() -> None:
    """Before the server starts: no flask-cors on moto's service apps (also if moto is imported already)."""
    os.environ[CORS_ENV] = "true"
    from moto import settings
    from moto.moto_server import werkzeug_app

    settings.DISABLE_GLOBAL_CORS = True
    werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]


def refusal(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(status line, message) for a request a browser page sent, or one to a foreign Host; else None."""
    if "HTTP_ORIGIN" in environ:
        return "403 Forbidden", "the embedded AWS endpoint does not serve browser pages"
    parsed = split_host(str(environ.get("HTTP_HOST", "")))
    if parsed is None or not is_loopback_host(parsed[0]):
        return "421 Misdirected Request", "Host is not a loopback name or address"
    return None


def refuse_browsers(app: WsgiApp) -> WsgiApp:
    """Wrap moto's WSGI app: browser-origin and foreign-Host requests get a JSON error, never moto."""

    def guarded(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        refused = refusal(environ)
        if refused is None:
            return app(environ, start_response)
        status, message = refused
        body = json.dumps({"message": message}).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Content-Type-Options", "nosniff"),
            ],
        )
        return [body]

    return guarded
