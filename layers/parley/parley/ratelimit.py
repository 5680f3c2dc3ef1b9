"""Per-user message rate limiting with GCRA: one number of state (the theoretical arrival time) per user."""

from __future__ import annotations

import math
from dataclasses import dataclass


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
