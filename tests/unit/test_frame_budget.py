"""The one byte budget every frame Parley sends is built under: API Gateway refuses messages over 128 KB."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from parley import protocol
from parley.errors import ErrorCode
from parley.models import Channel, ChannelListing, Message, User

EMOJI = "\U0001f600"
API_GATEWAY_LIMIT = 128 * 1024


def messages(count: int, text: str = EMOJI * protocol.MAX_TEXT) -> list[Message]:
    return [
        Message(f"{17900000000000000 + i:017d}", "acme", "general", "ts", User("alice", "Alice"), text)
        for i in range(count)
    ]


def size(frame: dict[str, Any]) -> int:
    return len(protocol.encode(frame).encode("utf-8"))


def ids(wires: list[dict[str, Any]]) -> list[str]:
    return [w["id"] for w in wires]


# ---- fit: the measure ----------------------------------------------------------------------------


def test_fit_counts_each_item_and_the_commas_between_them_exactly():
    # Given three wire objects whose JSON list is known byte for byte
    items = [{"a": "x"}, {"a": EMOJI}, {"a": '"'}]
    listed = len(protocol.encode({"l": items}).encode()) - len('{"l":}') - 2  # without the brackets
    # When the room is exactly their bytes, Then all fit; one byte less and the last one kept drops
    assert protocol.fit(items, listed, keep="first") == 3
    assert protocol.fit(items, listed - 1, keep="first") == 2
    assert protocol.fit(items, listed - 1, keep="last") == 2


def test_encoded_size_counts_utf8_bytes_and_escapes_as_encode_writes_them():
    # Given a frame with an emoji (4 bytes), a quote (2 as \") and a control character (6 as \u0001)
    frame = {"t": EMOJI + '"' + "\x01"}
    # Then its size is that of encode's output in UTF-8
    assert protocol.encoded_size(frame) == len('{"t":""}') + 4 + 2 + 6 == size(frame)


# ---- joined ----------------------------------------------------------------------------------------


def test_a_recovery_too_large_for_one_frame_keeps_the_newest_messages_and_is_not_recovered():
    # Given 14 missed messages of 4,000 emoji each (about 226 KB as one frame)
    missed = messages(14)
    uncut = protocol.joined("general", missed, True, [], presence_more=False, budget=10**9)
    assert size(uncut) > API_GATEWAY_LIMIT
    # When `joined` answers a join with `since`
    frame = protocol.joined("general", missed, True, [], presence_more=False, recovering=True)
    # Then it is within the budget, holds the newest messages in order, and says recovered: false
    assert size(frame) <= protocol.FRAME_BUDGET
    kept = ids(frame["messages"])
    assert kept == [m.id for m in missed[-len(kept) :]] and 0 < len(kept) < 14
    assert frame["recovered"] is False


def test_a_join_without_since_cut_to_the_budget_stays_recovered():
    # Given a channel whose last messages are too large for one frame
    recent = messages(14)
    # When `joined` answers a join without `since` (nothing was missed: older ones come from history)
    frame = protocol.joined("general", recent, True, [], presence_more=False)
    # Then it holds the newest that fit and recovered stays true
    assert size(frame) <= protocol.FRAME_BUDGET and len(frame["messages"]) < 14
    assert frame["recovered"] is True


def test_a_joined_that_fits_is_not_cut():
    # Given a few small messages and users
    frame = protocol.joined(
        "general", messages(3, "hi"), True, [User("bob", "Bob")], presence_more=False, recovering=True
    )
    # Then nothing is left out and no flag changes
    assert len(frame["messages"]) == 3 and frame["recovered"] is True
    assert frame["presence"] == [{"id": "bob", "name": "Bob"}] and frame["presenceMore"] is False


def test_joined_presence_takes_at_most_its_share_and_then_says_more_are_present():
    # Given 101 users with the longest ids and names, in 4-byte characters (about 92 KB of users)
    users = [User(f"{i:03d}" + EMOJI * 125, EMOJI * 100) for i in range(101)]
    # When `joined` lists them next to large messages
    frame = protocol.joined("general", messages(14), True, users, presence_more=False)
    # Then the first users fit in their share, presenceMore is true, and messages still fit in the rest
    assert size(frame) <= protocol.FRAME_BUDGET
    shown = frame["presence"]
    assert shown == [protocol.user_wire(u) for u in users[: len(shown)]] and len(shown) < 101
    assert protocol.encoded_size(shown) <= protocol.JOIN_PRESENCE_BUDGET
    assert frame["presenceMore"] is True and frame["messages"]


# ---- history, presence, channels ----------------------------------------------------------------


def test_history_drops_the_oldest_messages_to_fit_and_says_there_are_more():
    # Given a page of 50 large messages that the store says ends the channel (no older ones)
    page = messages(50)
    # When `history` answers
    frame = protocol.history("general", page, False)
    # Then the newest fit, in order, and hasMore is true: the client pages on from the oldest it got
    kept = ids(frame["messages"])
    assert size(frame) <= protocol.FRAME_BUDGET and kept == [m.id for m in page[-len(kept) :]]
    assert frame["hasMore"] is True


def test_a_history_page_that_fits_keeps_the_stores_has_more():
    assert protocol.history("general", messages(2, "hi"), False)["hasMore"] is False
    assert protocol.history("general", messages(2, "hi"), True)["hasMore"] is True


def test_a_presence_page_cut_to_the_budget_continues_after_the_last_user_listed():
    # Given 100 present users of about 1.4 KB each on the wire (control characters take 6 bytes as
    # \u0001, and ids and names may hold them), the store saying no more follow
    users = [User(f"{i:03d}" + "\x01" * 125, "\x01" * 100) for i in range(100)]
    # When `presence` answers
    frame = protocol.presence("general", users, False)
    # Then the first users fit, and `next` is the last one listed
    shown = frame["users"]
    assert size(frame) <= protocol.FRAME_BUDGET and 0 < len(shown) < 100
    assert shown == [protocol.user_wire(u) for u in users[: len(shown)]]
    assert frame["next"] == shown[-1]["id"]


def test_the_channel_list_is_paged_under_the_budget_with_a_next_cursor():
    # Given 2,000 channels with the longest names (about 220 KB as one list)
    names = sorted(f"{i:04d}" + "x" * 76 for i in range(2000))
    listings = [ChannelListing(Channel("acme", n, False, ""), False) for n in names]
    # When `channels` answers, and again from each `next`
    pages = []
    remaining = listings
    while True:
        frame = protocol.channels(remaining)
        pages.append(frame)
        if frame["next"] is None:
            break
        remaining = [item for item in remaining if item.channel.id > frame["next"]]
    # Then every page fits, each cursor is its last name, and together they list every channel once
    assert len(pages) > 1 and all(size(p) <= protocol.FRAME_BUDGET for p in pages)
    assert all(p["next"] == p["channels"][-1]["name"] for p in pages[:-1])
    assert [c["name"] for p in pages for c in p["channels"]] == names


def test_a_small_presence_diff_is_one_event_with_its_own_id():
    events = protocol.presence_diff_events("p1", "general", [User("a", "A")], [User("b", "B")])
    assert events == [protocol.presence_diff_event("p1", "general", [User("a", "A")], [User("b", "B")])]


def test_a_large_presence_diff_is_split_into_parts_under_the_budget():
    # Given 120 joins and 60 leaves of users 1.4 KB each on the wire
    joins = [User(f"j{i:03d}" + "\x01" * 120, "\x01" * 100) for i in range(120)]
    leaves = [User(f"l{i:03d}" + "\x01" * 120, "\x01" * 100) for i in range(60)]
    # When the diff is built
    parts = protocol.presence_diff_events("p1", "general", joins, leaves)
    # Then each part fits, the parts have ids p1-1, p1-2, ... and together hold every change once
    assert len(parts) > 1 and all(size(p) <= protocol.FRAME_BUDGET for p in parts)
    assert [p["id"] for p in parts] == [f"p1-{n}" for n in range(1, len(parts) + 1)]
    assert [u["id"] for p in parts for u in p["joins"]] == [u.id for u in joins]
    assert [u["id"] for p in parts for u in p["leaves"]] == [u.id for u in leaves]


def test_an_error_message_is_clipped_so_the_error_frame_fits():
    # Given a message far longer than any Parley writes
    frame = protocol.error(ErrorCode.BAD_REQUEST, EMOJI * 100_000, request_id="r")
    # Then the error frame stays small
    assert len(frame["message"]) == protocol.ERROR_MESSAGE_MAX and size(frame) <= protocol.FRAME_BUDGET


# ---- property: cut to fit, and no more than needed -------------------------------------------------


@given(
    st.lists(st.integers(min_value=1, max_value=protocol.MAX_TEXT), min_size=0, max_size=40),
    st.sampled_from(["x", EMOJI, "\x01", '"', "\u00e9"]),
    st.booleans(),
)
def test_history_is_the_longest_suffix_of_the_page_within_the_budget(lengths, char, has_more):
    # Given a page of messages of any sizes within the text limit (escapes included)
    page = [
        Message(f"{17900000000000000 + i:017d}", "acme", "general", "ts", User("a", "A"), char * n)
        for i, n in enumerate(lengths)
    ]
    # When `history` answers
    frame = protocol.history("general", page, has_more)
    kept = len(frame["messages"])
    # Then it fits, keeps the newest, would not fit with one more, and says hasMore when it cut
    assert size(frame) <= protocol.FRAME_BUDGET
    assert ids(frame["messages"]) == [m.id for m in page[len(page) - kept :]]
    if kept < len(page):
        bigger = {**frame, "messages": [protocol.message_wire(page[-kept - 1]), *frame["messages"]]}
        assert size(bigger) > protocol.FRAME_BUDGET
    assert frame["hasMore"] is (has_more or kept < len(page))
    assert json.loads(protocol.encode(frame)) == frame
