"""Fan-out delivery: one post per connection, typists skipped, failures reported per stream record."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest

from parley.errors import StoreError, StoreThrottled
from parley.fanout import MAX_FRAME_BYTES, Fanout, Report, plan
from parley.models import Subscriber
from parley.notify import PostOutcome
from tests.support.fakes import FakeNotifier
from tests.unit.fanout_records import WS, message_insert, presence_join, typing_change

NOW_S = 1_790_000_000
ID1, ID2, ID3 = "17900000000000001", "17900000000000002", "17900000000000003"


class FakeSubscribers:
    """The one Store method fan-out uses: subscribers per channel, with failing channels on demand."""

    def __init__(self) -> None:
        self.by_channel: dict[tuple[str, str], list[Subscriber]] = {}
        self.failing: set[tuple[str, str]] = set()
        self.queries: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def subscribe(
        self, connection_id: str, user_id: str, channel: str = "general", workspace: str = WS
    ) -> None:
        self.by_channel.setdefault((workspace, channel), []).append(Subscriber(connection_id, user_id))

    def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]:
        with self._lock:
            self.queries.append((workspace, channel, now_s))
        if (workspace, channel) in self.failing:
            raise StoreThrottled("ProvisionedThroughputExceededException")
        return list(self.by_channel.get((workspace, channel), []))


class MarkerNotifier(FakeNotifier):
    """Answers `outcome` for any post whose frame contains `marker`; records the rest like FakeNotifier."""

    def __init__(self, marker: str, outcome: PostOutcome) -> None:
        super().__init__()
        self.marker = marker
        self.outcome = outcome

    def post(self, connection_id: str, data: str) -> PostOutcome:
        if self.marker in data:
            with self._lock:
                self.posts += 1
            return self.outcome
        return super().post(connection_id, data)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        yield executor


@pytest.fixture
def store() -> FakeSubscribers:
    return FakeSubscribers()


@pytest.fixture
def notifier() -> FakeNotifier:
    return FakeNotifier()


def deliver(
    store: FakeSubscribers, notifier: FakeNotifier, pool: ThreadPoolExecutor, changes: list[Any]
) -> Report:
    fanout = Fanout(store=store, notifier=notifier, executor=pool)
    return fanout.deliver(plan(changes), NOW_S)


def test_every_subscriber_receives_a_channels_message(store, notifier, pool):
    store.subscribe("c1", "alice")
    store.subscribe("c2", "bob")
    report = deliver(store, notifier, pool, [message_insert("1", ID1)])
    for connection in ("c1", "c2"):
        assert [(e["type"], e["id"]) for e in notifier.events(connection)] == [("message", ID1)]
    assert (report.posts, report.deliveries, report.failed_sequences) == (2, 2, set())


def test_subscribers_are_queried_once_per_channel_at_the_given_time(store, notifier, pool):
    store.subscribe("c1", "alice")
    deliver(
        store, notifier, pool, [message_insert("1", ID1), message_insert("2", ID2), typing_change("3", "bob")]
    )
    assert store.queries == [(WS, "general", NOW_S)]


def test_a_connection_gets_one_post_per_invocation_however_many_events_and_channels(store, notifier, pool):
    store.subscribe("c1", "alice")
    store.subscribe("c1", "alice", channel="random")
    changes = [
        message_insert("1", ID1),
        message_insert("2", ID2, channel="random"),
        typing_change("3", "bob"),
        presence_join("4", "carol", channel="random"),
    ]
    report = deliver(store, notifier, pool, changes)
    assert notifier.posts == 1
    [frame] = notifier.frames["c1"]
    body = json.loads(frame)
    assert body["type"] == "batch"
    assert sorted(e["type"] for e in body["events"]) == ["message", "message", "presence_diff", "typing"]
    assert (report.posts, report.deliveries) == (1, 4)


def test_a_single_event_is_posted_unbatched(store, notifier, pool):
    store.subscribe("c1", "alice")
    deliver(store, notifier, pool, [message_insert("1", ID1)])
    assert json.loads(notifier.frames["c1"][0])["type"] == "message"


def test_messages_reach_each_connection_in_id_order(store, notifier, pool):
    store.subscribe("c1", "alice")
    deliver(
        store, notifier, pool, [message_insert("1", ID3), message_insert("2", ID1), message_insert("3", ID2)]
    )
    assert [e["id"] for e in notifier.events("c1")] == [ID1, ID2, ID3]


def test_typing_is_not_sent_to_any_of_the_typists_connections(store, notifier, pool):
    store.subscribe("a1", "alice")
    store.subscribe("a2", "alice")
    store.subscribe("b1", "bob")
    report = deliver(store, notifier, pool, [typing_change("1", "alice")])
    assert "a1" not in notifier.frames
    assert "a2" not in notifier.frames
    assert [e["type"] for e in notifier.events("b1")] == ["typing"]
    assert (report.posts, report.deliveries) == (1, 1)


def test_the_typist_still_gets_the_other_events_of_the_batch(store, notifier, pool):
    store.subscribe("a1", "alice")
    store.subscribe("b1", "bob")
    deliver(store, notifier, pool, [typing_change("1", "alice"), message_insert("2", ID1)])
    assert [e["type"] for e in notifier.events("a1")] == ["message"]
    assert json.loads(notifier.frames["a1"][0])["type"] == "message"
    assert [e["type"] for e in notifier.events("b1")] == ["typing", "message"]


def test_gone_connections_are_reported_and_are_not_failures(store, notifier, pool):
    store.subscribe("c1", "alice")
    store.subscribe("c2", "bob")
    notifier.gone.add("c2")
    report = deliver(store, notifier, pool, [message_insert("1", ID1)])
    assert report.gone == {"c2"}
    assert (report.failed_sequences, report.failed_posts, report.deliveries) == (set(), 0, 1)


@pytest.mark.parametrize("outcome", ["throttled", "failing"])
def test_a_failed_post_fails_exactly_the_records_it_carried(store, notifier, pool, outcome):
    store.subscribe("c1", "alice")
    store.subscribe("c1", "alice", channel="random")
    store.subscribe("c2", "bob")  # general only
    store.subscribe("c3", "carol", channel="random")
    getattr(notifier, outcome).add("c2")
    changes = [
        message_insert("1", ID1),
        typing_change("2", "dave"),
        message_insert("3", ID2, channel="random"),
    ]
    report = deliver(store, notifier, pool, changes)
    assert report.failed_sequences == {"1", "2"}
    assert report.failed_posts == 1
    assert report.throttled == (1 if outcome == "throttled" else 0)
    assert report.gone == set()
    assert len(notifier.events("c1")) == 3
    assert len(notifier.events("c3")) == 1


def test_a_failed_split_frame_fails_only_the_records_of_that_frame(store, pool):
    # Given events of a third of the frame limit each: a connection's six are split into three frames of two
    store.subscribe("c1", "alice")
    big = "x" * (MAX_FRAME_BYTES // 3)
    changes = [
        message_insert(str(n), f"{17900000000000000 + n:017d}", text=f"marker-{n} {big}") for n in range(1, 7)
    ]
    notifier = MarkerNotifier("marker-5", PostOutcome.THROTTLED)
    # When the frame carrying the fifth is throttled
    report = deliver(store, notifier, pool, changes)
    # Then exactly the records of that frame fail, and the others arrive
    assert report.posts == 3
    assert report.failed_sequences == {"5", "6"}
    assert [e["id"][-1] for e in notifier.events("c1")] == ["1", "2", "3", "4"]


class TimedNotifier(FakeNotifier):
    """Records when each post started and ended; the first post of each connection is slow."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: dict[str, list[tuple[float, float, str]]] = {}

    def post(self, connection_id: str, data: str) -> PostOutcome:
        started = time.monotonic()
        with self._lock:
            first = connection_id not in self.spans
            self.spans.setdefault(connection_id, [])
        if first:
            time.sleep(0.05)  # long enough for a concurrent second post to overtake it
        outcome = super().post(connection_id, data)
        with self._lock:
            self.spans[connection_id].append((started, time.monotonic(), data))
        return outcome


def _six_in_three_frames() -> list[Any]:
    big = "x" * (MAX_FRAME_BYTES // 3)
    return [
        message_insert(str(n), f"{17900000000000000 + n:017d}", text=f"marker-{n} {big}") for n in range(1, 7)
    ]


def test_a_connections_split_frames_are_posted_one_after_another_in_order(store, pool):
    # Given six events that take three frames for one connection
    store.subscribe("c1", "alice")
    notifier = TimedNotifier()
    # When they are delivered with a pool of eight workers
    report = deliver(store, notifier, pool, _six_in_three_frames())
    # Then each frame was posted after the previous one ended, and the events arrive in order
    spans = notifier.spans["c1"]
    assert report.posts == 3 and len(spans) == 3
    assert all(later[0] >= earlier[1] for earlier, later in pairwise(spans))
    assert [e["id"][-1] for e in notifier.events("c1")] == ["1", "2", "3", "4", "5", "6"]


def test_after_a_frame_is_not_delivered_the_connections_later_frames_wait_for_the_retry(store, pool):
    # Given three frames for one connection, the middle one throttled
    store.subscribe("c1", "alice")
    notifier = MarkerNotifier("marker-3", PostOutcome.THROTTLED)
    # When they are delivered
    report = deliver(store, notifier, pool, _six_in_three_frames())
    # Then the third is not sent before the retry, and its records fail with the second's
    assert report.posts == 2
    assert report.failed_sequences == {"3", "4", "5", "6"}
    assert [e["id"][-1] for e in notifier.events("c1")] == ["1", "2"]


def test_a_gone_connections_later_frames_are_neither_sent_nor_failures(store, pool):
    store.subscribe("c1", "alice")
    notifier = MarkerNotifier("marker-1", PostOutcome.GONE)
    report = deliver(store, notifier, pool, _six_in_three_frames())
    assert (report.posts, report.gone, report.failed_sequences) == (1, {"c1"}, set())


def test_a_subscriber_query_failure_fails_that_channels_records_only(store, notifier, pool):
    store.subscribe("c1", "alice")
    store.subscribe("c2", "bob", channel="random")
    store.failing.add((WS, "random"))
    changes = [
        message_insert("1", ID1),
        message_insert("2", ID2, channel="random"),
        presence_join("3", "carol", channel="random"),
        typing_change("4", "dave"),
    ]
    report = deliver(store, notifier, pool, changes)
    assert report.failed_sequences == {"2", "3"}
    assert [e["type"] for e in notifier.events("c1")] == ["message", "typing"]
    assert "c2" not in notifier.frames


def test_a_store_error_of_any_kind_is_contained_per_channel(store, notifier, pool):
    class Broken(FakeSubscribers):
        def subscribers(self, workspace: str, channel: str, now_s: int) -> list[Subscriber]:
            raise StoreError("timeout")

    report = deliver(Broken(), notifier, pool, [message_insert("1", ID1)])
    assert report.failed_sequences == {"1"}
    assert notifier.posts == 0


def test_a_channel_without_subscribers_posts_nothing(store, notifier, pool):
    report = deliver(store, notifier, pool, [message_insert("1", ID1), presence_join("2", "bob")])
    assert (notifier.posts, report.posts, report.failed_sequences) == (0, 0, set())


def test_ignored_records_are_never_failed(store, notifier, pool):
    store.subscribe("c1", "alice")
    notifier.failing.add("c1")
    changes = [presence_join("1", "bob"), typing_change("2", "bob", "REMOVE")]
    report = deliver(store, notifier, pool, changes)
    assert report.failed_sequences == {"1"}


def test_every_connection_gets_the_same_frame_for_the_same_events(store, notifier, pool):
    for n in range(20):
        store.subscribe(f"c{n}", f"user{n}")
    deliver(store, notifier, pool, [message_insert("1", ID1), message_insert("2", ID2)])
    frames = {notifier.frames[f"c{n}"][0] for n in range(20)}
    assert len(frames) == 1
    assert notifier.posts == 20


def test_a_join_storm_in_one_batch_is_one_frame_per_member_with_every_join_once(store, notifier, pool):
    # GIVEN 1,000 members of general, all of whose presence records arrive in one stream batch (what the
    # presence mapping's window and batch size gather); names long enough that the diff needs splitting
    users = [f"user-{i:04d}-" + "x" * 60 for i in range(1000)]
    for i, user in enumerate(users):
        store.subscribe(f"c{i}", user)
    changes = [presence_join(str(i), user) for i, user in enumerate(users)]
    # WHEN the batch is fanned out
    report = deliver(store, notifier, pool, changes)
    # THEN each member gets at most a handful of frames (the diff split under the 128 KB frame budget)
    frames_per_member = {len(frames) for frames in notifier.frames.values()}
    assert len(notifier.frames) == 1000
    assert max(frames_per_member) <= 2
    # and every join is represented exactly once, in the same events for every member
    for connection in ("c0", "c999"):
        joined = [u["id"] for e in notifier.events(connection) for u in e["joins"]]
        assert sorted(joined) == sorted(users)
        assert all(e["type"] == "presence_diff" and e["leaves"] == [] for e in notifier.events(connection))
    assert report.failed_sequences == set()
