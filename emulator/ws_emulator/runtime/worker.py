"""The emulator's side of one execution environment: a bootstrap.py child spoken to over JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

PIPE_LIMIT = 16 * 1024 * 1024  # well above Lambda's 6 MB payload limit
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024  # synchronous invoke response quota


def timeout_error(request_id: str, timeout_s: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        "stackTrace": [],
    }


STOPPED_ERROR = {
    "errorType": "ServiceException",
    "errorMessage": "the emulator's function runtime has stopped",
    "stackTrace": [],
}


class WorkerDied(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"worker exited with {returncode}")
        self.returncode = returncode


class ResponseTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"response of {size} bytes")
        self.size = size


class Worker:
    """One execution environment: a child interpreter with the handler imported."""

    def __init__(
        self, proc: asyncio.subprocess.Process, pump: asyncio.Task[None], *, generation: int = 0
    ) -> None:
        self.proc = proc
        self.pump = pump
        self.generation = generation  # the pool's code generation it was started with
        self.invocations = 0
        self.last_used = time.monotonic()

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        try:
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise WorkerDied(await self.proc.wait()) from exc
        try:
            line = await self.proc.stdout.readline()
        except ValueError as exc:  # the reply overran the pipe limit
            raise ResponseTooLarge(PIPE_LIMIT) from exc
        if not line:
            raise WorkerDied(await self.proc.wait())
        if len(line) > RESPONSE_LIMIT_BYTES:
            raise ResponseTooLarge(len(line))
        reply: dict[str, Any] = json.loads(line)
        return reply

    def peak_rss_mb(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) // 1024
        except (OSError, ValueError):
            return None  # not Linux, or the process is gone
        return None

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.pump, timeout=1.0)
