"""Reliability suites: Parley's template served by the emulator (in a thread or a process) on 127.0.0.1.

Every suite has a fast variant, run by `make test`, and a full one selected by
PARLEY_RELIABILITY_FULL=1 (`make reliability-full`): the same tests with more cases, connections
and time. Figures the suites measure are appended as JSON lines to PARLEY_RELIABILITY_REPORT when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import ws_client
from tests.support.emulator_thread import Served, emulator_in_thread, parley_config
from tests.support.world import all_pages

FULL = os.environ.get("PARLEY_RELIABILITY_FULL", "") not in ("", "0")
SECRET = "parley-reliability-secret-0123456789abcdef"
# Loggers that carry what Parley's functions print (runtime) and one line per invocation (events).
FUNCTION_LOGGER = "ws_emulator.runtime"
EVENT_LOGGER = "ws_emulator.events"


def scale(fast: int, full: int) -> int:
    """A case count or duration: `fast` in `make test`, `full` under PARLEY_RELIABILITY_FULL=1."""
    return full if FULL else fast


def report(suite: str, **figures: Any) -> None:
    """Record what a suite measured (docs/reliability.md is written from these lines)."""
    path = os.environ.get("PARLEY_RELIABILITY_REPORT")
    line = {"suite": suite, "full": FULL, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    line.update(figures)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    print(json.dumps(line))


def token(user: str, workspace: str, *, secret: str = SECRET, **claims: Any) -> str:
    return ws_client.token(secret, user, workspace, **claims)


class LogCapture(logging.Handler):
    """Every formatted line of the given loggers, kept while the capture is open (thread-safe)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        with self._lock_:
            self.lines.append(text)

    def snapshot(self) -> list[str]:
        with self._lock_:
            return list(self.lines)

    def connect_invocations(self) -> list[str]:
        """Event-log lines of `$connect` handler runs (the authorizer has lines of its own)."""
        return [line for line in self.snapshot() if line.startswith("$connect ")]


@contextlib.contextmanager
def capture_logs(*names: str) -> Iterator[LogCapture]:
    capture = LogCapture()
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.INFO)
        logger.propagate = False  # kept out of pytest's own capture: a soak would hoard it
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)
            logger.propagate = propagate


@dataclass
class Running(Served):
    """An emulator serving template.yaml in a thread of this process."""

    logs: LogCapture
    _loop: asyncio.AbstractEventLoop | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def call(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the emulator's own loop (its state is not thread-safe)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def drain(self, timeout: float = 20) -> None:
        """Let the stream and queue triggers deliver what is written so far."""
        await asyncio.to_thread(self.call, self.emulator.sources.drain(timeout), timeout + 10)

    def table_items(self, table: str) -> list[dict[str, Any]]:
        client = self.emulator.aws.client("dynamodb")
        return all_pages(client.scan, TableName=self.emulator.template.tables[table].name)


def emulator_config(**overrides: Any) -> Any:
    # Every emulator of this process shares moto's global state (tests/e2e may have one running
    # too): a stack name of its own keeps its tables, queues and streams apart.
    settings: dict[str, Any] = {
        "quiet": False,
        "log_level": "INFO",
        "stack_name": f"rel{uuid.uuid4().hex[:8]}",
    }
    return parley_config(SECRET, **(settings | overrides))


@contextlib.contextmanager
def serve(**overrides: Any) -> Iterator[Running]:
    """Start the emulator in a thread (ports chosen by the OS) and stop it on exit."""

    config = emulator_config(**overrides)
    with (
        capture_logs(FUNCTION_LOGGER, EVENT_LOGGER, "ws_emulator.gateway", "ws_emulator.sources") as logs,
        emulator_in_thread(config, name="reliability-emulator") as (emulator, loop),
    ):
        yield Running(emulator, SECRET, logs, _loop=loop)


@pytest.fixture(scope="module")
def emu() -> Iterator[Running]:
    """One emulator per module (tests leave each other alone with fresh workspaces). Not one per
    session: moto's state is global to the process, and modules using `mock_aws` reset it on exit.
    LogLevel DEBUG: the functions log as much as they ever would, for the token-in-logs check."""
    with serve(parameter_overrides={"LogLevel": "DEBUG"}) as running:
        yield running


@pytest.fixture
def workspace() -> str:
    return f"ws-{uuid.uuid4().hex[:10]}"
