"""parley_client against a fake Parley on 127.0.0.1 (tests/clients/fake_server.py): replies matched to
requests, sends pending until acked and deduped by clientMsgId, batches unpacked and duplicates
dropped, reconnects that re-join with `since` (and page back over a long outage), heartbeats that
notice a silent server, the generic `request` for actions the client has no helper for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from parley_client import (
    Connection,
    Event,
    HandshakeRefused,
    Options,
    ParleyClient,
    ParleyClientError,
    ServerError,
)
from tests.clients.fake_server import GOOD_TOKEN, FakeParley, fake_parley


def quick(**overrides: Any) -> Options:
    """Reconnects without long waits (what is asserted is behaviour, never how fast)."""
    return Options(**({"backoff_base_s": 0.05, "backoff_cap_s": 0.2} | overrides))


@pytest.fixture
async def fake() -> AsyncIterator[FakeParley]:
    async with fake_parley() as server:
        yield server


@pytest.fixture
async def alice(fake: FakeParley) -> AsyncIterator[ParleyClient]:
    async with ParleyClient(fake.url, GOOD_TOKEN, options=quick()) as client:
        yield client


async def listen(client: ParleyClient, n: int, timeout: float = 10) -> asyncio.Task[list[Event]]:
    """The next n events the client yields, collected from now on."""

    async def collect() -> list[Event]:
        got: list[Event] = []
        async for event in client.events():
            got.append(event)
            if len(got) == n:
                break
        return got

    task = asyncio.create_task(asyncio.wait_for(collect(), timeout))
    await asyncio.sleep(0.01)  # subscribed before anything else happens
    return task


async def test_connect_sends_the_token_in_the_query_string_and_a_bad_one_is_refused(fake: FakeParley):
    async with ParleyClient(fake.url, lambda: GOOD_TOKEN + "-fresh", options=quick()) as client:
        assert client.status == "open"
    assert fake.tokens == [GOOD_TOKEN + "-fresh"]
    with pytest.raises(HandshakeRefused) as refused:
        await ParleyClient(fake.url, "stolen").start()
    assert refused.value.status == 401


async def test_a_request_gets_its_own_reply_while_events_go_to_the_events(fake: FakeParley):
    async with await Connection.open(fake.url, token=GOOD_TOKEN) as conn:
        joined = await conn.request("join", channel="general")
        await fake.post("general", "pushed first")
        history = await conn.request({"action": "history", "channel": "general"})
        assert joined["type"] == "joined" and history["type"] == "history"
        event = await conn.wait_for(lambda e: e["type"] == "message")
        assert event["text"] == "pushed first" and conn.of("message") == [event]


async def test_the_raw_escape_hatch_sends_exactly_what_it_is_given(fake: FakeParley):
    async with await Connection.open(fake.url, token=GOOD_TOKEN) as conn:
        reply = await conn.request_raw('{"action": "shout"}')
        assert reply["code"] == "unknown_action"
        await conn.send_raw('{"action":"typing","channel":"general"}')
        assert await conn.request("heartbeat") == {"type": "heartbeat", "ts": "2026-12-02T03:00:00.000Z"}
    assert fake.received[:2] == [{"action": "shout"}, {"action": "typing", "channel": "general"}]


async def test_an_action_the_client_does_not_know_works_through_request(alice: ParleyClient):
    # no helper, no entry in REPLIES: answered by the first frame of a type the client does not know
    assert await alice.request("echo", value=7) == {"type": "echoed", "value": 7}
    # or by the type the caller names
    assert await alice.request("echo", value=8, reply="echoed") == {"type": "echoed", "value": 8}
    # and a refusal comes back as the error frame
    assert (await alice.request("shout"))["code"] == "unknown_action"


async def test_a_message_is_acked_and_shown_once_even_when_pushed_twice_and_batched(
    fake: FakeParley, alice: ParleyClient
):
    # GIVEN a server that pushes every message event twice, the second time inside a batch
    fake.duplicate_events = True
    await alice.join("general")
    events_task = await listen(alice, 2)
    # WHEN alice sends and carol posts
    ack = await alice.send_message("general", "hello")
    await fake.post("general", "hi alice")
    events = await events_task
    # THEN each message is one event, and the timeline holds each once, in id order
    assert [e["text"] for e in events if e["type"] == "message"] == ["hello", "hi alice"]
    timeline = alice.channel("general").timeline
    assert [m["text"] for m in timeline.messages()] == ["hello", "hi alice"]
    assert timeline.messages()[0]["id"] == ack["id"] and alice.pending == {}


async def test_a_lost_ack_is_resent_with_the_same_client_msg_id_on_the_next_connection(
    fake: FakeParley, alice: ParleyClient
):
    # GIVEN a server that stores the message but closes the connection instead of acking it
    await alice.join("general")
    fake.lose_acks = 1
    # WHEN alice sends
    ack = await alice.send_message("general", "exactly once", client_msg_id="c-lost")
    # THEN she reconnected, re-joined and sent it again under the same id; one message is stored
    assert [f.get("clientMsgId") for f in fake.frames("message")] == ["c-lost", "c-lost"]
    assert len(fake.frames("join")) == 2 and alice.reconnects == 1
    assert [m["id"] for m in fake.messages["general"]] == [ack["id"]]


async def test_rate_limited_sends_wait_and_go_again_under_the_same_id(fake: FakeParley, alice: ParleyClient):
    await alice.join("general")
    fake.rate_limit_next = 2
    ack = await alice.send_message("general", "patient")
    assert [f["clientMsgId"] for f in fake.frames("message")] == [ack["clientMsgId"]] * 3
    assert alice.errors["rate_limited"] == 2


async def test_not_joined_makes_the_client_join_again_and_send(fake: FakeParley, alice: ParleyClient):
    # GIVEN a server that forgot alice's subscription (as Parley forgets a connection it thought gone)
    await alice.join("general")
    fake.subscribers["general"].clear()
    # WHEN she sends, THEN the not_joined answer makes her join again, and the message goes through
    ack = await alice.send_message("general", "after a re-join")
    assert ack["type"] == "ack" and len(fake.frames("join")) == 2
    assert [f["clientMsgId"] for f in fake.frames("message")] == [ack["clientMsgId"]] * 2


async def test_a_message_refused_for_good_raises_and_stays_failed(fake: FakeParley, alice: ParleyClient):
    with pytest.raises(ValueError, match="Too long"):
        await alice.send_message("general", "x" * 4001)
    await alice.join("general")
    fake.refuse_messages = True
    with pytest.raises(ServerError) as refused:
        await alice.send_message("general", "no", client_msg_id="c-no")
    assert refused.value.code == "bad_request"
    assert alice.pending["c-no"].state == "failed"


async def test_a_reconnect_rejoins_with_since_and_yields_what_was_missed(fake: FakeParley):
    async with ParleyClient(fake.url, GOOD_TOKEN, options=quick()) as bob:
        await bob.join("general")
        first = await fake.post("general", "before")
        await (await listen(bob, 1))
        # WHEN the server drops every connection and messages are posted while bob is away
        events_task = await listen(bob, 3)
        await fake.drop_all()
        await asyncio.wait_for(bob.disconnected.wait(), 10)
        missed = [await fake.post("general", f"missed {i}") for i in range(3)]
        events = await events_task
        # THEN bob came back by himself, re-joined `since` the last message he had, and got the rest
        assert fake.frames("join")[-1] == {"action": "join", "channel": "general", "since": first["id"]}
        assert [e["text"] for e in events if e["type"] == "message"] == ["missed 0", "missed 1", "missed 2"]
        assert [m["id"] for m in bob.channel("general").timeline.messages()] == [first["id"]] + [
            m["id"] for m in missed
        ]
        assert bob.closes[1001] == 1 and bob.reconnects == 1


async def test_a_long_outage_is_paged_back_with_history_until_since(fake: FakeParley):
    fake.recovery_max = 3  # a join recovers at most 3: the rest is paged back
    async with ParleyClient(fake.url, GOOD_TOKEN, options=quick()) as bob:
        await bob.join("general")
        first = await fake.post("general", "before")
        await (await listen(bob, 1))
        events_task = await listen(bob, 8)
        await fake.drop_all()
        await asyncio.wait_for(bob.disconnected.wait(), 10)
        for i in range(8):
            fake.store("general", f"missed {i}")
        events = await events_task
        assert sorted(e["text"] for e in events if e["type"] == "message") == sorted(
            f"missed {i}" for i in range(8)
        )
        assert fake.frames("history")[0]["before"] == fake.messages["general"][-3]["id"]
        assert (
            len(bob.channel("general").timeline.ids) == 9
            and first["id"] in bob.channel("general").timeline.ids
        )


async def test_a_silent_server_is_noticed_by_the_heartbeat_and_left_for_a_new_connection(fake: FakeParley):
    # GIVEN heartbeats every moment and a server that stops answering them (a half-open socket)
    options = quick(heartbeat_s=0.05, heartbeat_jitter_s=0.0, liveness_timeout_s=0.3)
    async with ParleyClient(fake.url, GOOD_TOKEN, options=options) as client:
        await client.join("general")
        await asyncio.wait_for(_until(lambda: len(fake.frames("heartbeat")) >= 2), 10)
        assert client.reconnects == 0  # answered heartbeats keep the connection
        fake.silent_heartbeats = True
        # THEN the client gives up on that connection and opens another, joined again
        await asyncio.wait_for(_until(lambda: client.reconnects >= 1 and client.status == "open"), 10)
        assert len(fake.frames("join")) >= 2


async def test_typed_helpers_raise_server_errors_and_request_returns_them(alice: ParleyClient):
    assert (await alice.request("invite", channel="general", user="bob"))["type"] == "error"
    with pytest.raises(ServerError) as refused:
        await alice.invite("general", "bob")  # the fake knows no invite
    assert refused.value.code == "unknown_action"


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.02)


async def test_stopping_ends_every_events_iteration(fake: FakeParley):
    client = ParleyClient(fake.url, GOOD_TOKEN, options=quick())
    await client.start()
    listening = await listen(client, 5)
    await client.stop()
    assert await listening == [] and client.status == "stopped"


async def test_leaving_fails_the_messages_still_waiting_for_the_channel(
    fake: FakeParley, alice: ParleyClient
):
    # GIVEN a message waiting for its channel's re-join (the server forgot alice, and is slow to answer)
    await alice.join("general")
    alice.channel("general").ready = False
    sending = asyncio.create_task(alice.send_message("general", "too late", client_msg_id="c-late"))
    await asyncio.sleep(0.05)
    # WHEN she leaves, THEN the send gives up and the message is marked failed, never sent
    await alice.leave("general")
    with pytest.raises(ParleyClientError, match="left general"):
        await sending
    assert alice.pending["c-late"].state == "failed" and fake.frames("message") == []
