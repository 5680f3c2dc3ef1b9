"""Reaction items and domain objects, mapped both ways (the counts item's stream image decodes here too).

A message's counts item (`kind` `reactions`, one per message that ever had a reaction) holds one number
attribute per name in use (`c#{name}`), `distinct` (how many), `v` (the message's reaction version: one
more on every change) and the last change (`last*`), which is what its stream record fans out. A user's
item (`kind` `reacted`, one per message the user reacts to) holds the names the user put on it (`names`).
"""

from __future__ import annotations

from typing import Any

from parley.models import ReactionChange, ReactionState, ReactionSummary, User
from parley.store import keys
from parley.store.items import as_int

Item = dict[str, Any]


def counts_of(item: Item | None) -> dict[str, int]:
    """Each name in use on the message and its count (only counts above zero are stored)."""
    if item is None:
        return {}
    prefix = keys.REACTION_COUNT_PREFIX
    counts = {k.removeprefix(prefix): as_int(v) for k, v in item.items() if k.startswith(prefix)}
    return {name: count for name, count in counts.items() if count > 0}


def version_of(item: Item | None) -> int:
    return 0 if item is None or "v" not in item else as_int(item["v"])


def names_of(item: Item | None) -> frozenset[str]:
    if item is None:
        return frozenset()
    return frozenset(str(n) for n in item.get("names", set()))


def state_from_items(counts_item: Item | None, mine_item: Item | None) -> ReactionState:
    return ReactionState(counts_of(counts_item), version_of(counts_item), names_of(mine_item))


def summary_from_items(counts_item: Item, mine_item: Item | None) -> ReactionSummary:
    """A message's reactions for one reader; a name of the reader's not (yet) counted is not shown."""
    counts = counts_of(counts_item)
    return ReactionSummary(
        tuple(sorted(counts.items())),
        names_of(mine_item) & counts.keys(),
        version_of(counts_item),
    )


def message_id_of(item: Item) -> str:
    return str(item["SK"]).rsplit("#", 1)[-1]


def change_from_image(image: Item) -> tuple[ReactionChange, int, int]:
    """The change a counts item's stream image records, with the name's count and the version after it."""
    name = str(image["lastName"])
    change = ReactionChange(
        workspace=str(image["workspace"]),
        channel=str(image["channel"]),
        message_id=str(image["messageId"]),
        user=User(str(image["lastUserId"]), str(image["lastUserName"])),
        name=name,
        added=bool(image["lastAdded"]),
    )
    count = image.get(keys.REACTION_COUNT_PREFIX + name, 0)
    return change, as_int(count), version_of(image)
