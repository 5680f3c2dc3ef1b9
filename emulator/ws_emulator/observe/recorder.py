"""The one observation point of every invocation: a bounded ring of records, subscribers, time series.

`FunctionRuntime.invoke` reports each finished invocation here. The recorder turns it into an
`InvocationRecord`, writes the event line (text, or one JSON object with `--log-format json`), keeps
the last `capacity` records for the dashboard, hands each to the subscribers (the dashboard's live
sockets) and adds it to per-second counters from which `series()` draws the charts. `@connections`
posts are counted here too (`count_post`), as they are no invocation.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ws_emulator.observe.records import (
    TRIGGER_AUTHORIZER,
    TRIGGER_ROUTE,
    InvocationRecord,
    ResultLike,
    build_record,
    json_line,
    text_line,
)

RING_CAPACITY = 1000
HISTORY_S = 600  # per-second counters kept: the charts show the last few minutes of them

Subscriber = Callable[[InvocationRecord], object]


@dataclass
class _Second:
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    posts: int = 0
    posts_gone: int = 0
    posts_throttled: int = 0
    lags_ms: list[float] = field(default_factory=list)
    durations: dict[str, list[float]] = field(default_factory=dict)  # by route or source


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (as CloudWatch's pNN of a small sample): None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least the first
    return ordered[int(rank) - 1]


def series_key(record: InvocationRecord) -> str:
    """What a latency line is drawn for: the route key, or `trigger:source` for the other triggers."""
    if record.trigger == TRIGGER_ROUTE:
        return record.source
    if record.trigger == TRIGGER_AUTHORIZER:
        return "authorizer"
    return f"{record.trigger}:{record.source}"


class InvocationRecorder:
    """Records invocations; `observe` is called once per invocation, from the event loop."""

    def __init__(
        self,
        *,
        event_log: logging.Logger | None = None,
        function_names: Mapping[str, str] | None = None,
        capacity: int = RING_CAPACITY,
        clock: Callable[[], float] = time.time,
        fallbacks: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.event_log = event_log
        self.function_names = dict(function_names or {})
        # function id -> (trigger, source) for events of no known shape (a schedule's constant Input).
        self.fallbacks = dict(fallbacks or {})
        self._ring: deque[InvocationRecord] = deque(maxlen=capacity)
        self._subscribers: list[Subscriber] = []
        self._seconds: dict[int, _Second] = {}
        self._clock = clock
        self._seq = 0
        # Every `@connections` post since start, by outcome (the health endpoint reports them).
        self.post_totals: dict[str, int] = {"ok": 0, "gone": 0, "throttled": 0}

    # ---- input -----------------------------------------------------------------------------------

    def observe(self, function_id: str, event: Any, result: ResultLike) -> InvocationRecord:
        self._seq += 1
        now = self._clock()
        name = self.function_names.get(function_id, function_id)
        record = build_record(
            self._seq,
            function_id,
            name,
            event,
            result,
            now_ms=int(now * 1000),
            fallback=self.fallbacks.get(function_id),
        )
        self._ring.append(record)
        second = self._second(now)
        second.invocations += 1
        second.errors += 0 if record.ok else 1
        second.cold_starts += 1 if record.cold_start else 0
        if record.lag_ms is not None:
            second.lags_ms.append(record.lag_ms)
        second.durations.setdefault(series_key(record), []).append(record.duration_ms)
        self._write_line(record)
        for subscriber in list(self._subscribers):
            try:
                subscriber(record)
            except Exception:  # a broken dashboard socket must not fail an invocation
                logging.getLogger(__name__).exception("invocation subscriber failed")
        return record

    def count_post(self, outcome: str) -> None:
        """One `@connections` post: `ok`, `gone` or `throttled`."""
        self.post_totals[outcome] = self.post_totals.get(outcome, 0) + 1
        second = self._second(self._clock())
        second.posts += 1
        if outcome == "gone":
            second.posts_gone += 1
        elif outcome == "throttled":
            second.posts_throttled += 1

    def _second(self, now: float) -> _Second:
        key = int(now)
        bucket = self._seconds.get(key)
        if bucket is None:
            bucket = self._seconds[key] = _Second()
            for old in [k for k in self._seconds if k <= key - HISTORY_S]:
                del self._seconds[old]
        return bucket

    def _write_line(self, record: InvocationRecord) -> None:
        if self.event_log is None:
            return
        # A JSON formatter on the event logger (`--log-format json`) prints `invocation` instead.
        self.event_log.info("%s", text_line(record), extra={"invocation": json_line(record)})

    # ---- output ----------------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber` with every later record; returns the function that unsubscribes."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) if subscriber in self._subscribers else None

    def recent(self, limit: int | None = None) -> list[InvocationRecord]:
        records = list(self._ring)
        return records if limit is None else records[-limit:]

    def find(self, seq: int) -> InvocationRecord | None:
        return next((r for r in self._ring if r.seq == seq), None)

    def series(self, *, window_s: int = 300, step_s: int = 10) -> dict[str, Any]:
        """Charts over the last `window_s` seconds in `step_s` bins: rates per second, p50/p95 in ms."""
        end = int(self._clock()) + 1
        start = end - window_s
        bins = list(range(start, end, step_s))
        out: dict[str, Any] = {
            "start": start,
            "step": step_s,
            "invocationsPerS": [],
            "postsPerS": [],
            "failedPostsPerS": [],
            "errors": [],
            "coldStarts": [],
            "lagP95Ms": [],
            "latency": {},
        }
        keys = sorted({k for s in self._seconds.values() for k in s.durations})
        latency: dict[str, dict[str, list[float | None]]] = {k: {"p50": [], "p95": []} for k in keys}
        for b in bins:
            seconds = [self._seconds[t] for t in range(b, min(b + step_s, end)) if t in self._seconds]
            out["invocationsPerS"].append(round(sum(s.invocations for s in seconds) / step_s, 3))
            out["postsPerS"].append(round(sum(s.posts for s in seconds) / step_s, 3))
            failed = sum(s.posts_gone + s.posts_throttled for s in seconds)
            out["failedPostsPerS"].append(round(failed / step_s, 3))
            out["errors"].append(sum(s.errors for s in seconds))
            out["coldStarts"].append(sum(s.cold_starts for s in seconds))
            out["lagP95Ms"].append(percentile(_flat(s.lags_ms for s in seconds), 0.95))
            for key in keys:
                durations = _flat(s.durations.get(key, []) for s in seconds)
                latency[key]["p50"].append(percentile(durations, 0.5))
                latency[key]["p95"].append(percentile(durations, 0.95))
        out["latency"] = latency
        return out


def _flat(lists: Iterable[list[float]]) -> list[float]:
    return [v for values in lists for v in values]
