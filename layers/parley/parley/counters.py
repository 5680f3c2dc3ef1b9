"""The counters consumer: channel message counts and per-user mention counts, from the MessagesTable
stream, coalesced per batch (one UpdateItem per channel, one per mentioned user and channel), never on
the message write path.

Planning is pure. Applying is safe to run twice: a counter keeps the highest id it counted and counts
only ids above it (parley.store.conversations.ConversationStore.add_counted), so a retried or
re-sent batch never counts a message twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools import Logger

from parley.errors import StoreError
from parley.fanout import StreamChange
from parley.store.items import message_from_item

logger = Logger(child=True)

ChannelKey = tuple[str, str]  # (workspace, channel)


class CounterStore(Protocol):
    def count_channel_messages(self, workspace: str, channel: str, message_ids: list[str]) -> int: ...

    def count_mentions(self, workspace: str, user_id: str, channel: str, message_ids: list[str]) -> int: ...


@dataclass(slots=True)
class CountPlan:
    """Per channel: its new message ids, the ids mentioning each user, and the records they came from."""

    messages: dict[ChannelKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    mentions: dict[ChannelKey, dict[str, list[str]]] = field(default_factory=dict)
    sequences: dict[ChannelKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    ignored: list[str] = field(default_factory=list)


def plan(changes: Iterable[StreamChange]) -> CountPlan:
    """What a batch adds: new messages only (an edit or delete is a MODIFY and changes no count).
    A user mentioning themselves is not counted."""
    result = CountPlan()
    for change in changes:
        image = change.new_image
        if change.event_name != "INSERT" or image is None or image.get("kind") != "message":
            result.ignored.append(change.sequence)
            continue
        message = message_from_item(image)
        key = (message.workspace, message.channel)
        result.messages[key].append(message.id)
        result.sequences[key].append(change.sequence)
        for user_id in message.mentions:
            if user_id != message.user.id:
                result.mentions.setdefault(key, defaultdict(list))[user_id].append(message.id)
    return result


def apply(work: CountPlan, store: CounterStore) -> set[str]:
    """Add the batch to the counters; the sequences of channels that failed (for a retry).

    A channel's mention counts go first and its message count last: whoever reads a message count
    (mark_read) then finds the mentions of every message it counted already counted."""
    failed: set[str] = set()
    for key, ids in work.messages.items():
        workspace, channel = key
        try:
            for user_id, mentioned in work.mentions.get(key, {}).items():
                store.count_mentions(workspace, user_id, channel, mentioned)
            store.count_channel_messages(workspace, channel, ids)
        except StoreError:
            logger.exception("counter update failed", extra={"channel": channel})
            failed.update(work.sequences[key])
    return failed
