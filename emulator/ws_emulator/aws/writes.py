"""Which tables a DynamoDB request writes, and signals that wake the stream pollers watching them.

On AWS, Lambda polls each shard about four times a second. Locally the embedded moto server sees
every write, so a shard's poller can sleep until its table is written instead of polling on a fixed
delay: a record reaches its function as soon as it exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# Operations that can add a stream record, with where their table names are.
_SINGLE = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_BATCH = "BatchWriteItem"
_TRANSACT = "TransactWriteItems"
WRITE_OPERATIONS = _SINGLE | {_BATCH, _TRANSACT}


def _table_name(value: Any) -> str | None:
    # TableName may be a table ARN (arn:aws:dynamodb:region:account:table/NAME).
    if not isinstance(value, str) or not value:
        return None
    return value.rsplit(":table/", 1)[1] if ":table/" in value else value


def written_tables(operation: str, body: bytes) -> set[str]:
    """The tables a DynamoDB JSON request body of `operation` writes (empty when it writes none).

    A body that cannot be read names no table: the request fails in the service anyway.
    """
    if operation not in WRITE_OPERATIONS:
        return set()
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return set()
    if not isinstance(request, dict):
        return set()
    names: list[Any] = []
    if operation in _SINGLE:
        names.append(request.get("TableName"))
    elif operation == _BATCH:
        items = request.get("RequestItems")
        names.extend(items if isinstance(items, dict) else [])
    else:
        for item in request.get("TransactItems") or []:
            if isinstance(item, dict):
                for kind in ("Put", "Update", "Delete"):
                    part = item.get(kind)
                    if isinstance(part, dict):
                        names.append(part.get("TableName"))
    return {name for name in map(_table_name, names) if name}


class WriteSignal:
    """Set from any thread when its table is written; awaited by one poller on its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Thread-safe: wakes the waiting poller (or the next wait returns at once)."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        """Forget earlier writes: call before reading the shard, so a write after the read still wakes."""
        self._event.clear()

    async def wait(self, timeout_s: float) -> bool:
        """True when woken by a write, False after `timeout_s` without one."""
        if self._event.is_set():
            return True
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class TableWrites:
    """Table name -> the signals of the pollers watching it; `notify` is called from server threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, list[WriteSignal]] = defaultdict(list)

    def watch(self, table: str) -> WriteSignal:
        """A new signal fired on every write to `table` (call from the loop that will wait on it)."""
        signal = WriteSignal(asyncio.get_running_loop())
        with self._lock:
            self._watchers[table].append(signal)
        return signal

    def unwatch(self, table: str, signal: WriteSignal) -> None:
        with self._lock:
            if signal in self._watchers.get(table, []):
                self._watchers[table].remove(signal)

    def notify(self, tables: Iterable[str]) -> None:
        with self._lock:
            signals = [s for t in tables for s in self._watchers.get(t, ())]
        for signal in signals:
            signal.fire()
