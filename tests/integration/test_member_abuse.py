"""A member who floods or hoards, through the real handlers under moto: every action has a per-user rate
limit, and channels, invites, connections and joined channels have quotas. Limits are set small here
(through the environment, as template.yaml's parameters set them) so that a few frames reach them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import events
from tests.support.handlers import LambdaContext, load
from tests.support.matrix import assert_error_frame, send, snapshot
from tests.support.world import set_lambda_env

BURST = 2
LIMITS = {
    "RATE_BURST": str(BURST),
    "ACTION_RATE_LIMITS": ",".join(
        f"{action}={BURST}/0.01"
        for action in (
            "create_channel",
            "invite",
            "join",
            "leave",
            "typing",
            "history",
            "presence",
            "channels",
            "heartbeat",
        )
    ),
    "MAX_CHANNELS_PER_WORKSPACE": "6",
    "MAX_CHANNELS_PER_CREATOR": "5",
    "MAX_INVITES_PER_HOUR": "5",
    "MAX_CONNECTIONS_PER_USER": "3",
    "MAX_CHANNELS_PER_CONNECTION": "4",
}
SPACING_MS = 200_000  # refills every bucket above (0.01 per second) to its burst


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = set_lambda_env(monkeypatch)
    for key, value in LIMITS.items():
        monkeypatch.setenv(key, value)
    return env | LIMITS


def frames_of(action: str) -> list[dict[str, Any]]:
    """Frames of `action` that each succeed for alice (joined to general), one per attempt."""
    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "create_channel": lambda n: {"action": "create_channel", "name": f"room-{n}"},
        "invite": lambda n: {"action": "invite", "channel": "general", "user": f"guest{n}"},
        "join": lambda n: {"action": "join", "channel": "general"},
        "leave": lambda n: {"action": "leave", "channel": "general", "membership": True},
        "message": lambda n: {"action": "message", "channel": "general", "text": f"hi {n}"},
        "typing": lambda n: {"action": "typing", "channel": "general"},
        "history": lambda n: {"action": "history", "channel": "general"},
        "presence": lambda n: {"action": "presence", "channel": "general"},
        "channels": lambda n: {"action": "channels"},
        "heartbeat": lambda n: {"action": "heartbeat"},
    }
    return [makers[action](n) for n in range(BURST + 1)]


def alice_in_general(parley: Any) -> Any:
    alice = parley.connect("alice")
    assert alice.send({"action": "join", "channel": "general"})["type"] == "joined"
    parley.clock.advance(SPACING_MS)  # the join's token is back
    return alice


def messages_table(parley: Any) -> list[dict[str, Any]]:
    return snapshot(parley.aws.dynamodb)["MessagesTable"]


# ---- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    ["create_channel", "invite", "join", "leave", "message", "typing", "history", "presence", "channels",
     "heartbeat"],
)  # fmt: skip
def test_every_action_is_rate_limited_per_user_and_a_refusal_writes_nothing(parley: Any, action: str) -> None:
    # Given alice, joined to general, whose `action` allows a burst of 2
    alice = alice_in_general(parley)
    *allowed, extra = frames_of(action)
    # When she sends the burst, then one more at once
    for frame in allowed:
        _, reply = send(alice, frame)
        assert reply is None or reply["type"] != "error", reply
    before = snapshot(parley.aws.dynamodb)
    request_id, reply = send(alice, extra)
    # Then the extra one is rate_limited with a retry hint, and nothing at all was written
    assert_error_frame_with_retry(reply, request_id, action)
    assert snapshot(parley.aws.dynamodb) == before


def assert_error_frame_with_retry(reply: dict[str, Any] | None, request_id: str, action: str) -> None:
    assert reply is not None and isinstance(reply.get("retryAfterMs"), int) and reply["retryAfterMs"] > 0
    retry = reply.pop("retryAfterMs")
    assert_error_frame(reply, code="rate_limited", request_id=request_id, action=action)
    assert str(retry) in reply["message"]


def test_the_limit_is_per_user_across_connections_and_per_action(parley: Any) -> None:
    # Given alice spent her history burst on her laptop
    laptop = alice_in_general(parley)
    for _ in range(BURST):
        assert laptop.send({"action": "history", "channel": "general"})["type"] == "history"
    phone = parley.connect("alice")
    phone.send({"action": "join", "channel": "general"})
    # When her phone asks for history, and for presence
    history = phone.send({"action": "history", "channel": "general"})
    presence = phone.send({"action": "presence", "channel": "general"})
    # Then history is refused on the phone too, but presence (another bucket) is served, and bob is
    bob = parley.connect("bob")
    bob.send({"action": "join", "channel": "general"})
    assert history["code"] == "rate_limited"
    assert presence["type"] == "presence"
    assert bob.send({"action": "history", "channel": "general"})["type"] == "history"


def test_a_rate_limited_action_is_served_again_after_retry_after(parley: Any) -> None:
    # Given alice was refused a heartbeat
    alice = alice_in_general(parley)
    for _ in range(BURST):
        alice.send({"action": "heartbeat"})
    refused = alice.send({"action": "heartbeat"})
    assert refused["code"] == "rate_limited"
    # When she waits as told
    parley.clock.advance(refused["retryAfterMs"])
    # Then she is served
    assert alice.send({"action": "heartbeat"})["type"] == "heartbeat"


# ---- quotas --------------------------------------------------------------------------------------


def create(parley: Any, client: Any, name: str, **extra: Any) -> dict[str, Any]:
    parley.clock.advance(SPACING_MS)
    reply: dict[str, Any] = client.send({"action": "create_channel", "name": name, **extra})
    return reply


def test_a_creator_cannot_create_more_channels_than_the_creator_quota(parley: Any) -> None:
    # Given alice created her 5 channels
    alice = parley.connect("alice")
    for n in range(5):
        assert create(parley, alice, f"a{n}")["type"] == "channel_created"
    before = messages_table(parley)
    # When she creates a sixth
    reply = create(parley, alice, "a5")
    # Then it is quota_exceeded and no channel, membership or count was written
    assert reply["code"] == "quota_exceeded" and "5" in reply["message"]
    assert messages_table(parley) == before


def test_a_workspace_cannot_hold_more_channels_than_its_quota(parley: Any) -> None:
    # Given alice created 5 channels and bob 1: the workspace's 6
    alice, bob = parley.connect("alice"), parley.connect("bob")
    for n in range(5):
        create(parley, alice, f"a{n}")
    assert create(parley, bob, "b0")["type"] == "channel_created"
    # When bob, who has created only one, creates another
    reply = create(parley, bob, "b1")
    # Then the workspace's quota refuses it; another workspace is not affected
    assert reply["code"] == "quota_exceeded" and "workspace" in reply["message"]
    assert create(parley, parley.connect("carol", "other"), "b1")["type"] == "channel_created"


def test_a_taken_name_answers_conflict_and_counts_nothing(parley: Any) -> None:
    # Given alice created room, then tried it again four times
    alice = parley.connect("alice")
    create(parley, alice, "room")
    for _ in range(4):
        assert create(parley, alice, "room")["code"] == "conflict"
    # When she creates four other channels (her quota is 5)
    replies = [create(parley, alice, f"r{n}")["type"] for n in range(4)]
    # Then all are created: refused creates did not count
    assert replies == ["channel_created"] * 4


def test_the_quota_is_the_write_condition_so_a_concurrent_creator_cannot_overrun_it(parley: Any) -> None:
    # Given alice created one channel, then other writers (another container) took the workspace's
    # count to its quota of 6 behind her back
    alice = parley.connect("alice")
    create(parley, alice, "mine")
    parley.aws.dynamodb.Table("MessagesTable").update_item(
        Key={"PK": "WS#acme", "SK": "META"},
        UpdateExpression="SET channelCount = :n",
        ExpressionAttributeValues={":n": 6},
    )
    # When she creates another (she has used 1 of her own 5)
    reply = create(parley, alice, "another")
    # Then the transaction's condition refuses it: the count is checked where it is written (DynamoDB
    # serializes transactions; moto, in-process, does not, so racing threads cannot show it here)
    assert reply["code"] == "quota_exceeded" and "workspace" in reply["message"]
    assert "Item" not in parley.aws.dynamodb.Table("MessagesTable").get_item(
        Key={"PK": "WS#acme", "SK": "CHAN#another"}
    )


def test_invites_per_hour_are_limited_and_the_next_hour_opens_again(parley: Any) -> None:
    # Given alice sent her 5 invites of this hour
    parley.clock.now = (parley.clock.now_ms() // 3_600_000 + 1) * 3_600_000  # the top of an hour
    alice = parley.connect("alice", expires_in_s=4 * 3600)  # her token outlives the next hour
    alice.send({"action": "join", "channel": "general"})

    def invite(user: str) -> dict[str, Any]:
        parley.clock.advance(100_000)  # one invite token back (0.01 a second), well within the hour
        return send(alice, {"action": "invite", "channel": "general", "user": user})[1] or {}

    for n in range(5):
        assert invite(f"guest{n}")["type"] == "invited"
    before = messages_table(parley)
    # When she sends a sixth, and again in the next hour
    refused = invite("guest5")
    parley.clock.now = (parley.clock.now_ms() // 3_600_000 + 1) * 3_600_000
    # Then the sixth is quota_exceeded with no membership written; the next hour's is served
    assert refused["code"] == "quota_exceeded", refused
    assert messages_table(parley) == before
    assert invite("guest5")["type"] == "invited"


def connect_status(parley: Any, user: str, connection_id: str) -> int:
    auth = events.authorizer_context(user, "acme", exp=parley.clock.now_ms() // 1000 + 3600)
    response = load("connect").handler(
        events.connect_event(connection_id, auth, parley.clock.now_ms()), LambdaContext()
    )
    return int(response["statusCode"])


def test_a_user_cannot_hold_more_connections_than_the_quota(parley: Any) -> None:
    # Given alice holds her 3 connections
    for n in range(3):
        assert connect_status(parley, "alice", f"alice-{n}=") == 200
    # When she opens a fourth, bob opens one, and after she closes one she tries again
    fourth = connect_status(parley, "alice", "alice-3=")
    bob = connect_status(parley, "bob", "bob-0=")
    load("disconnect").handler(
        events.disconnect_event("alice-0=", {}, parley.clock.now_ms()), LambdaContext()
    )
    again = connect_status(parley, "alice", "alice-4=")
    # Then the fourth handshake is refused (403, no connection item), bob's is not, a freed slot is reused
    assert (fourth, bob, again) == (403, 200, 200)
    table = parley.aws.dynamodb.Table("StateTable")
    assert "Item" not in table.get_item(Key={"PK": "CONN#alice-3=", "SK": "META"})


def test_a_connection_that_vanished_gives_its_slot_back_when_the_sweeper_drops_it(parley: Any) -> None:
    # Given alice's 3 connections, one of which stopped heartbeating long ago
    for n in range(3):
        connect_status(parley, "alice", f"alice-{n}=")
    parley.aws.dynamodb.Table("StateTable").update_item(
        Key={"PK": "CONN#alice-0=", "SK": "META"},
        UpdateExpression="SET dueAt = :past",
        ExpressionAttributeValues={":past": 1},
    )
    # When the sweeper runs
    load("sweeper").handler({"source": "aws.events"}, LambdaContext(function_name="parley-sweeper"))
    # Then she may connect again
    assert connect_status(parley, "alice", "alice-3=") == 200


def test_a_connection_cannot_join_more_channels_than_the_quota(parley: Any) -> None:
    # Given alice's connection joined 4 channels
    alice = parley.connect("alice")
    for name in ("general", "random", "x1", "x2", "x3"):
        if name.startswith("x"):
            create(parley, alice, name)
    for name in ("general", "random", "x1", "x2"):
        parley.clock.advance(SPACING_MS)
        assert alice.send({"action": "join", "channel": name})["type"] == "joined"
    parley.clock.advance(SPACING_MS)
    before = snapshot(parley.aws.dynamodb)["StateTable"]
    # When she joins a fifth, re-joins one she has, then leaves one and joins the fifth
    request_id, fifth = send(alice, {"action": "join", "channel": "x3"})
    after_refusal = snapshot(parley.aws.dynamodb)["StateTable"]
    parley.clock.advance(SPACING_MS)
    again = alice.send({"action": "join", "channel": "general"})
    parley.clock.advance(SPACING_MS)
    alice.send({"action": "leave", "channel": "random"})
    parley.clock.advance(SPACING_MS)
    fifth_after_leave = alice.send({"action": "join", "channel": "x3"})
    # Then the fifth is quota_exceeded, no subscription written; a re-join and a join after a leave work
    assert_error_frame(fifth, code="quota_exceeded", request_id=request_id, action="join")
    subscriptions = [i for i in after_refusal if str(i["SK"]).startswith("SUB#")]
    assert subscriptions == [i for i in before if str(i["SK"]).startswith("SUB#")]
    assert again["type"] == "joined" and fifth_after_leave["type"] == "joined"
