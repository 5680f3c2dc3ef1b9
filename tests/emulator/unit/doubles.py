"""Test doubles the emulator's unit tests share: an @connections backend and a runtime that do no I/O."""

from __future__ import annotations

import asyncio
from typing import Any

from ws_emulator.runtime.pool import InvokeResult


class NoConnections:
    """A connection registry the test must never reach (management API tests of other paths)."""

    async def post(self, connection_id: str, data: bytes) -> None:
        raise NotImplementedError

    def describe(self, connection_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def delete(self, connection_id: str) -> None:
        raise NotImplementedError

    def summary(self) -> list[Any]:
        return []


async def run_inline(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`run_blocking` without a thread: yields to the loop once, then calls `fn`."""
    await asyncio.sleep(0)
    return fn(*args, **kwargs)


class RecordingRuntime:
    """Records every event it is asked to invoke and answers success."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def invoke(self, function_id: str, event: dict[str, Any]) -> InvokeResult:
        self.events.append(event)
        return InvokeResult(True, None, None, 1.0, function_id, "r")
