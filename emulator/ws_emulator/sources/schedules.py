"""Schedule / ScheduleV2 events: rate() and cron() expressions firing EventBridge-shaped events."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ws_emulator.errors import EmulatorError

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$", re.IGNORECASE)
_CRON = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)  # Lambda's retries of a failed asynchronous invocation
_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN"), start=1)} | {
    m: i for i, m in enumerate(("JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=7)
}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}  # 1 = Sunday


class ScheduleError(EmulatorError, ValueError):
    """An expression the emulator cannot run."""


def _parse_field(
    text: str, low: int, high: int, names: dict[str, int] | None = None
) -> frozenset[int] | None:
    """The allowed values of one cron field; None means any (`*` or `?`)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"bad step in {text!r}")
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"unsupported cron value {text!r} (L, W and # are not emulated)")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 1 = Sunday
    years: frozenset[int] | None

    def matches(self, t: datetime) -> bool:
        weekday = (t.isoweekday() % 7) + 1  # Monday=1..Sunday=7 -> Sunday=1..Saturday=7
        return all(
            allowed is None or value in allowed
            for allowed, value in (
                (self.minutes, t.minute),
                (self.hours, t.hour),
                (self.days, t.day),
                (self.months, t.month),
                (self.weekdays, weekday),
                (self.years, t.year),
            )
        )

    def next_after(self, t: datetime) -> datetime:
        """The first matching minute strictly after `t` (UTC)."""
        candidate = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * 5)
        while candidate < limit:
            if self.months is not None and candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_ok(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif self.hours is not None and candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif self.matches(candidate):
                return candidate
            else:
                candidate += timedelta(minutes=1)
        raise ScheduleError("cron expression never fires")

    def _day_ok(self, t: datetime) -> bool:
        weekday = (t.isoweekday() % 7) + 1
        return (
            (self.days is None or t.day in self.days)
            and (self.weekdays is None or weekday in self.weekdays)
            and (self.years is None or t.year in self.years)
        )


@dataclass(frozen=True)
class Rate:
    period_s: float

    def next_after(self, t: datetime) -> datetime:
        return t + timedelta(seconds=self.period_s)


def parse_expression(expression: str) -> Rate | Cron:
    """Parse `rate(N unit)` or a six-field AWS `cron(min hour dom month dow year)`."""
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2).lower().rstrip("s")
        if count < 1:
            raise ScheduleError(f"{expression!r}: rate must be at least 1")
        if (count == 1) != (not rate.group(2).lower().endswith("s")):
            raise ScheduleError(f"{expression!r}: AWS wants '1 {unit}' and 'N {unit}s'")
        return Rate(count * _UNIT_S[unit])
    cron = _CRON.match(text)
    if not cron:
        raise ScheduleError(f"{expression!r} is neither rate(...) nor cron(...)")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(
            f"{expression!r}: cron needs 6 fields (min hour day-of-month month day-of-week year)"
        )
    minute, hour, dom, month, dow, year = fields
    if dom != "?" and dow != "?" and not (dom == "*" and dow == "*"):
        raise ScheduleError(f"{expression!r}: one of day-of-month and day-of-week must be '?'")
    return Cron(
        minutes=_parse_field(minute, 0, 59),
        hours=_parse_field(hour, 0, 23),
        days=_parse_field(dom, 1, 31),
        months=_parse_field(month, 1, 12, _MONTHS),
        weekdays=_parse_field(dow, 1, 7, _DAYS),
        years=_parse_field(year, 1970, 2199),
    )


def scheduled_event(*, account: str, region: str, rule_arn: str, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends a rule's Lambda target when no Input is configured."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class VirtualClock:
    """Wall-clock time running `speedup` times faster from the moment it is created."""

    def __init__(self, speedup: float = 1.0) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._wall0 = datetime.now(UTC)
        self._mono0 = time.monotonic()

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=(time.monotonic() - self._mono0) * self.speedup)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() / self.speedup)


@dataclass
class ScheduledTarget:
    function_id: str
    event_id: str
    expression: str
    input: str | None
    rule_arn: str
    period_override_s: float | None = None
    fired: int = 0


class Scheduler:
    """Fires every enabled schedule of the template through `invoke`.

    Speeding schedules up for tests and demos, two ways (both EventSources arguments):
    - `schedule_speedup=60.0` runs a virtual clock 60 times faster than real time, so `rate(1 minute)`
      fires every second and `cron(0/5 * * * ? *)` every five seconds;
    - `schedule_overrides={"SweeperFunction": 0.5}` fires that function's schedules every 0.5 real
      seconds whatever their expression.
    The first firing comes one period after start, as for a newly created EventBridge rule.
    """

    def __init__(
        self,
        targets: list[ScheduledTarget],
        invoke: Callable[[str, dict[str, Any]], Awaitable[Any]],
        *,
        account: str,
        region: str,
        speedup: float = 1.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.targets = targets
        self._invoke = invoke
        self._account = account
        self._region = region
        self.clock = VirtualClock(speedup)
        self._log = log or logging.getLogger("ws_emulator.schedules")
        for target in targets:
            parse_expression(target.expression)  # fail at start-up, not at the first firing

    def event_for(self, target: ScheduledTarget, at: datetime) -> dict[str, Any]:
        if target.input is not None:
            payload: dict[str, Any] = json.loads(target.input)
            return payload
        return scheduled_event(account=self._account, region=self._region, rule_arn=target.rule_arn, at=at)

    async def run_target(self, target: ScheduledTarget) -> None:
        schedule = parse_expression(target.expression)
        now = self.clock.now()
        invocations: set[asyncio.Task[None]] = set()
        try:
            while True:
                if target.period_override_s is not None:
                    await asyncio.sleep(target.period_override_s)
                    at = self.clock.now()
                else:
                    at = schedule.next_after(now)
                    await asyncio.sleep(self.clock.real_seconds_until(at))
                now = at
                target.fired += 1
                # EventBridge invokes asynchronously: a slow run does not delay the next firing.
                task = asyncio.create_task(self._deliver(target, self.event_for(target, at)))
                invocations.add(task)
                task.add_done_callback(invocations.discard)
        finally:
            for task in invocations:
                task.cancel()

    async def _deliver(self, target: ScheduledTarget, event: dict[str, Any]) -> None:
        """One asynchronous invocation: Lambda retries a failed one twice, about 1 and 2 minutes later."""
        for attempt, delay_s in enumerate((0.0, *ASYNC_RETRY_DELAYS_S)):
            if delay_s:
                await asyncio.sleep(delay_s / self.clock.speedup)
            result = await self._invoke(target.function_id, event)
            if getattr(result, "ok", True):
                return
            error = getattr(result, "error", None) or {}
            self._log.warning(
                "scheduled %s.%s failed (attempt %d of %d): %s: %s",
                target.function_id,
                target.event_id,
                attempt + 1,
                len(ASYNC_RETRY_DELAYS_S) + 1,
                error.get("errorType"),
                error.get("errorMessage"),
            )
