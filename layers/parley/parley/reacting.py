"""Reactions, the use case: add or remove one name on one message, and show a page's reactions.

A `react` reads the message, its counts and the user's names in one call, decides (nothing to do, a
bound reached, or the change), spends the rate only when it will write, and writes the change in one
transaction conditioned on what it read; if another writer came first it reads again and decides anew.
The counts change only with the user's own item, so a repeated `react` is answered `changed: false`
and counts nothing twice. Fan-out sends the counts item's stream record as a `reaction` event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from parley import protocol
from parley.errors import NotFound, QuotaExceeded, StoreError
from parley.models import Caller, Message, ReactionChange, ReactionState
from parley.ports import Reactions

REACT_ATTEMPTS = 4


def react(
    store: Reactions, caller: Caller, frame: protocol.ReactFrame, take_rate: Callable[[], None]
) -> dict[str, Any]:
    """The `reacted` answer; NotFound, QuotaExceeded or RateLimited with nothing written."""
    change = ReactionChange(
        workspace=caller.workspace,
        channel=frame.channel,
        message_id=frame.message_id,
        user=caller.user,
        name=frame.name,
        added=not frame.remove,
    )
    rated = False
    for attempt in range(REACT_ATTEMPTS):
        seen = store.reaction_state(
            change.workspace, change.channel, change.message_id, change.user.id, consistent=attempt > 0
        )
        if seen is None:
            raise NotFound(f"no message '{change.message_id}' in '{change.channel}'")
        if (change.name in seen.mine) == change.added:
            return protocol.reacted(change, changed=False)  # already so: nothing to write
        _check_bounds(change, seen)
        if not rated:
            take_rate()
            rated = True
        if store.apply_reaction(
            change,
            seen,
            max_distinct=protocol.MAX_REACTIONS_PER_MESSAGE,
            max_mine=protocol.MAX_REACTIONS_PER_USER,
        ):
            return protocol.reacted(change, changed=True)
    raise StoreError("reaction contention: too many concurrent writers on one message")


def _check_bounds(change: ReactionChange, seen: ReactionState) -> None:
    if not change.added:
        return
    if len(seen.mine) >= protocol.MAX_REACTIONS_PER_USER:
        raise QuotaExceeded(
            f"at most {protocol.MAX_REACTIONS_PER_USER} reactions of yours on one message; remove one first"
        )
    if change.name not in seen.counts and len(seen.counts) >= protocol.MAX_REACTIONS_PER_MESSAGE:
        raise QuotaExceeded(
            f"at most {protocol.MAX_REACTIONS_PER_MESSAGE} different reactions on one message; "
            "add one of those already there"
        )


def with_reactions(
    store: Reactions, workspace: str, channel: str, user_id: str, messages: list[Message]
) -> list[Message]:
    """`messages` (one run of consecutive ids, oldest first) with their reactions as `user_id` sees
    them: two Queries for the whole run, none when it is empty."""
    if not messages:
        return messages
    summaries = store.reaction_summaries(workspace, channel, user_id, messages[0].id, messages[-1].id)
    if not summaries:
        return messages
    return [replace(m, reactions=summaries[m.id]) if m.id in summaries else m for m in messages]
