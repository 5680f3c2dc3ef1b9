"""Message ids (17 decimal digits that sort by time as strings, unique within a channel) and private
channels' ids."""

from __future__ import annotations

import hashlib
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


# A private channel's id is its name, a separator public names cannot hold, and a random suffix: the
# name spaces of public and private channels are disjoint, and two private channels may share a name,
# so creating a channel never tells whether a private one of that name exists (docs/protocol.md).
PRIVATE_ID_SEPARATOR = "."
PRIVATE_ID_SUFFIX_LENGTH = 10
_SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def private_channel_id(name: str) -> str:
    """A fresh id for a private channel named `name`: `name.` and 10 random [a-z0-9] (51 bits)."""
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(PRIVATE_ID_SUFFIX_LENGTH))
    return f"{name}{PRIVATE_ID_SEPARATOR}{suffix}"


DM_NAME = "dm"


def dm_channel_id(workspace: str, members: list[str]) -> str:
    """The one id of the direct message between `members` (any order): `dm.` and 10 [a-z0-9] of a
    SHA-256 of the workspace and the sorted member ids (about 51 bits, as a private channel's suffix).
    A different set meeting the same id is detected (the stored members differ) and refused."""
    joined = "\n".join([workspace, *sorted(set(members))])
    number = int.from_bytes(hashlib.sha256(joined.encode("utf-8")).digest()[:8], "big")
    suffix = ""
    for _ in range(PRIVATE_ID_SUFFIX_LENGTH):
        number, digit = divmod(number, len(_SUFFIX_ALPHABET))
        suffix += _SUFFIX_ALPHABET[digit]
    return f"{DM_NAME}{PRIVATE_ID_SEPARATOR}{suffix}"
