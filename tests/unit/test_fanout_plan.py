"""Fan-out planning: stream changes become per-channel events, ordered, coalesced and deterministic."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from parley import protocol
from parley.fanout import MAX_FRAME_BYTES, PlannedEvent, frames_for, plan
from parley.store.items import message_from_item
from tests.unit.fanout_records import (
    WS,
    change,
    message_insert,
    message_item,
    presence_join,
    presence_leave,
    state_item,
    typing_change,
)

GENERAL = (WS, "general")
ID1, ID2, ID3 = "17900000000000001", "17900000000000002", "17900000000000003"


def decoded(events: list[PlannedEvent]) -> list[dict[str, Any]]:
    return [json.loads(e.encoded) for e in events]


# ---- messages ------------------------------------------------------------------------------------


def test_an_inserted_message_becomes_a_message_event_for_its_channel():
    work = plan([message_insert("1", ID1)])
    [event] = work.channels[GENERAL]
    assert event.encoded == protocol.encode(protocol.message_event(message_from_item(message_item(ID1))))
    assert event.sequences == ["1"]
    assert event.skip_user is None
    assert work.ignored == []


def test_messages_are_in_id_order_even_when_records_are_not():
    work = plan([message_insert("1", ID3), message_insert("2", ID1), message_insert("3", ID2)])
    assert [e["id"] for e in decoded(work.channels[GENERAL])] == [ID1, ID2, ID3]
    assert [e.sequences for e in work.channels[GENERAL]] == [["2"], ["3"], ["1"]]


def test_channels_and_workspaces_are_planned_apart():
    work = plan(
        [
            message_insert("1", ID1),
            message_insert("2", ID2, channel="random"),
            message_insert("3", ID3, workspace="other"),
        ]
    )
    assert set(work.channels) == {GENERAL, (WS, "random"), ("other", "general")}
    assert all(len(events) == 1 for events in work.channels.values())


def test_a_message_keeps_client_msg_id_and_thread_id():
    work = plan([change("1", "INSERT", new=message_item(ID2, clientMsgId="c1", threadId=ID1))])
    [event] = decoded(work.channels[GENERAL])
    assert (event["clientMsgId"], event["threadId"]) == ("c1", ID1)


# ---- typing --------------------------------------------------------------------------------------


def test_a_typing_insert_or_modify_becomes_a_typing_event_skipping_the_typist():
    for name in ("INSERT", "MODIFY"):
        work = plan([typing_change("7", "bob", name)])
        [event] = work.channels[GENERAL]
        assert json.loads(event.encoded) == {
            "type": "typing",
            "id": "ev-7",
            "channel": "general",
            "user": {"id": "bob", "name": "Bob"},
        }
        assert event.skip_user == "bob"
        assert event.sequences == ["7"]


def test_messages_are_reordered_around_typing_events_which_keep_their_place():
    work = plan([message_insert("1", ID2), typing_change("2", "bob"), message_insert("3", ID1)])
    assert [(e["type"], e["id"]) for e in decoded(work.channels[GENERAL])] == [
        ("message", ID1),
        ("typing", "ev-2"),
        ("message", ID2),
    ]


# ---- presence ------------------------------------------------------------------------------------


def test_a_presence_insert_is_a_join():
    work = plan([presence_join("1", "bob")])
    [event] = work.channels[GENERAL]
    body = json.loads(event.encoded)
    assert body["type"] == "presence_diff"
    assert (body["channel"], body["joins"], body["leaves"]) == ("general", [{"id": "bob", "name": "Bob"}], [])
    assert body["id"]
    assert event.sequences == ["1"]


def test_a_presence_remove_is_a_leave_read_from_the_old_image():
    work = plan([presence_leave("1", "bob")])
    [body] = decoded(work.channels[GENERAL])
    assert (body["joins"], body["leaves"]) == ([], [{"id": "bob", "name": "Bob"}])


def test_several_joins_become_one_presence_diff_with_all_of_them():
    work = plan([presence_join("1", "bob"), presence_join("2", "carol"), presence_join("3", "dave")])
    [event] = work.channels[GENERAL]
    assert [u["id"] for u in json.loads(event.encoded)["joins"]] == ["bob", "carol", "dave"]
    assert event.sequences == ["1", "2", "3"]


def test_a_join_and_leave_of_the_same_user_in_one_batch_cancel_out():
    work = plan([presence_join("1", "bob"), presence_leave("2", "bob")])
    assert GENERAL not in work.channels
    assert sorted(work.ignored) == ["1", "2"]


def test_a_leave_then_join_of_a_user_already_present_is_no_change():
    work = plan([presence_leave("1", "bob"), presence_join("2", "bob")])
    assert work.channels == {}
    assert sorted(work.ignored) == ["1", "2"]


def test_join_leave_join_is_a_join_and_leave_join_leave_is_a_leave():
    work = plan(
        [
            presence_join("1", "bob"),
            presence_leave("2", "bob"),
            presence_join("3", "bob"),
            presence_leave("4", "carol"),
            presence_join("5", "carol"),
            presence_leave("6", "carol"),
        ]
    )
    [body] = decoded(work.channels[GENERAL])
    assert ([u["id"] for u in body["joins"]], [u["id"] for u in body["leaves"]]) == (["bob"], ["carol"])


def test_a_cancelled_user_does_not_hide_other_users_changes():
    work = plan([presence_join("1", "bob"), presence_leave("2", "carol"), presence_leave("3", "bob")])
    [event] = work.channels[GENERAL]
    body = json.loads(event.encoded)
    assert (body["joins"], [u["id"] for u in body["leaves"]]) == ([], ["carol"])
    assert sorted(event.sequences) == ["1", "2", "3"]


def test_presence_is_coalesced_per_channel():
    work = plan([presence_join("1", "bob"), presence_join("2", "bob", channel="random")])
    assert len(work.channels[GENERAL]) == 1
    assert len(work.channels[(WS, "random")]) == 1


def test_a_presence_diff_comes_after_the_channels_messages():
    work = plan([presence_join("1", "bob"), message_insert("2", ID1)])
    assert [e["type"] for e in decoded(work.channels[GENERAL])] == ["message", "presence_diff"]


def test_a_presence_without_user_name_uses_the_user_id():
    item = state_item("presence", "bob")
    del item["userName"]
    [body] = decoded(plan([change("1", "INSERT", new=item)]).channels[GENERAL])
    assert body["joins"] == [{"id": "bob", "name": "bob"}]


# ---- what is ignored -----------------------------------------------------------------------------


def test_changes_that_need_no_broadcast_are_listed_as_ignored():
    connection = {"PK": "CONN#c1", "SK": "META", "kind": "connection", "workspace": WS}
    subscription = {"PK": f"CHAN#{WS}#general", "SK": "SUB#c1", "kind": "subscription"}
    head = {"PK": f"WS#{WS}#CHAN#general", "SK": "HEAD", "kind": "head", "lastId": ID1}
    changes = [
        change("1", "MODIFY", new=message_item(ID1), old=message_item(ID1)),
        change("2", "REMOVE", old=message_item(ID1)),
        typing_change("3", "bob", "REMOVE"),
        change("4", "MODIFY", new=state_item("presence", "bob"), old=state_item("presence", "bob")),
        change("5", "INSERT", new=connection),
        change("6", "INSERT", new=subscription),
        change("7", "MODIFY", new=head),
        change("8", "INSERT", new=None),
        change("9", "REMOVE", old=None),
        change("10", "INSERT", new={"PK": "x", "SK": "y"}),
    ]
    work = plan(changes)
    assert work.channels == {}
    assert sorted(work.ignored, key=int) == [str(i) for i in range(1, 11)]


def test_an_empty_batch_plans_nothing():
    work = plan([])
    assert (work.channels, work.ignored) == ({}, [])


# ---- retries -------------------------------------------------------------------------------------


def mixed_batch() -> list[Any]:
    return [
        message_insert("1", ID2),
        typing_change("2", "bob"),
        presence_join("3", "carol"),
        presence_leave("4", "dave"),
        message_insert("5", ID1, channel="random"),
    ]


def test_the_same_records_plan_the_same_events_so_retries_dedupe_by_id():
    first, second = plan(mixed_batch()), plan(mixed_batch())
    assert {k: [e.encoded for e in v] for k, v in first.channels.items()} == {
        k: [e.encoded for e in v] for k, v in second.channels.items()
    }


def test_different_presence_records_get_different_event_ids():
    one = decoded(plan([presence_join("1", "bob")]).channels[GENERAL])[0]["id"]
    other = decoded(plan([presence_join("2", "bob")]).channels[GENERAL])[0]["id"]
    assert one != other


def test_event_ids_within_a_plan_are_unique():
    work = plan([*mixed_batch(), typing_change("6", "erin"), message_insert("7", ID3)])
    ids = [e["id"] for events in work.channels.values() for e in decoded(events)]
    assert len(ids) == len(set(ids))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["message", "typing", "join", "leave", "noise"]),
            st.sampled_from(["general", "random"]),
            st.sampled_from(["bob", "carol"]),
        ),
        max_size=30,
    )
)
def test_every_record_is_either_carried_by_an_event_or_ignored_exactly_once(specs):
    changes = []
    for n, (kind, channel, user) in enumerate(specs):
        seq = str(n)
        if kind == "message":
            changes.append(message_insert(seq, f"{17900000000000000 + n:017d}", channel=channel))
        elif kind == "typing":
            changes.append(typing_change(seq, user, channel=channel))
        elif kind == "join":
            changes.append(presence_join(seq, user, channel=channel))
        elif kind == "leave":
            changes.append(presence_leave(seq, user, channel=channel))
        else:
            changes.append(change(seq, "INSERT", new={"kind": "rate"}))
    work = plan(changes)
    carried = [s for events in work.channels.values() for e in events for s in e.sequences]
    assert sorted(carried + work.ignored, key=int) == [str(n) for n in range(len(specs))]


# ---- frames --------------------------------------------------------------------------------------


def planned(n: int, size: int = 10) -> list[PlannedEvent]:
    return [
        PlannedEvent(protocol.encode({"type": "typing", "id": f"e{i}", "pad": "x" * size}), [str(i)])
        for i in range(n)
    ]


def test_one_event_is_sent_as_itself():
    [event] = planned(1)
    assert frames_for([event]) == [(event.encoded, [event])]


def test_several_events_are_one_batch_frame_in_order():
    events = planned(3)
    [(data, carried)] = frames_for(events)
    assert carried == events
    assert json.loads(data) == {"type": "batch", "events": [json.loads(e.encoded) for e in events]}


def test_no_events_make_no_frames():
    assert frames_for([]) == []


def test_batches_are_split_to_stay_under_the_frame_limit():
    events = planned(10, size=30 * 1024)
    frames = frames_for(events)
    assert len(frames) > 1
    assert all(len(data.encode()) <= MAX_FRAME_BYTES for data, _ in frames)
    assert all(len(data.encode()) < 128 * 1024 for data, _ in frames)
    unpacked = []
    for data, carried in frames:
        body = json.loads(data)
        inner = body["events"] if body["type"] == "batch" else [body]
        assert inner == [json.loads(e.encoded) for e in carried]
        unpacked.extend(carried)
    assert unpacked == events


def test_a_batch_that_fills_the_budget_exactly_is_not_split():
    # Given two events whose batch frame, envelope and comma included, is exactly the budget
    envelope = len(protocol.batch_frame([]).encode())
    first = PlannedEvent(protocol.encode({"type": "typing", "id": "e0"}), ["0"])
    pad = MAX_FRAME_BYTES - envelope - len(first.encoded) - 1 - len('{"type":"typing","id":"e1","pad":""}')
    second = PlannedEvent(protocol.encode({"type": "typing", "id": "e1", "pad": "x" * pad}), ["1"])
    # When they are framed, Then they go as one batch of exactly the budget; one byte more splits them
    frames = frames_for([first, second])
    assert len(frames) == 1 and len(frames[0][0].encode()) == MAX_FRAME_BYTES
    third = PlannedEvent(protocol.encode({"type": "typing", "id": "e1", "pad": "x" * (pad + 1)}), ["1"])
    assert len(frames_for([first, third])) == 2


def test_a_split_chunk_of_one_event_is_sent_as_itself():
    events = planned(2, size=MAX_FRAME_BYTES - 1000)
    frames = frames_for(events)
    assert frames == [(events[0].encoded, [events[0]]), (events[1].encoded, [events[1]])]


def test_multibyte_text_is_measured_in_bytes():
    events = [
        PlannedEvent(
            protocol.encode({"type": "typing", "id": f"e{i}", "pad": "\U0001f600" * 10_000}), [str(i)]
        )
        for i in range(5)
    ]  # 40 KB each in UTF-8 though 10,000 characters
    frames = frames_for(events)
    # Then each frame, batch envelope included, is within the budget: two 40 KB events per frame
    assert all(len(data.encode()) <= MAX_FRAME_BYTES for data, _ in frames)
    assert [len(carried) for _, carried in frames] == [2, 2, 1]


def test_a_presence_diff_too_large_for_one_frame_is_split_under_the_budget():
    # Given 200 users joining general in one batch, each id 1.4 KB on the wire (\u0001 is 6 bytes)
    users = [f"u{i:03d}" + "\x01" * 120 for i in range(200)]
    work = plan([presence_join(str(i), user) for i, user in enumerate(users)])
    # When it is planned, Then several presence_diff events carry every join once, each within the
    # budget, with distinct ids, and each carries every sequence (a failed part retries them all)
    events = work.channels[GENERAL]
    bodies = decoded(events)
    assert len(bodies) > 1 and all(b["type"] == "presence_diff" for b in bodies)
    assert all(len(e.encoded.encode()) <= MAX_FRAME_BYTES for e in events)
    assert [u["id"] for b in bodies for u in b["joins"]] == users
    assert len({b["id"] for b in bodies}) == len(bodies)
    assert all(sorted(e.sequences) == sorted(str(i) for i in range(200)) for e in events)
