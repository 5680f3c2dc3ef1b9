"""Per-user, per-action rate limiting with GCRA: one number of state (the theoretical arrival time) per
user and action."""

from __future__ import annotations

import math
from dataclasses import dataclass

# (burst, per second) of each action but `message` (RATE_BURST, RATE_PER_SECOND), per user across all of
# the user's connections. Far above what a person or the web client does (it joins each channel once
# per reconnect, heartbeats every 4 to 5 minutes, types at most every 2 s per channel), far below
# what a script can send. ACTION_RATE_LIMITS overrides them.
ACTION_LIMITS: dict[str, tuple[int, float]] = {
    "create_channel": (10, 0.1),
    "invite": (30, 0.5),
    "join": (100, 10.0),
    "leave": (100, 10.0),
    "typing": (30, 3.0),
    "history": (60, 5.0),
    "presence": (60, 5.0),
    "channels": (30, 2.0),
    "heartbeat": (10, 0.5),
    # a click each: a burst of reactions at once, then a few a second
    "react": (30, 3.0),
    "edit": (30, 1.0),
    "delete": (30, 1.0),
    "thread": (60, 5.0),
    # a person opens a few DMs and marks a channel read each time they look at it
    "open_dm": (20, 0.5),
    "mark_read": (60, 5.0),
}


def parse_limits(spec: str) -> dict[str, tuple[int, float]]:
    """`action=burst/per_second,...` as a mapping; ValueError naming the first bad entry."""
    limits: dict[str, tuple[int, float]] = {}
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        action, _, value = entry.partition("=")
        burst, _, rate = value.partition("/")
        try:
            parsed = (int(burst), float(rate))
        except ValueError:
            parsed = (0, 0.0)
        if action.strip() not in ACTION_LIMITS or parsed[0] < 1 or not parsed[1] > 0:
            raise ValueError(
                f"ACTION_RATE_LIMITS entry {entry!r}: want action=burst/per_second with an action of "
                f"{', '.join(ACTION_LIMITS)}, burst >= 1 and per_second > 0"
            )
        limits[action.strip()] = parsed
    return limits


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    new_tat_ms: int  # the state to store when allowed
    retry_after_ms: int  # when refused


def decide(tat_ms: int | None, now_ms: int, *, rate_per_s: float, burst: int) -> Decision:
    """Allow `burst` messages at once, then `rate_per_s` a second (the generic cell rate algorithm)."""
    interval = 1000.0 / rate_per_s
    tolerance = interval * (burst - 1)
    tat = max(tat_ms if tat_ms is not None else now_ms, now_ms)
    if tat - now_ms > tolerance:
        return Decision(False, tat, max(1, int(tat - now_ms - tolerance + 0.999)))
    # round the stored state up: rounding down would admit a little more than rate_per_s when
    # 1000 / rate_per_s is not a whole number of milliseconds
    return Decision(True, math.ceil(tat + interval), 0)
