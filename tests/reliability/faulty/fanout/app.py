"""FanoutFunction with faults on demand, for the emulator's reliability tests (never deployed).

Reads control.json next to this file. For invocations carrying a message record it may, once per
remaining count: fail at once (`fail`), exit the process after some posts (`crash`: a crash
midway), or hang after some posts until the function Timeout kills it (`timeout`). Otherwise it is
the real FanoutFunction (functions/fanout/app.py, loaded by path).
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

CONTROL = Path(__file__).resolve().parent / "control.json"


def _load_real() -> Any:
    real = json.loads(CONTROL.read_text())["real"]
    spec = importlib.util.spec_from_file_location("real_fanout_app", real)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_real = _load_real()


def _take(kind: str) -> dict[str, Any] | None:
    """Use up one fault of this kind; its settings, or None when none is left."""
    with CONTROL.open("r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        control = json.load(fh)
        fault = control.get(kind)
        if not fault or fault.get("left", 0) <= 0:
            return None
        fault["left"] -= 1
        control.setdefault("fired", []).append(kind)
        fh.seek(0)
        fh.truncate()
        json.dump(control, fh)
        return dict(fault)


def _carries_messages(event: dict[str, Any]) -> bool:
    return any(
        r.get("dynamodb", {}).get("NewImage", {}).get("kind", {}).get("S") == "message"
        for r in event.get("Records", [])
    )


def handler(event: dict[str, Any], context: Any) -> Any:
    if not _carries_messages(event):
        return _real.handler(event, context)
    if _take("fail") is not None:
        raise RuntimeError("injected fan-out failure")
    crash, hang = _take("crash"), None
    if crash is None:
        hang = _take("timeout")
    fault = crash or hang
    if fault is None:
        return _real.handler(event, context)

    from parley import deps

    notifier = deps.services().fanout.notifier
    original = notifier.post
    posted = [0]

    def post(connection_id: str, data: str) -> Any:
        if posted[0] >= fault["after_posts"]:
            if crash is not None:
                os._exit(17)  # the execution environment dies midway through the fan-out
            time.sleep(3600)  # the function Timeout ends it
        posted[0] += 1
        return original(connection_id, data)

    notifier.post = post  # type: ignore[method-assign]
    try:
        return _real.handler(event, context)
    finally:
        notifier.post = original  # type: ignore[method-assign]
