"""The two-level fan-out: stable chunking, SQS-sized messages, ordered hand-off, and the chunk worker."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from parley.fanout import Fanout, PlannedEvent, plan
from parley.models import Subscriber
from parley.wide_fanout import (
    SQS_MAX_MESSAGE_BYTES,
    Chunk,
    ChunkWorker,
    WideFanout,
    WideSettings,
    group_of,
    plan_chunks,
)
from tests.support.fakes import FakeNotifier
from tests.unit.fanout_records import WS, message_insert, typing_change
from tests.unit.test_fanout_deliver import FakeSubscribers

NOW_S = 1_790_000_000


def subscribers(n: int, *, prefix: str = "c", user_len: int = 6) -> list[Subscriber]:
    return [Subscriber(f"{prefix}{i:05d}=", f"u{i:0{user_len}d}") for i in range(n)]


def event(n: int, text: str = "hello", skip: str | None = None) -> PlannedEvent:
    return PlannedEvent(json.dumps({"type": "message", "id": f"m{n}", "text": text}), [f"seq{n}"], skip)


class FakeQueue:
    """Takes every chunk, in send order, except those `refuse` says no to."""

    def __init__(self, refuse: Any = None) -> None:
        self.sent: list[Chunk] = []
        self.calls = 0
        self.refuse = refuse or (lambda chunk: False)
        self._lock = threading.Lock()

    def send_batch(self, chunks: list[Chunk]) -> list[bool]:
        assert 1 <= len(chunks) <= 10
        assert len({c.group for c in chunks}) == len(chunks), "a group twice in one call could reorder"
        with self._lock:
            self.calls += 1
            oks = [not self.refuse(c) for c in chunks]
            self.sent.extend(c for c, ok in zip(chunks, oks, strict=True) if ok)
            return oks


@pytest.fixture
def executor() -> Any:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


# ---------------------------------------------------------------- chunking


def test_a_connection_is_in_the_same_group_whatever_the_channel_size() -> None:
    # GIVEN one connection among 1,500 subscribers, then among 12,000
    small = plan_chunks(WS, "general", [event(1)], subscribers(1_500), chunk_size=250, groups=8)
    large = plan_chunks(WS, "general", [event(1)], subscribers(12_000), chunk_size=250, groups=8)

    def group_holding(planned: dict[int, list[Chunk]], connection_id: str) -> set[int]:
        return {g for g, chunks in planned.items() for c in chunks for cid, _ in c.to if cid == connection_id}

    # THEN each connection is in exactly one group, the same one in both, the one its id hashes to
    for sub in subscribers(1_500)[::97]:
        assert group_holding(small, sub.connection_id) == group_holding(large, sub.connection_id)
        assert group_holding(small, sub.connection_id) == {group_of(sub.connection_id, 8)}
    assert all(0 <= group_of(f"x{i}", 8) < 8 for i in range(1_000))


def test_every_subscriber_gets_each_event_in_exactly_one_chunk_within_the_chunk_size() -> None:
    subs = subscribers(2_000)
    planned = plan_chunks(WS, "general", [event(1), event(2)], subs, chunk_size=250, groups=8)
    recipients = [cid for chunks in planned.values() for c in chunks for cid, _ in c.to]
    assert sorted(recipients) == sorted(s.connection_id for s in subs)
    chunks = [c for cs in planned.values() for c in cs]
    assert all(1 <= len(c.to) <= 250 for c in chunks)
    assert all([e.data for e in c.events] == [event(1).encoded, event(2).encoded] for c in chunks)
    assert set(planned) == set(range(8))


def test_large_events_and_long_ids_are_cut_so_every_message_fits_sqs() -> None:
    # GIVEN three events of about 100 KB full of characters JSON must escape, and 128-character user ids
    quoted = '"\\' * 30_000
    events = [event(i, text=quoted) for i in range(3)]
    subs = subscribers(3_000, user_len=128)
    # WHEN they are planned into chunks of up to 5,000
    planned = plan_chunks(WS, "general", events, subs, chunk_size=5_000, groups=4)
    # THEN every SQS body stays within 256 KB
    for chunks in planned.values():
        for chunk in chunks:
            assert len(chunk.body().encode("utf-8")) <= SQS_MAX_MESSAGE_BYTES
    # and within a group, a connection gets every event once, in order: slice by slice, the chunks of
    # a slice before any chunk of the next
    for chunks in planned.values():
        seen: dict[str, list[str]] = {}
        for chunk in chunks:
            for cid, _ in chunk.to:
                seen.setdefault(cid, []).extend(json.loads(e.data)["id"] for e in chunk.events)
        assert all(ids == ["m0", "m1", "m2"] for ids in seen.values())


def test_a_chunk_round_trips_through_its_body() -> None:
    (chunk,) = plan_chunks(WS, "général", [event(1, skip="u1")], subscribers(3), chunk_size=10, groups=1)[0]
    assert Chunk.model_validate_json(chunk.body()) == chunk
    assert len(chunk.group_id()) <= 128  # SQS's limit for MessageGroupId


# ---------------------------------------------------------------- first level


def _fanout(store: FakeSubscribers, notifier: FakeNotifier, queue: FakeQueue, executor: Any) -> Fanout:
    wide = WideFanout(WideSettings(threshold=100, chunk_size=50, groups=4, queue_url="q"), queue, executor)
    return Fanout(store=store, notifier=notifier, executor=executor, wide=wide)


def test_a_channel_at_the_threshold_is_posted_directly_and_nothing_is_enqueued(executor: Any) -> None:
    store, notifier, queue = FakeSubscribers(), FakeNotifier(), FakeQueue()
    for sub in subscribers(100):
        store.subscribe(sub.connection_id, sub.user_id)
    report = _fanout(store, notifier, queue, executor).deliver(plan([message_insert("1", "m1")]), NOW_S)
    assert notifier.posts == 100 and report.deliveries == 100
    assert queue.sent == [] and report.handed_off == 0


def test_a_channel_above_the_threshold_is_handed_to_the_queue_and_not_posted(executor: Any) -> None:
    store, notifier, queue = FakeSubscribers(), FakeNotifier(), FakeQueue()
    for sub in subscribers(101):
        store.subscribe(sub.connection_id, sub.user_id)
    store.subscribe("small1", "alice", channel="random")
    work = plan([message_insert("1", "m1"), message_insert("2", "m2", channel="random")])
    report = _fanout(store, notifier, queue, executor).deliver(work, NOW_S)
    # the wide channel went to the queue, the small one in the same batch was posted as before
    assert set(notifier.frames) == {"small1"}
    assert report.handed_off == 101 and not report.failed_sequences
    assert sorted(cid for c in queue.sent for cid, _ in c.to) == sorted(
        s.connection_id for s in subscribers(101)
    )
    assert all(c.channel == "general" for c in queue.sent)


def test_a_refused_chunk_fails_its_records_and_stops_its_group_only(executor: Any) -> None:
    # GIVEN a wide channel whose group 2 has several chunks, and SQS refusing group 2's first
    store, notifier = FakeSubscribers(), FakeNotifier()
    for sub in subscribers(1_000):
        store.subscribe(sub.connection_id, sub.user_id)
    refused: list[Chunk] = []

    def refuse(chunk: Chunk) -> bool:
        if chunk.group == 2 and not refused:
            refused.append(chunk)
            return True
        return False

    queue = FakeQueue(refuse)
    report = _fanout(store, notifier, queue, executor).deliver(plan([message_insert("1", "m1")]), NOW_S)
    # THEN the stream record is reported failed (the mapping retries it), no later chunk of group 2 was
    # sent (it would overtake the refused one), and every other group was sent in full
    assert report.failed_sequences == {"1"}
    assert [c for c in queue.sent if c.group == 2] == []
    assert {c.group for c in queue.sent} == {0, 1, 3}
    assert len(queue.sent) == sum(-(-n // 50) for g, n in _group_sizes(1_000, 4).items() if g != 2)


def _group_sizes(n: int, groups: int) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for sub in subscribers(n):
        g = group_of(sub.connection_id, groups)
        sizes[g] = sizes.get(g, 0) + 1
    return sizes


# ---------------------------------------------------------------- second level


def _worker(notifier: FakeNotifier, executor: Any, forgotten: list[Any]) -> ChunkWorker:
    return ChunkWorker(
        notifier=notifier, executor=executor, forget_gone=lambda cid, subs: forgotten.append((cid, subs))
    )


def test_the_worker_posts_in_order_and_skips_the_typist(executor: Any) -> None:
    notifier, forgotten = FakeNotifier(), list[Any]()
    work = plan([message_insert("1", "m1"), typing_change("2", "u000001"), message_insert("3", "m3")])
    events = work.channels[(WS, "general")]
    (chunk,) = plan_chunks(WS, "general", events, subscribers(3), chunk_size=10, groups=1)[0]
    report = _worker(notifier, executor, forgotten).deliver(chunk)
    assert report.complete and report.gone == [] and forgotten == []
    assert [e["type"] for e in notifier.events("c00000=")] == ["message", "typing", "message"]
    assert [e["type"] for e in notifier.events("c00001=")] == ["message", "message"]  # the typist
    assert [e["id"] for e in notifier.events("c00002=") if e["type"] == "message"] == ["m1", "m3"]
    assert report.deliveries == 8 and report.posts == 3  # one batch frame per connection


def test_a_gone_connection_in_a_chunk_is_forgotten_and_is_no_failure(executor: Any) -> None:
    notifier, forgotten = FakeNotifier(), list[Any]()
    notifier.gone.add("c00001=")
    (chunk,) = plan_chunks(WS, "general", [event(1)], subscribers(3), chunk_size=10, groups=1)[0]
    report = _worker(notifier, executor, forgotten).deliver(chunk)
    assert report.complete
    assert forgotten == [("c00001=", [(WS, "general", "u000001")])]
    assert set(notifier.frames) == {"c00000=", "c00002="}


@pytest.mark.parametrize("kind", ["throttled", "failing"])
def test_a_throttled_or_failed_post_fails_the_chunk_so_sqs_hands_it_back(executor: Any, kind: str) -> None:
    notifier, forgotten = FakeNotifier(), list[Any]()
    getattr(notifier, kind).add("c00002=")
    (chunk,) = plan_chunks(WS, "general", [event(1)], subscribers(3), chunk_size=10, groups=1)[0]
    report = _worker(notifier, executor, forgotten).deliver(chunk)
    assert not report.complete and report.failed == 1
    assert report.throttled == (1 if kind == "throttled" else 0)


def test_both_levels_deliver_what_the_direct_path_delivers(executor: Any) -> None:
    # GIVEN the same batch fanned out to 600 connections directly and through the two levels
    work = plan([message_insert("1", "m1"), typing_change("2", "u000007"), message_insert("3", "m3")])
    direct_store, wide_store = FakeSubscribers(), FakeSubscribers()
    for sub in subscribers(600):
        direct_store.subscribe(sub.connection_id, sub.user_id)
        wide_store.subscribe(sub.connection_id, sub.user_id)
    direct = FakeNotifier()
    Fanout(store=direct_store, notifier=direct, executor=executor).deliver(work, NOW_S)
    queue, posted = FakeQueue(), FakeNotifier()
    _fanout(wide_store, FakeNotifier(), queue, executor).deliver(work, NOW_S)
    worker = _worker(posted, executor, [])
    for chunk in queue.sent:  # one group after another, each in send order, as SQS FIFO hands them
        assert worker.deliver(chunk).complete
    # THEN every connection got the same events in the same order
    for sub in subscribers(600):
        assert posted.events(sub.connection_id) == direct.events(sub.connection_id)


def test_a_channel_that_shrinks_stays_on_the_queue_so_no_direct_post_overtakes_a_queued_one(
    executor: Any,
) -> None:
    # GIVEN a channel handed off to the queue (its chunks may still wait there)
    store, notifier, queue = FakeSubscribers(), FakeNotifier(), FakeQueue()
    for sub in subscribers(101):
        store.subscribe(sub.connection_id, sub.user_id)
    now = [1000.0]
    wide = WideFanout(
        WideSettings(threshold=100, chunk_size=50, groups=4, queue_url="q"),
        queue,
        executor,
        clock=lambda: now[0],
    )
    fanout = Fanout(store=store, notifier=notifier, executor=executor, wide=wide)
    fanout.deliver(plan([message_insert("1", "m1")]), NOW_S)
    # WHEN members leave, so it drops to the threshold, and its next message is fanned out
    store.by_channel[(WS, "general")] = store.by_channel[(WS, "general")][:60]
    fanout.deliver(plan([message_insert("2", "m2")]), NOW_S)
    # THEN that message is queued too, behind the first, not posted directly
    assert notifier.posts == 0
    assert [json.loads(c.events[0].data)["id"] for c in queue.sent][-1] == "m2"
    # and once nothing of it can still be queued, the small channel is posted directly again
    now[0] += 301
    fanout.deliver(plan([message_insert("3", "m3")]), NOW_S)
    assert notifier.posts == 60


def test_nothing_to_send_plans_no_chunk() -> None:
    assert plan_chunks(WS, "general", [], subscribers(5), chunk_size=2, groups=2) == {}
    assert plan_chunks(WS, "general", [event(1)], [], chunk_size=2, groups=2) == {}
