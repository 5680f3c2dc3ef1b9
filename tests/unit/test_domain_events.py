"""Stream records to domain events (parley.domain_events): the mapping, PutEvents' limits (10 entries,
256 KB) and the retry of failed entries, with a fake EventBridge client."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from parley.domain_events import (
    MAX_ENTRIES,
    MAX_REQUEST_BYTES,
    DomainEvent,
    Publisher,
    Record,
    chunks,
    entry_of,
    entry_size,
    events_of,
)

MESSAGE = {
    "PK": "WS#acme#CHAN#general",
    "SK": "MSG#01790000000000000",
    "kind": "message",
    "id": "01790000000000000",
    "workspace": "acme",
    "channel": "general",
    "ts": "2026-09-21T12:26:40.000Z",
    "userId": "alice",
    "userName": "Alice",
    "text": "hello",
    "clientMsgId": "c-1",
}


def record(name: str, new: dict[str, Any] | None = None, old: dict[str, Any] | None = None) -> Record:
    return Record(event_id="ev-1", event_name=name, new_image=new, old_image=old, sequence="100")


def only(rec: Record) -> DomainEvent:
    events = events_of(rec)
    assert len(events) == 1
    return events[0]


def test_a_new_message_is_message_created_with_its_wire_form() -> None:
    event = only(record("INSERT", MESSAGE))
    assert event.detail_type == "message.created"
    assert event.detail["eventId"] == "ev-1"
    assert event.detail["workspace"] == "acme"
    assert event.detail["message"] == {
        "id": "01790000000000000",
        "channel": "general",
        "ts": "2026-09-21T12:26:40.000Z",
        "user": {"id": "alice", "name": "Alice"},
        "text": "hello",
        "clientMsgId": "c-1",
    }


def test_an_apps_message_says_which_app() -> None:
    event = only(record("INSERT", MESSAGE | {"app": "deploy-bot", "userId": "app#deploy-bot"}))
    assert event.detail["message"]["app"] == "deploy-bot"


def test_an_edit_is_message_edited_with_the_new_text() -> None:
    edited = MESSAGE | {"text": "hello!", "editedAt": Decimal(1790000001000)}
    event = only(record("MODIFY", edited, MESSAGE))
    assert event.detail_type == "message.edited"
    assert event.detail["message"]["text"] == "hello!"
    assert json.loads(entry_of(event, "bus")["Detail"])["message"]["editedAt"] == 1790000001000


def test_a_tombstone_is_message_deleted_without_the_text() -> None:
    tombstone = {k: v for k, v in MESSAGE.items() if k != "text"} | {"deletedAt": "2026-09-21T14:16:00.000Z"}
    event = only(record("MODIFY", tombstone, MESSAGE | {"editedAt": Decimal(5)}))
    assert event.detail_type == "message.deleted"
    assert "text" not in event.detail["message"]
    removed = only(record("REMOVE", None, MESSAGE))
    assert removed.detail_type == "message.deleted"
    assert "text" not in removed.detail["message"]


def test_other_rewrites_of_a_message_are_no_event() -> None:
    # a parent's reply count, a reaction total: the message itself did not change
    assert events_of(record("MODIFY", MESSAGE | {"replyCount": Decimal(2)}, MESSAGE)) == []
    edited = MESSAGE | {"editedAt": Decimal(7)}
    assert events_of(record("MODIFY", edited | {"replyCount": Decimal(1)}, edited)) == []


def test_memberships_channels_and_workspaces() -> None:
    member = {
        "PK": "WS#acme#USER#bob",
        "SK": "CHAN#ops.abcdefghij",
        "kind": "member",
        "channel": "ops.abcdefghij",
    }
    joined = only(record("INSERT", member))
    assert (joined.detail_type, joined.detail["user"], joined.detail["channel"]) == (
        "member.joined",
        "bob",
        "ops.abcdefghij",
    )
    assert only(record("REMOVE", None, member)).detail_type == "member.left"
    channel = {
        "PK": "WS#acme",
        "SK": "CHAN#ops.abcdefghij",
        "kind": "channel",
        "name": "ops",
        "private": True,
        "createdBy": "bob",
        "invitePolicy": "members",
    }
    created = only(record("INSERT", channel))
    assert created.detail_type == "channel.created"
    assert created.detail["channel"] == {
        "id": "ops.abcdefghij",
        "name": "ops",
        "private": True,
        "invite": "members",
    }
    workspace = only(record("INSERT", {"PK": "WS#acme", "SK": "META", "kind": "workspace"}))
    assert workspace.detail == {"eventId": "ev-1", "workspace": "acme"}


def test_heads_and_counters_are_no_event() -> None:
    assert events_of(record("MODIFY", {"PK": "WS#acme#CHAN#general", "SK": "HEAD", "kind": "head"})) == []
    assert events_of(record("INSERT", {"PK": "WS#acme#USER#bob", "SK": "QUOTA", "count": 1})) == []


def test_an_entry_is_source_parley_on_the_bus_with_the_record_time() -> None:
    at = datetime(2026, 9, 21, tzinfo=UTC)
    event = DomainEvent("ev-1", "message.created", {"eventId": "ev-1"}, at)
    entry = entry_of(event, "parley-events")
    assert entry == {
        "Source": "parley",
        "DetailType": "message.created",
        "Detail": '{"eventId":"ev-1"}',
        "EventBusName": "parley-events",
        "Time": at,
    }
    assert entry_size(entry) == len("parley") + len("message.created") + len('{"eventId":"ev-1"}') + 14


def big(event_id: str, text_bytes: int) -> DomainEvent:
    return DomainEvent(
        event_id, "message.created", {"eventId": event_id, "message": {"text": "é" * (text_bytes // 2)}}
    )


def test_an_entry_over_256_kb_goes_without_its_text() -> None:
    entry = entry_of(big("ev-1", MAX_REQUEST_BYTES + 10), "bus")
    assert entry_size(entry) <= MAX_REQUEST_BYTES
    detail = json.loads(entry["Detail"])
    assert detail["textOmitted"] is True and "text" not in detail["message"]


def test_chunks_hold_at_most_10_entries_and_256_kb_in_order() -> None:
    small = [entry_of(DomainEvent(f"e{n}", "member.joined", {"eventId": f"e{n}"}), "bus") for n in range(23)]
    groups = chunks(small)
    assert [len(g) for g in groups] == [10, 10, 3]
    assert [e for g in groups for e in g] == small
    # 100 KB each: two fit in 256 KB, a third does not
    large = [entry_of(big(f"b{n}", 100_000), "bus") for n in range(5)]
    groups = chunks(large)
    assert [len(g) for g in groups] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in g) <= MAX_REQUEST_BYTES for g in groups)
    assert all(len(g) <= MAX_ENTRIES for g in groups)


class FakeEventBridge:
    """Answers PutEvents as AWS does; `fail` lists (call number, entry index) pairs to fail."""

    def __init__(self, fail: set[tuple[int, int]] | None = None, raise_on: set[int] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail = fail or set()
        self.raise_on = raise_on or set()
        self.accepted: list[str] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        call = len(self.calls)
        self.calls.append(Entries)
        if call in self.raise_on:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")
        results: list[dict[str, Any]] = []
        for n, entry in enumerate(Entries):
            if (call, n) in self.fail:
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                self.accepted.append(json.loads(entry["Detail"])["eventId"])
                results.append({"EventId": f"eb-{call}-{n}"})
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def events(n: int) -> list[DomainEvent]:
    return [DomainEvent(f"e{i}", "member.joined", {"eventId": f"e{i}"}, sequence=str(i)) for i in range(n)]


def test_failed_entries_are_put_again_and_only_they() -> None:
    # GIVEN 12 events, and EventBridge failing entries 3 and 11 of the first round
    bridge = FakeEventBridge(fail={(0, 3), (1, 1)})
    left = Publisher(bridge, "bus").publish(events(12))
    # THEN the third call carries exactly the two failed ones, and all 12 are accepted once
    assert left == []
    assert [len(c) for c in bridge.calls] == [10, 2, 2]
    assert [json.loads(e["Detail"])["eventId"] for e in bridge.calls[2]] == ["e3", "e11"]
    assert sorted(bridge.accepted) == sorted(f"e{i}" for i in range(12))


def test_events_still_failing_after_the_attempts_are_returned() -> None:
    bridge = FakeEventBridge(fail={(0, 1), (1, 0), (2, 0)})
    backoffs: list[int] = []
    left = Publisher(bridge, "bus", attempts=3, backoff=backoffs.append).publish(events(3))
    assert [e.event_id for e in left] == ["e1"]
    assert backoffs == [1, 2]


def test_a_refused_call_retries_its_whole_group() -> None:
    bridge = FakeEventBridge(raise_on={0})
    left = Publisher(bridge, "bus").publish(events(11))
    assert left == []
    assert [len(c) for c in bridge.calls] == [10, 1, 10]
    assert sorted(bridge.accepted) == sorted(f"e{i}" for i in range(11))


@pytest.mark.parametrize("count", [0, 1, 10, 11])
def test_every_event_is_put_once_when_nothing_fails(count: int) -> None:
    bridge = FakeEventBridge()
    assert Publisher(bridge, "bus").publish(events(count)) == []
    assert sorted(bridge.accepted) == sorted(f"e{i}" for i in range(count))
    assert all(len(c) <= MAX_ENTRIES for c in bridge.calls)
