"""Message ids: 17 decimal digits that sort by time as strings and are unique within a channel."""

from __future__ import annotations

import secrets

# A message id is epoch milliseconds times 10,000 plus a sequence. Ids sort by time as strings, and the
# store bumps a colliding id past the channel's last one, so they are also unique.
_ID_SCALE = 10_000


def message_id_for(epoch_ms: int) -> str:
    return f"{epoch_ms * _ID_SCALE + secrets.randbelow(1000):017d}"


def next_message_id(after: str, epoch_ms: int) -> str:
    """The smallest id after `after` that is not earlier than `epoch_ms`."""
    return f"{max(int(after) + 1, epoch_ms * _ID_SCALE):017d}"


def message_id_ms(message_id: str) -> int:
    return int(message_id) // _ID_SCALE
