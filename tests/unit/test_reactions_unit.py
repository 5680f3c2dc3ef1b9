"""Reactions without AWS: the name rule, the use case on the in-memory store, fan-out planning of the
counts item's records, and the byte budget of messages that carry the most reactions allowed."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from parley import protocol, reacting
from parley.errors import NotFound, QuotaExceeded, RateLimited
from parley.fanout import StreamChange, plan
from parley.models import Caller, Message, ReactionSummary, User
from parley.reaction_names import is_emoji, reaction_name_problem
from tests.support.memory_store import MemoryStore

ALICE, BOB = User("alice", "Alice"), User("bob", "Bob")
WS = "acme"
ID1, ID2 = "17900000000000001", "17900000000000002"

# ---- names ---------------------------------------------------------------------------------------

EMOJI = ["👍", "👍🏽", "❤️", "❤", "🇫🇷", "1️⃣", "#️⃣", "👨‍👩‍👧", "🏳️‍🌈", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "©", "🫠"]
NOT_EMOJI = ["", "a", "1", "#", "👍👍", "👍a", "a👍", "🇫", "🇫🇷🇩🇪", "🏽", "\u200d", "\u20e3",
             "❤\ufe0e", "→", "中", "👍\n", " 👍", "\x00", "\u202e👍"]  # fmt: skip


@pytest.mark.parametrize("name", EMOJI)
def test_one_emoji_is_a_reaction_name(name: str) -> None:
    assert is_emoji(name) and reaction_name_problem(name) is None


@pytest.mark.parametrize("name", NOT_EMOJI)
def test_text_several_emoji_and_emoji_parts_are_not_one_emoji(name: str) -> None:
    assert not is_emoji(name)


@pytest.mark.parametrize("name", ["+1", "-1", "thumbs_up", "a", "1", "x" * 32])
def test_short_names_are_reaction_names(name: str) -> None:
    assert reaction_name_problem(name) is None


@pytest.mark.parametrize("name", ["x" * 33, "Thumbs", "thumbs up", ":tada:", "ok!", "é", "#", "a\n"])
def test_other_text_is_no_reaction_name(name: str) -> None:
    assert reaction_name_problem(name) is not None


# ---- the use case on the in-memory store ---------------------------------------------------------


def _world() -> tuple[MemoryStore, Message]:
    store = MemoryStore()
    message = store.append_message(Message(ID1, WS, "general", "ts", ALICE, "hi"))
    return store, message


def _react(
    store: MemoryStore, user: User, name: str, *, remove: bool = False, rate: Any = None
) -> dict[str, Any]:
    caller = Caller("c1=", user, WS, 2_000_000_000)
    body = {"action": "react", "channel": "general", "messageId": ID1, "name": name, "remove": remove}
    frame = protocol.parse_frame(json.dumps(body), protocol.ReactFrame)
    return reacting.react(store, caller, frame, rate or (lambda: None))


def test_the_rate_is_spent_only_when_something_is_written() -> None:
    store, _ = _world()
    spent: list[int] = []
    _react(store, BOB, "+1", rate=lambda: spent.append(1))
    _react(store, BOB, "+1", rate=lambda: spent.append(1))  # already so
    _react(store, ALICE, "+1", remove=True, rate=lambda: spent.append(1))  # never made
    assert spent == [1]


def test_a_refused_rate_writes_nothing() -> None:
    store, _ = _world()

    def refuse() -> None:
        raise RateLimited(100, "'react' requests")

    with pytest.raises(RateLimited):
        _react(store, BOB, "+1", rate=refuse)
    assert store.reactions == {} and store.reacted == {}


def test_a_missing_message_is_not_found_for_adding_and_removing() -> None:
    store = MemoryStore()
    for remove in (False, True):
        with pytest.raises(NotFound):
            _react(store, BOB, "+1", remove=remove)


def test_the_bounds_are_refused_before_the_rate() -> None:
    store, _ = _world()
    for i in range(protocol.MAX_REACTIONS_PER_USER):
        _react(store, BOB, f"n{i}")
    with pytest.raises(QuotaExceeded, match="20 reactions of yours"):
        _react(store, BOB, "one-more", rate=lambda: pytest.fail("rate spent on a refusal"))


def test_a_lost_race_is_read_again_and_decided_anew() -> None:
    # Given a store whose first write finds the state moved (another writer came first)
    store, _ = _world()
    real = store.apply_reaction
    calls: list[int] = []

    def racing(change: Any, seen: Any, **bounds: int) -> bool:
        calls.append(1)
        if len(calls) == 1:
            real(replace(change, user=ALICE), seen, **bounds)  # alice's identical reaction lands first
            return False
        return real(change, seen, **bounds)

    store.apply_reaction = racing  # type: ignore[method-assign]
    # When bob reacts, Then his reaction is written on the second try and both are counted
    assert _react(store, BOB, "+1")["changed"] is True
    assert store.reactions[(WS, "general", ID1)] == ({"+1": 2}, 2)


def test_with_reactions_reads_nothing_for_an_empty_page_and_attaches_summaries() -> None:
    store, message = _world()
    assert reacting.with_reactions(store, WS, "general", "bob", []) == []
    _react(store, BOB, "+1")
    [shown] = reacting.with_reactions(store, WS, "general", "bob", [message])
    assert shown.reactions == ReactionSummary((("+1", 1),), frozenset({"+1"}), 1)


# ---- fan-out planning ----------------------------------------------------------------------------


def _counts_image(
    version: int, name: str, count: int, user: str = "bob", added: bool = True
) -> dict[str, Any]:
    image: dict[str, Any] = {
        "PK": f"WS#{WS}#CHAN#general",
        "SK": f"MRC#{ID1}",
        "kind": "reactions",
        "workspace": WS,
        "channel": "general",
        "messageId": ID1,
        "v": version,
        "distinct": 1,
        "lastName": name,
        "lastUserId": user,
        "lastUserName": user.title(),
        "lastAdded": added,
    }
    if count:
        image[f"c#{name}"] = count
    return image


def _change(seq: str, image: dict[str, Any], event_name: str = "MODIFY") -> StreamChange:
    return StreamChange(seq, f"e{seq}", event_name, image, None)


def test_a_counts_record_becomes_a_reaction_event_with_count_version_and_a_stable_id() -> None:
    work = plan([_change("1", _counts_image(3, "👍", 2), "INSERT")])
    [event] = work.channels[(WS, "general")]
    assert json.loads(event.encoded) == {
        "type": "reaction",
        "id": f"r{ID1}.3",
        "channel": "general",
        "messageId": ID1,
        "name": "👍",
        "count": 2,
        "version": 3,
        "user": {"id": "bob", "name": "Bob"},
        "added": True,
    }


def test_a_removed_last_reaction_fans_out_a_count_of_zero() -> None:
    work = plan([_change("1", _counts_image(2, "eyes", 0, added=False))])
    [event] = work.channels[(WS, "general")]
    assert (json.loads(event.encoded)["count"], json.loads(event.encoded)["added"]) == (0, False)


def test_a_batchs_reactions_come_after_their_message_and_in_version_order() -> None:
    message = {
        "PK": f"WS#{WS}#CHAN#general", "SK": f"MSG#{ID1}", "kind": "message", "id": ID1, "workspace": WS,
        "channel": "general", "ts": "ts", "userId": "alice", "userName": "Alice", "text": "hi",
    }  # fmt: skip
    later = dict(message, SK=f"MSG#{ID2}", id=ID2)
    work = plan(
        [
            _change("1", _counts_image(11, "+1", 2)),
            _change("2", _counts_image(10, "+1", 1)),
            _change("3", later, "INSERT"),
            _change("4", message, "INSERT"),
        ]
    )
    kinds = [
        (e["type"], e.get("version"))
        for e in map(json.loads, (p.encoded for p in work.channels[(WS, "general")]))
    ]
    assert kinds == [("message", None), ("reaction", 10), ("reaction", 11), ("message", None)]


def test_a_users_reacted_item_is_not_fanned_out() -> None:
    item = {"PK": f"WS#{WS}#CHAN#general", "SK": f"MRU#bob#{ID1}", "kind": "reacted", "names": {"+1"}}
    assert plan([_change("1", item, "INSERT")]).ignored == ["1"]


# ---- the byte budget -----------------------------------------------------------------------------


def test_a_history_of_messages_with_the_most_reactions_stays_within_the_budget() -> None:
    # Given 100 messages of the longest text, each with 50 tag-flag reactions of great counts
    names = ["🏴󠁧󠁢󠁥󠁮󠁧󠁿"] + [f"name-{i:02d}-{'x' * 22}" for i in range(protocol.MAX_REACTIONS_PER_MESSAGE - 1)]
    summary = ReactionSummary(tuple((n, 10**9) for n in names), frozenset(names), 10**9)
    text = "\U0001f600" * protocol.MAX_TEXT
    page = [
        Message(f"{17900000000000000 + i:017d}", WS, "general", "ts", ALICE, text, reactions=summary)
        for i in range(100)
    ]
    # When history and joined are built, Then each is within the budget, newest kept, and cut says so
    for frame in (
        protocol.history("general", page, False),
        protocol.joined("general", page, True, [ALICE], presence_more=False, recovering=True),
    ):
        assert len(protocol.encode(frame).encode("utf-8")) <= protocol.FRAME_BUDGET
        assert frame["messages"][-1]["id"] == page[-1].id
        assert frame["messages"][-1]["reactions"][0]["count"] == 10**9
    assert protocol.history("general", page, False)["hasMore"] is True
