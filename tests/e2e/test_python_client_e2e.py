"""The Python client (clients/python) end to end: two ParleyClients through the emulator (or a stack),
one of them losing its connection while the other talks, and coming back with everything once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley_client import Options, ParleyClient
from tests.e2e.conftest import Target


async def _collect(client: ParleyClient, texts: set[str], into: list[str]) -> None:
    async for event in client.events():
        if event["type"] == "message":
            into.append(event["text"])
            if texts <= set(into):
                return


async def test_clients_talk_and_one_recovers_what_it_missed_while_away(
    target: Target, workspace: str
) -> None:
    options = Options(backoff_base_s=0.2, backoff_cap_s=1.0)
    alice = ParleyClient(target.url("alice", workspace, name="Alice"), options=options)
    bob = ParleyClient(target.url("bob", workspace, name="Bob"), options=options)
    async with alice, bob:
        # GIVEN alice and bob in general
        await alice.join("general")
        joined = await bob.join("general")
        assert joined["type"] == "joined"
        seen: list[str] = []
        wanted = {"hello bob", "missed 0", "missed 1", "missed 2", "back"}
        listening = asyncio.create_task(asyncio.wait_for(_collect(bob, wanted, seen), 60))
        await asyncio.sleep(0)
        # WHEN alice talks, bob's network drops (no close frame), alice talks on, and bob comes back
        first = await alice.send_message("general", "hello bob")
        await _until(lambda: first["id"] in bob.channel("general").timeline.by_id)
        bob.abort()
        await asyncio.wait_for(bob.disconnected.wait(), 30)
        for i in range(3):
            await alice.send_message("general", f"missed {i}")
        await _until(lambda: bob.status == "open" and bob.channel("general").ready)
        await alice.send_message("general", "back")
        await listening
        # THEN bob got every message once, in the order of their ids, and he did reconnect
        assert sorted(seen) == sorted(wanted) and len(seen) == len(wanted)
        timeline = bob.channel("general").timeline
        texts = [m["text"] for m in timeline.messages()]
        assert texts == ["hello bob", "missed 0", "missed 1", "missed 2", "back"]
        assert bob.reconnects >= 1
        assert [m["user"]["id"] for m in timeline.messages()] == ["alice"] * 5


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)
