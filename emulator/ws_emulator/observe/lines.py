"""How event lines look on stdout: text for people (the default), one JSON object a line for tools."""

from __future__ import annotations

import json
import logging

LOG_FORMATS = ("text", "json")


class JsonEventFormatter(logging.Formatter):
    """`--log-format json`: an invocation as its record's JSON; any other event line as a message."""

    def format(self, record: logging.LogRecord) -> str:
        invocation = getattr(record, "invocation", None)
        if isinstance(invocation, str):
            return invocation
        document = {
            "type": "event",
            "ts_ms": int(record.created * 1000),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))


def event_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonEventFormatter()
    return logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S")
