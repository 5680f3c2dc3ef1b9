"""Test doubles for the ports the domain depends on: notifier, timers, clock."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from parley.notify import PostOutcome


class FakeNotifier:
    """Records every post; connections in `gone` answer GoneException, `throttle` answers LimitExceeded."""

    def __init__(self) -> None:
        self.frames: dict[str, list[str]] = defaultdict(list)
        self.gone: set[str] = set()
        self.throttled: set[str] = set()
        self.failing: set[str] = set()
        self.closed: list[str] = []
        self.posts = 0
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: str) -> PostOutcome:
        with self._lock:
            self.posts += 1
            if connection_id in self.gone:
                return PostOutcome.GONE
            if connection_id in self.throttled:
                return PostOutcome.THROTTLED
            if connection_id in self.failing:
                return PostOutcome.FAILED
            self.frames[connection_id].append(data)
            return PostOutcome.DELIVERED

    def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)

    def events(self, connection_id: str) -> list[dict[str, Any]]:
        """Every event the connection received, batches unpacked, in order."""
        out: list[dict[str, Any]] = []
        for raw in self.frames.get(connection_id, []):
            frame = json.loads(raw)
            out.extend(frame["events"] if frame["type"] == "batch" else [frame])
        return out

    def clear(self) -> None:
        self.frames.clear()
        self.posts = 0


@dataclass
class FakeTimers:
    scheduled: list[tuple[str, str, str, int]] = field(default_factory=list)

    def schedule_leave_check(self, workspace: str, channel: str, user_id: str, delay_s: int) -> None:
        self.scheduled.append((workspace, channel, user_id, delay_s))


class FakeClock:
    def __init__(self, now_ms: int = 1_790_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
