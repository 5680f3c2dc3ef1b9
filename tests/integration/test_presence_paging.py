"""Presence in a large channel: `joined` lists the first 100 users, `presence` pages through the rest.

One crowd of 150 users, joined through the real handlers once for the module (it takes a few seconds);
the tests only read it, or use channels of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parley import protocol
from tests.support.matrix import assert_error_frame, send, shared_parley, snapshot
from tests.support.world import all_pages

CROWD = [f"u{i:03d}" for i in range(150)]  # ids sort as the numbers do


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    # one viewer pages through crowds as fast as the tests run: the limits are not what is tested here
    limits = {
        "ACTION_RATE_LIMITS": "presence=100000/1000,join=100000/1000",
        "MAX_CONNECTIONS_PER_USER": "1000",
    }
    with shared_parley(limits) as harness:
        for user in CROWD:
            client = harness.connect(user, "big", name=user.upper())
            assert client.send({"action": "join", "channel": "general"})["type"] == "joined"
        yield harness


def pages(client: Any, channel: str, *, after: str | None = None, limit: int | None = None) -> list[Any]:
    """Every `presence` reply from `after` on, following `next` until it is null."""
    replies = []
    while True:
        frame: dict[str, Any] = {"action": "presence", "channel": channel}
        if after is not None:
            frame["after"] = after
        if limit is not None:
            frame["limit"] = limit
        reply = client.send(frame)
        assert reply["type"] == "presence", reply
        replies.append(reply)
        after = reply["next"]
        if after is None:
            return replies
        assert len(replies) < 1000, "paging does not end"


def ids(users: list[dict[str, Any]]) -> list[str]:
    return [u["id"] for u in users]


def test_joined_lists_the_first_100_users_in_id_order_and_says_more_are_present(world: Any) -> None:
    # Given 150 users present in big's general
    # When a user whose id sorts among the first 100 joins
    reply = world.connect("u0005x", "big").send({"action": "join", "channel": "general"})
    # Then joined lists exactly the first 100 present users, in id order, and presenceMore is true
    assert ids(reply["presence"]) == present_ids(world, "big")[: protocol.JOIN_PRESENCE_MAX]
    assert "u0005x" in ids(reply["presence"])
    assert reply["presenceMore"] is True
    assert {"id": "u000", "name": "U000"} in reply["presence"]


def test_a_joiner_beyond_the_first_100_is_listed_first(world: Any) -> None:
    # Given 150 users present
    # When zed (whose id sorts after all of them) joins
    reply = world.connect("zed", "big", name="Zed").send({"action": "join", "channel": "general"})
    # Then joined lists zed first, then the first 100 users in id order: 101 in all
    assert reply["presence"][0] == {"id": "zed", "name": "Zed"}
    assert ids(reply["presence"][1:]) == present_ids(world, "big")[: protocol.JOIN_PRESENCE_MAX]
    assert reply["presenceMore"] is True


def test_paging_on_from_joined_lists_every_present_user_exactly_once(world: Any) -> None:
    # Given viewer joined big's general, with 150 users present (and others the tests above added)
    viewer = world.connect("viewer", "big")
    joined = viewer.send({"action": "join", "channel": "general"})
    present = present_ids(world, "big")
    assert len(present) > 150 and joined["presenceMore"] is True
    # When it pages on from the last user of joined until next is null
    replies = pages(viewer, "general", after=joined["presence"][-1]["id"])
    # Then joined and the pages together list every present user, once (the joiner, listed first
    # by joined as it sorts after the first 100, comes again in its page)
    listed = ids(joined["presence"]) + [i for r in replies for i in ids(r["users"])]
    assert listed[0] == "viewer" and listed[1:] == present
    assert replies[-1]["next"] is None


@pytest.mark.parametrize("limit", [1, 7, 100])
def test_pages_from_the_start_list_every_present_user_once_in_id_order(world: Any, limit: int) -> None:
    # Given a viewer joined to big's general
    viewer = world.connect("viewer", "big")
    viewer.send({"action": "join", "channel": "general"})
    present = present_ids(world, "big")
    # When it reads every page of `limit` users
    replies = pages(viewer, "general", limit=limit)
    # Then each page holds `limit` users (the last at most), names come along, and next is the last id
    listed = [i for r in replies for i in ids(r["users"])]
    assert listed == present
    assert all(len(r["users"]) == limit for r in replies[:-1]) and 1 <= len(replies[-1]["users"]) <= limit
    assert all(r["next"] == r["users"][-1]["id"] for r in replies[:-1])
    names = {u["id"]: u["name"] for r in replies for u in r["users"]}
    assert all(names[user] == user.upper() for user in CROWD)


def test_a_page_ending_exactly_at_the_last_user_has_no_next(world: Any) -> None:
    # Given 150 users present and a viewer
    viewer = world.connect("viewer", "big")
    viewer.send({"action": "join", "channel": "general"})
    present = present_ids(world, "big")
    # When it asks for exactly the users after the tenth-to-last one
    reply = viewer.send({"action": "presence", "channel": "general", "after": present[-11], "limit": 10})
    # Then it gets the last ten, and next is null: there is no empty page to fetch
    assert ids(reply["users"]) == present[-10:]
    assert reply["next"] is None


def test_a_cursor_naming_no_present_user_pages_on_from_where_it_would_sort(world: Any) -> None:
    viewer = world.connect("viewer", "big")
    viewer.send({"action": "join", "channel": "general"})
    reply = viewer.send({"action": "presence", "channel": "general", "after": "u0495", "limit": 3})
    assert ids(reply["users"]) == ["u050", "u051", "u052"]


def test_expired_presence_is_not_listed_and_does_not_cut_pages_short(world: Any) -> None:
    # Given ten users joined a channel of their own, and every other one left long ago (expired
    # presence that neither the timer nor TTL has deleted yet)
    clients = {}
    for i in range(10):
        clients[i] = world.connect(f"p{i}", "fading")
        clients[i].send({"action": "join", "channel": "general"})
    for i in range(1, 10, 2):
        clients[i].send({"action": "leave", "channel": "general"})
    world.timers.scheduled.clear()
    world.clock.advance(6_000)
    assert len(_presence_items(world, "fading")) == 10
    # When p0 reads presence in pages of two, and joins again
    replies = pages(clients[0], "general", limit=2)
    rejoined = clients[0].send({"action": "join", "channel": "general"})
    # Then only the five still present are listed, in full pages
    assert [ids(r["users"]) for r in replies] == [["p0", "p2"], ["p4", "p6"], ["p8"]]
    assert ids(rejoined["presence"]) == ["p0", "p2", "p4", "p6", "p8"]
    assert rejoined["presenceMore"] is False


def test_a_small_channel_lists_everyone_in_joined_with_no_more(world: Any) -> None:
    alice, bob = world.connect("alice", "small"), world.connect("bob", "small")
    alice.send({"action": "join", "channel": "general"})
    reply = bob.send({"action": "join", "channel": "general"})
    assert sorted(ids(reply["presence"])) == ["alice", "bob"] and reply["presenceMore"] is False
    assert bob.send({"action": "presence", "channel": "general"}) == {
        "type": "presence",
        "channel": "general",
        "users": [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}],
        "next": None,
    }


@pytest.mark.parametrize("left", [False, True], ids=["never joined", "joined then left"])
def test_presence_of_a_channel_not_joined_on_this_connection_is_not_joined(world: Any, left: bool) -> None:
    # Given mallory's connection never joined big's general, or left it
    mallory = world.connect("mallory", "big")
    if left:
        mallory.send({"action": "join", "channel": "general"})
        mallory.send({"action": "leave", "channel": "general"})
    before = snapshot(world.aws.dynamodb)
    # When she asks who is present
    request_id, reply = send(mallory, {"action": "presence", "channel": "general"})
    # Then she is refused, as for history, and nothing is written
    assert_error_frame(reply, code="not_joined", request_id=request_id, action="presence")
    assert snapshot(world.aws.dynamodb) == before


def present_ids(world: Any, workspace: str) -> list[str]:
    """The ids of the users present in the workspace's general now, in id order."""
    now_s = world.clock.now_ms() // 1000
    return sorted(str(i["userId"]) for i in _presence_items(world, workspace) if i["expiresAt"] > now_s)


def _presence_items(world: Any, workspace: str) -> list[dict[str, Any]]:
    """The channel's stored presence items, expired or not (read directly, not through Parley)."""
    table = world.aws.dynamodb.Table("StateTable")
    key = {":pk": f"CHAN#{workspace}#general", ":sk": "PRES#"}
    return all_pages(
        table.query, KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)", ExpressionAttributeValues=key
    )
