"""A join storm through the emulator: presence has its own event source mapping, which waits to gather
joins, so a member gets one `presence_diff` per presence batch, not one per fan-out batch.

The window is set to its maximum and the batch size to the storm's size, so the one batch closes
exactly when the last join's presence record is written: no timing decides what is coalesced.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Peers, Target, _serve_in_thread

STORM = 12


@pytest.fixture(scope="module")
def storm_emulator() -> Iterator[Target]:
    # Emulators of one process share moto's global state: a stack name of its own keeps this one's
    # tables and streams apart from the session emulator's (whose presence window is 0).
    yield from _serve_in_thread(
        stack_name=f"storm{uuid.uuid4().hex[:8]}",
        parameter_overrides={"PresenceBatchingWindowSeconds": "300", "PresenceBatchSize": str(STORM)},
    )


@pytest.fixture
async def storm_peers(storm_emulator: Target) -> AsyncIterator[Peers]:
    opened = Peers(storm_emulator)
    try:
        yield opened
    finally:
        await opened.aclose()


async def test_a_join_storm_is_one_presence_diff_per_member_with_every_join_once(
    storm_peers: Peers, workspace: str
) -> None:
    # GIVEN STORM users who join one channel one after another (each join answered before the next)
    users = [f"u{i:02d}" for i in range(STORM)]
    members = [await storm_peers.joined(user, workspace) for user in users]
    # WHEN the presence batch closes (its STORM records are all written)
    diffs: list[dict[str, Any]] = [
        await m.wait_for(lambda e: e["type"] == "presence_diff", timeout=30) for m in members
    ]
    # THEN every member got exactly one presence_diff (no other presence record exists to make another),
    # and it lists every join exactly once
    for member, diff in zip(members, diffs, strict=True):
        assert len(member.of("presence_diff")) == 1
        assert sorted(u["id"] for u in diff["joins"]) == users
        assert diff["leaves"] == []
    # and it is the same event (one id) for everybody, so a client dedupes a retried delivery
    assert len({d["id"] for d in diffs}) == 1
