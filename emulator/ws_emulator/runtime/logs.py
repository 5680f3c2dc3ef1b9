"""A function's output lines made readable in the emulator's log (Powertools JSON, EMF, runtime format)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

# Powertools stamps these on every line; in a local log they only hide the message.
_LAMBDA_CONTEXT_KEYS = {
    "level",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
}
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "WARN": logging.WARNING}
_LEVELS |= {"ERROR": logging.ERROR, "CRITICAL": logging.CRITICAL}
# `[WARNING]\t2026-01-01T00:00:00.000Z\t<request id>\tmessage`: the AWS runtime's root logger format.
_RUNTIME_FORMAT = re.compile(r"^\[([A-Z]+)\]\t\S+Z\t\S*\t(.*)$", re.DOTALL)


def readable_log_line(line: str) -> tuple[int, str]:
    """A function's output line for the emulator's log: structured JSON (Powertools) made short.

    `{"level":"INFO","message":"joined",...,"channel":"general"}` becomes
    `joined {"channel": "general"}` at INFO; CloudWatch EMF metric lines go to DEBUG;
    the root logger's `[LEVEL]\ttime\trequest id\tmessage` lines keep their message and level;
    anything else passes through unchanged at INFO.
    """
    plain = _RUNTIME_FORMAT.match(line)
    if plain:
        return _LEVELS.get(plain.group(1), logging.INFO), plain.group(2)
    data = _json_object(line)
    if data is None:
        return logging.INFO, line
    if "CloudWatchMetrics" in (data.get("_aws") or {}):
        names = [m["Name"] for d in data["_aws"]["CloudWatchMetrics"] for m in d.get("Metrics", [])]
        values = " ".join(f"{n}={data.get(n)}" for n in names)
        return logging.DEBUG, f"metrics {values}"
    if "level" not in data or "message" not in data:
        return logging.INFO, line
    extras = {k: v for k, v in data.items() if k not in _LAMBDA_CONTEXT_KEYS and k != "exception"}
    text = str(data["message"])
    if extras:
        text += " " + json.dumps(extras, default=str)
    if data.get("exception"):
        text += "\n" + str(data["exception"])
    return _LEVELS.get(str(data["level"]).upper(), logging.INFO), text


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
