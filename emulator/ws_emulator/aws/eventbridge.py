"""EventBridge made inspectable: every PutEvents the embedded moto answers is recorded, entry by entry.

moto accepts PutEvents and delivers to the targets of matching rules that it supports (SQS queues, log
groups, archives, other buses; HTTP only with MOTO_EVENTS_INVOKE_HTTP=true), but keeps no record of
the events themselves. This WSGI layer in front of it keeps the last entries (`GET /_emulator/events`)
and names each on the event log. It also refuses a request whose entries exceed PutEvents' 256 KB
together, which moto does not check.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

TARGET = "AWSEvents.PutEvents"
MAX_REQUEST_BYTES = 256 * 1024
TIME_BYTES = 14
KEPT = 1000
TOO_LARGE = "Total size of the entries in the request is over the limit."


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as AWS counts it ("Calculating PutEvents event entry size")."""
    size = sum(len(str(entry.get(f) or "").encode("utf-8")) for f in ("Source", "DetailType", "Detail"))
    size += sum(len(str(r).encode("utf-8")) for r in entry.get("Resources") or [])
    return size + (TIME_BYTES if entry.get("Time") is not None else 0)


def bus_name(value: Any) -> str:
    """A bus named by name or ARN (`arn:aws:events:r:a:event-bus/name`); none is the default bus."""
    text = str(value or "default")
    return text.rsplit("event-bus/", 1)[1] if "event-bus/" in text else text


class PutEventsLog:
    """The last KEPT entries put on any bus, oldest first; `listener` hears each as it is recorded."""

    def __init__(self, listener: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self._seq = 0
        self.listener = listener

    def record(self, request: Mapping[str, Any], response: Mapping[str, Any], now_ms: int) -> None:
        results = list(response.get("Entries") or [])
        for n, entry in enumerate(request.get("Entries") or []):
            result = results[n] if n < len(results) else {}
            try:
                detail: Any = json.loads(entry.get("Detail") or "null")
            except ValueError:
                detail = entry.get("Detail")
            with self._lock:
                self._seq += 1
                recorded = {
                    "seq": self._seq,
                    "tsMs": now_ms,
                    "eventBusName": bus_name(entry.get("EventBusName")),
                    "source": entry.get("Source"),
                    "detailType": entry.get("DetailType"),
                    "detail": detail,
                    "resources": list(entry.get("Resources") or []),
                    "eventId": result.get("EventId"),
                    "errorCode": result.get("ErrorCode"),
                    "errorMessage": result.get("ErrorMessage"),
                }
                self._entries.append(recorded)
            if self.listener is not None:
                self.listener(recorded)

    def recent(self, *, bus: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._entries)
        return [e for e in entries if e["seq"] > after and (bus is None or e["eventBusName"] == bus)]


def record_put_events(app: Any, log: PutEventsLog) -> Any:
    """WSGI middleware: PutEvents over 256 KB is refused like AWS; the others are recorded as answered."""

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET") != TARGET:
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return app(environ, start_response)
        entries = request.get("Entries") or [] if isinstance(request, dict) else []
        if sum(entry_size(e) for e in entries if isinstance(e, dict)) > MAX_REQUEST_BYTES:
            document = json.dumps({"__type": "ValidationException", "message": TOO_LARGE}).encode()
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(document)))],
            )
            return [document]
        status: list[str] = []

        def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        chunks = list(app(environ, capture))
        if status and status[0].startswith("200"):
            try:
                answer = json.loads(b"".join(chunks) or b"{}")
            except ValueError:
                answer = {}
            log.record(request, answer if isinstance(answer, dict) else {}, int(time.time() * 1000))
        return chunks

    return recording
