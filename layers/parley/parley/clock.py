"""Time as the domain sees it: an injectable clock and Parley's timestamp and id formats."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def iso_ms(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, e.g. 2026-11-28T10:15:30.123Z."""
    return (
        datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{epoch_ms % 1000:03d}Z"
    )


# A message id is 17 decimal digits: epoch milliseconds times 10,000 plus a sequence. Ids sort by time as
# strings, and the store bumps a colliding id past the channel's last one, so they are also unique.
_ID_SCALE = 10_000


def message_id_for(epoch_ms: int) -> str:
    return f"{epoch_ms * _ID_SCALE + secrets.randbelow(1000):017d}"


def next_message_id(after: str, epoch_ms: int) -> str:
    """The smallest id after `after` that is not earlier than `epoch_ms`."""
    return f"{max(int(after) + 1, epoch_ms * _ID_SCALE):017d}"


def message_id_ms(message_id: str) -> int:
    return int(message_id) // _ID_SCALE
