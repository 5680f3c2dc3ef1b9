"""Who may do what, through the real handlers under moto: workspaces, private channels, identity, expiry."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.matrix import assert_error_frame, send, snapshot
from tests.support.template import action_routes

CHANNEL_ACTIONS = [
    "join",
    "invite",
    "message",
    "typing",
    "history",
    "presence",
    "react",
    "edit",
    "delete",
    "thread",
]
# a well-formed message id; reacting needs a joined channel before the message is even looked up
SOME_MESSAGE = "17900000000000001"
SOME_ID = SOME_MESSAGE  # well-formed: only authorization (or its absence) can refuse these


def frame_for(action: str, channel: str, **extra: Any) -> dict[str, Any]:
    """A well-formed frame of `action` on `channel`: only authorization can refuse it."""
    frames: dict[str, dict[str, Any]] = {
        "join": {"action": "join", "channel": channel},
        "leave": {"action": "leave", "channel": channel},
        "invite": {"action": "invite", "channel": channel, "user": "mallory"},
        "message": {"action": "message", "channel": channel, "text": "let me in", "clientMsgId": "x-1"},
        "typing": {"action": "typing", "channel": channel},
        "history": {"action": "history", "channel": channel},
        "presence": {"action": "presence", "channel": channel},
        "heartbeat": {"action": "heartbeat"},
        "create_channel": {"action": "create_channel", "name": "brand-new"},
        "channels": {"action": "channels"},
        "react": {"action": "react", "channel": channel, "messageId": SOME_MESSAGE, "name": "+1"},
        "edit": {"action": "edit", "channel": channel, "messageId": SOME_ID, "text": "changed"},
        "delete": {"action": "delete", "channel": channel, "messageId": SOME_ID},
        "thread": {"action": "thread", "channel": channel, "threadId": SOME_ID},
        "open_dm": {"action": "open_dm", "users": ["bob"]},
        "mark_read": {"action": "mark_read", "channel": channel, "messageId": "17900000000000001"},
    }
    return frames[action] | extra


def refused(parley: Any, client: Any, frame: dict[str, Any], code: str) -> None:
    """Send `frame`: assert the error frame with `code` and that no table changed."""
    before = snapshot(parley.aws.dynamodb)
    request_id, reply = send(client, frame)
    assert_error_frame(reply, code=code, request_id=request_id, action=frame["action"])
    assert snapshot(parley.aws.dynamodb) == before


class Party(tuple[Any, ...]):
    """A fixture's clients, and `id`: the id of the private channel it made (`name.<suffix>`)."""

    id: str

    def __new__(cls, clients: tuple[Any, ...], channel_id: str) -> Party:
        party = super().__new__(cls, clients)
        party.id = channel_id
        return party


def with_channel(frame: dict[str, Any], name: str, channel_id: str) -> dict[str, Any]:
    """`frame` addressing the private channel by its id where the parameters could only name it."""
    return {k: (channel_id if k == "channel" and v == name else v) for k, v in frame.items()}


# ---- another workspace ---------------------------------------------------------------------------

# join/invite look the channel up (not_found); message/typing/history/presence need a subscription
CROSS_WORKSPACE = {"join": "not_found", "invite": "not_found", "message": "not_joined",
                   "typing": "not_joined", "history": "not_joined", "presence": "not_joined",
                   "react": "not_joined",
                   "edit": "not_joined", "delete": "not_joined", "thread": "not_joined"}  # fmt: skip


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
@pytest.mark.parametrize(("action", "code"), CROSS_WORKSPACE.items())
def test_user_of_another_workspace_cannot_use_acme_channels(
    parley: Any, action: str, code: str, private: bool
) -> None:
    # Given alice created a channel in acme, and mallory is connected to workspace `other`
    alice = parley.connect("alice", "acme")
    created = alice.send({"action": "create_channel", "name": "acme-plans", "private": private})
    plans = created["channel"]["id"]  # a private channel's id is `acme-plans.<suffix>`
    assert alice.send({"action": "join", "channel": plans})["type"] == "joined"
    mallory = parley.connect("mallory", "other")
    # When mallory acts on acme-plans, by its id
    # Then she is refused as if it did not exist, and nothing is written
    refused(parley, mallory, frame_for(action, plans), code)


def test_same_channel_name_in_another_workspace_shows_none_of_acmes_messages(parley: Any) -> None:
    # Given alice posted in acme's general
    alice = parley.connect("alice", "acme")
    alice.send({"action": "join", "channel": "general"})
    alice.send({"action": "message", "channel": "general", "text": "acme only"})
    # When mallory of `other` joins her own workspace's general and asks for its history
    mallory = parley.connect("mallory", "other")
    joined = mallory.send({"action": "join", "channel": "general"})
    history = mallory.send({"action": "history", "channel": "general"})
    # Then neither shows acme's message
    assert joined is not None and joined["messages"] == []
    assert history is not None and history["messages"] == []
    # positive control: in acme the same history shows it
    own = alice.send({"action": "history", "channel": "general"})
    assert own is not None and [m["text"] for m in own["messages"]] == ["acme only"]


def test_message_in_another_workspace_is_not_fanned_out_to_acme(parley: Any) -> None:
    # Given alice (acme) and mallory (other) both joined a channel named general
    alice, mallory = parley.connect("alice", "acme"), parley.connect("mallory", "other")
    alice.send({"action": "join", "channel": "general"})
    mallory.send({"action": "join", "channel": "general"})
    parley.pump()
    # When mallory posts in her general and fan-out runs
    mallory.send({"action": "message", "channel": "general", "text": "hello from other"})
    parley.pump()
    # Then only mallory receives it
    assert [m["text"] for m in mallory.events_of("message")] == ["hello from other"]
    assert alice.events_of("message") == []
    # positive control: a message in acme's general does reach alice in the same set-up
    alice.send({"action": "message", "channel": "general", "text": "hello from acme"})
    parley.pump()
    assert [m["text"] for m in alice.events_of("message")] == ["hello from acme"]


# ---- private channels ----------------------------------------------------------------------------


@pytest.fixture
def hush(parley: Any) -> Party:
    """alice created the private channel `hush` and joined it; bob is connected to the same workspace."""
    alice = parley.connect("alice")
    created = alice.send({"action": "create_channel", "name": "hush", "private": True})
    assert created["type"] == "channel_created"
    assert created["channel"]["name"] == "hush" and created["channel"]["id"].startswith("hush.")
    alice.send({"action": "join", "channel": created["channel"]["id"]})
    return Party((alice, parley.connect("bob")), created["channel"]["id"])


def _listed(client: Any) -> dict[str, bool]:
    reply = client.send({"action": "channels"})
    return {c["id"]: c["member"] for c in reply["channels"]}


def test_private_channel_is_listed_for_its_creator(hush: Party) -> None:
    # Given alice created the private channel hush
    alice, _ = hush
    # When she lists channels
    listed = _listed(alice)
    # Then hush is there, as a member
    assert listed.get(hush.id) is True


def test_private_channel_is_invisible_in_a_non_members_channel_list(hush: Party) -> None:
    # Given alice created the private channel hush
    _, bob = hush
    # When bob lists channels
    listed = _listed(bob)
    # Then he sees the public channels only
    assert set(listed) == {"general", "random"}


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "join", "channel": "hush"},
        {"action": "join", "channel": "hush", "since": "00000000000000001"},
        {"action": "invite", "channel": "hush", "user": "bob"},
        {"action": "invite", "channel": "hush", "user": "carol"},
    ],
    ids=["join", "join with since", "invite himself", "invite someone else"],
)
def test_non_member_cannot_join_or_invite_to_a_private_channel(
    parley: Any, hush: Party, frame: dict[str, Any]
) -> None:
    # Given alice created the private channel hush and bob is not a member
    _, bob = hush
    # When bob tries to join it or invite to it, by its id
    # Then the answer is not_found (its existence is not revealed) and nothing is written
    refused(parley, bob, with_channel(frame, "hush", hush.id), "not_found")


@pytest.mark.parametrize("action", ["join", "invite"])
def test_private_channel_refusal_reads_exactly_like_a_missing_channel(hush: Party, action: str) -> None:
    # Given the private channel hush exists and the channel zzzz does not
    _, bob = hush
    # When bob acts on each
    _, private = send(bob, frame_for(action, hush.id))
    _, missing = send(bob, frame_for(action, "zzzz"))
    # Then the two answers differ only by the name (and request id)
    assert private is not None and missing is not None
    for frame in (private, missing):
        frame.pop("requestId")
    assert private == {
        k: (v.replace("zzzz", hush.id) if isinstance(v, str) else v) for k, v in missing.items()
    }


@pytest.mark.parametrize(
    "action", ["message", "typing", "history", "presence", "react", "edit", "delete", "thread"]
)
def test_non_member_cannot_use_a_private_channel(parley: Any, hush: Party, action: str) -> None:
    # Given the private channel hush, which bob cannot join
    _, bob = hush
    # When bob posts, types or reads there
    # Then he is refused (he never joined) and nothing is written
    refused(parley, bob, frame_for(action, hush.id), "not_joined")


def test_invited_user_can_join_a_private_channel(hush: Party) -> None:
    # Given alice invites bob to hush
    alice, bob = hush
    assert alice.send({"action": "invite", "channel": hush.id, "user": "bob"}) == {
        "type": "invited",
        "channel": hush.id,
        "user": "bob",
    }
    # When bob joins
    reply = bob.send({"action": "join", "channel": hush.id})
    # Then he is in
    assert reply is not None and reply["type"] == "joined" and reply["channel"] == hush.id


def test_invited_user_sees_the_private_channel_in_his_list(hush: Party) -> None:
    # Given alice invited bob to hush
    alice, bob = hush
    alice.send({"action": "invite", "channel": hush.id, "user": "bob"})
    # When bob lists channels
    listed = _listed(bob)
    # Then hush is there, as a member
    assert listed.get(hush.id) is True


def test_invite_for_another_user_does_not_open_the_channel_to_the_inviter_s_peers(
    hush: Party, parley: Any
) -> None:
    # Given alice invited carol (not bob) to hush
    alice, bob = hush
    alice.send({"action": "invite", "channel": hush.id, "user": "carol"})
    # When bob tries to join
    # Then he is still refused
    refused(parley, bob, {"action": "join", "channel": hush.id}, "not_found")


# ---- subscriptions belong to a connection --------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["message", "typing", "history", "presence", "react", "edit", "delete", "thread"]
)
def test_joining_on_one_connection_does_not_join_the_users_other_connection(parley: Any, action: str) -> None:
    # Given alice joined general on her laptop, and has a second connection (phone) that did not join
    laptop, phone = parley.connect("alice"), parley.connect("alice")
    laptop.send({"action": "join", "channel": "general"})
    # When the phone posts, types or reads in general
    # Then it is not_joined and nothing is written
    refused(parley, phone, frame_for(action, "general"), "not_joined")


@pytest.mark.parametrize(
    "action", ["message", "typing", "history", "presence", "react", "edit", "delete", "thread"]
)
def test_after_leave_the_connection_is_no_longer_joined(parley: Any, action: str) -> None:
    # Given alice joined general, then left it
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    alice.send({"action": "leave", "channel": "general"})
    # When she posts, types or reads there
    # Then it is not_joined and nothing is written
    refused(parley, alice, frame_for(action, "general"), "not_joined")


# ---- edits and deletes: whose message -----------------------------------------------------------


@pytest.fixture
def bobs_message(parley: Any) -> tuple[Any, Any, str]:
    """alice and bob joined general; bob posted a message (its id is the third item)."""
    alice, bob = parley.connect("alice"), parley.connect("bob")
    alice.send({"action": "join", "channel": "general"})
    bob.send({"action": "join", "channel": "general"})
    ack = bob.send({"action": "message", "channel": "general", "text": "bob's own"})
    assert ack is not None and ack["type"] == "ack"
    return alice, bob, ack["id"]


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_someone_elses_message_cannot_be_edited_or_deleted(
    parley: Any, bobs_message: tuple[Any, Any, str], action: str
) -> None:
    # Given bob's message in general, which alice has joined too
    alice, _, message_id = bobs_message
    # When alice edits or deletes it
    # Then she is forbidden and nothing is written
    refused(parley, alice, frame_for(action, "general", messageId=message_id), "forbidden")


@pytest.mark.parametrize("claim", [{"admin": True}, {"parley:admin": True}, {"role": "admin"}])
def test_an_admin_claim_in_the_frame_body_grants_nothing(
    parley: Any, bobs_message: tuple[Any, Any, str], claim: dict[str, Any]
) -> None:
    # Given bob's message, and alice, who is no admin, claims to be one in the frame
    alice, _, message_id = bobs_message
    # When she deletes bob's message with that claim
    # Then she is still forbidden: only the authorizer's context makes an admin
    refused(parley, alice, frame_for("delete", "general", messageId=message_id, **claim), "forbidden")


@pytest.mark.parametrize("value", [False, "false", "yes", 1, None])
def test_only_a_true_admin_context_makes_an_admin(
    parley: Any, bobs_message: tuple[Any, Any, str], value: Any
) -> None:
    # Given alice's authorizer context carries an admin value that is not true
    alice, _, message_id = bobs_message
    alice.auth["admin"] = value
    # When she deletes bob's message
    # Then she is forbidden
    refused(parley, alice, frame_for("delete", "general", messageId=message_id), "forbidden")


@pytest.mark.parametrize("value", [True, "true"])
def test_an_admin_context_may_delete_anyones_message_but_edit_none(
    parley: Any, bobs_message: tuple[Any, Any, str], value: Any
) -> None:
    # Given alice's authorizer context says admin (API Gateway may hand it back as a string)
    alice, _, message_id = bobs_message
    alice.auth["admin"] = value
    # When she edits, then deletes, bob's message
    # Then the edit is forbidden and the delete leaves a tombstone
    refused(parley, alice, frame_for("edit", "general", messageId=message_id), "forbidden")
    reply = alice.send(frame_for("delete", "general", messageId=message_id))
    assert reply is not None and reply["type"] == "deleted" and reply["messageId"] == message_id


def test_an_admin_of_another_workspace_cannot_delete_acme_messages(
    parley: Any, bobs_message: tuple[Any, Any, str]
) -> None:
    # Given bob's message in acme, and mallory, an admin of workspace other, joined her own general
    _, _, message_id = bobs_message
    mallory = parley.connect("mallory", "other")
    mallory.auth["admin"] = True
    mallory.send({"action": "join", "channel": "general"})
    # When she deletes by bob's message id
    # Then there is no such message in her workspace, and nothing is written
    refused(parley, mallory, frame_for("delete", "general", messageId=message_id), "not_found")


@pytest.mark.parametrize("action", ["edit", "delete", "thread"])
def test_a_non_member_cannot_touch_a_message_of_a_private_channel(
    parley: Any, hush: Party, action: str
) -> None:
    # Given alice posted in the private channel hush, and bob is no member
    alice, bob = hush
    ack = alice.send({"action": "message", "channel": hush.id, "text": "hush hush"})
    assert ack is not None and ack["type"] == "ack"
    bob.auth["admin"] = True  # not even as an admin
    field = "threadId" if action == "thread" else "messageId"
    # When bob acts on it by its id
    # Then he is refused (he cannot join) and nothing is written
    refused(parley, bob, frame_for(action, hush.id, **{field: ack["id"]}), "not_joined")


# ---- identity comes from the authorizer, never from the frame ------------------------------------

SPOOF = {
    "user": {"id": "mallory", "name": "Mallory"},
    "userId": "mallory",
    "userName": "Mallory",
    "name": "Mallory",
    "sub": "mallory",
    "workspace": "other",
    "createdBy": "mallory",
}


@pytest.fixture
def alice_and_bob(parley: Any) -> tuple[Any, Any]:
    alice, bob = parley.connect("alice", name="Alice"), parley.connect("bob")
    alice.send({"action": "join", "channel": "general"})
    bob.send({"action": "join", "channel": "general"})
    parley.pump()
    parley.notifier.clear()
    return alice, bob


def test_message_claiming_another_user_is_stored_as_the_authenticated_user(
    parley: Any, alice_and_bob: tuple[Any, Any]
) -> None:
    # Given alice sends a message whose body claims to be mallory of workspace other
    alice, _ = alice_and_bob
    # When it is stored
    ack = alice.send({"action": "message", "channel": "general", "text": "it's me", **SPOOF})
    # Then the stored item names alice of acme
    assert ack is not None and ack["type"] == "ack"
    item = parley.aws.dynamodb.Table("MessagesTable").get_item(
        Key={"PK": "WS#acme#CHAN#general", "SK": f"MSG#{ack['id']}"}
    )["Item"]
    assert (item["userId"], item["userName"], item["workspace"]) == ("alice", "Alice", "acme")


def test_message_claiming_another_user_is_fanned_out_and_read_back_as_the_authenticated_user(
    parley: Any, alice_and_bob: tuple[Any, Any]
) -> None:
    # Given alice sends a message whose body claims to be mallory
    alice, bob = alice_and_bob
    alice.send({"action": "message", "channel": "general", "text": "it's me", **SPOOF})
    # When fan-out runs and bob reads the history
    parley.pump()
    history = bob.send({"action": "history", "channel": "general"})
    # Then both show alice as the author
    assert [m["user"] for m in bob.events_of("message")] == [{"id": "alice", "name": "Alice"}]
    assert [m["user"] for m in history["messages"]] == [{"id": "alice", "name": "Alice"}]


def test_nothing_is_stored_under_the_claimed_workspace(parley: Any, alice_and_bob: tuple[Any, Any]) -> None:
    # Given alice sends a message claiming workspace other
    alice, _ = alice_and_bob
    alice.send({"action": "message", "channel": "general", "text": "it's me", **SPOOF})
    # When we look at every stored item
    world = snapshot(parley.aws.dynamodb)
    # Then none mentions mallory or workspace other
    flat = repr(world)
    assert "mallory" not in flat and "Mallory" not in flat and "WS#other" not in flat
    # positive control: the snapshot does hold the message, under alice's own workspace
    assert "it's me" in flat and "WS#acme" in flat


def test_typing_claiming_another_user_is_fanned_out_as_the_authenticated_user(
    parley: Any, alice_and_bob: tuple[Any, Any]
) -> None:
    # Given alice sends a typing frame claiming to be mallory
    alice, bob = alice_and_bob
    alice.send({"action": "typing", "channel": "general", **SPOOF})
    # When fan-out runs
    parley.pump()
    # Then bob sees alice typing
    assert [e["user"] for e in bob.events_of("typing")] == [{"id": "alice", "name": "Alice"}]


def test_create_channel_claiming_another_creator_is_owned_by_the_authenticated_user(
    parley: Any, alice_and_bob: tuple[Any, Any]
) -> None:
    # Given alice creates a private channel claiming mallory created it
    alice, _ = alice_and_bob
    spoof = {k: v for k, v in SPOOF.items() if k != "name"}  # `name` is the channel's name here
    reply = alice.send({"action": "create_channel", "private": True, **spoof, "name": "mine"})
    assert reply is not None and reply["type"] == "channel_created"
    # When we read the stored channel and memberships
    table = parley.aws.dynamodb.Table("MessagesTable")
    sk = f"CHAN#{reply['channel']['id']}"
    channel = table.get_item(Key={"PK": "WS#acme", "SK": sk})["Item"]
    alice_member = table.get_item(Key={"PK": "WS#acme#USER#alice", "SK": sk}).get("Item")
    mallory_member = table.get_item(Key={"PK": "WS#acme#USER#mallory", "SK": sk}).get("Item")
    # Then alice is the creator and the only member
    assert channel["createdBy"] == "alice"
    assert alice_member is not None and mallory_member is None


# ---- direct messages and read marks --------------------------------------------------------------


@pytest.fixture
def dm(parley: Any) -> Party:
    """alice opened a DM with bob, joined it and posted once; carol (same workspace) is not in it."""
    alice, bob, carol = parley.connect("alice"), parley.connect("bob"), parley.connect("carol")
    opened = alice.send({"action": "open_dm", "users": ["bob"]})
    assert opened["type"] == "dm_opened", opened
    dm_id = opened["channel"]["id"]
    assert alice.send({"action": "join", "channel": dm_id})["type"] == "joined"
    assert alice.send({"action": "message", "channel": dm_id, "text": "just us"})["type"] == "ack"
    return Party((alice, bob, carol), dm_id)


@pytest.mark.parametrize(
    ("action", "code"),
    [("join", "not_found"), ("invite", "not_found"), ("mark_read", "not_found"), ("message", "not_joined"),
     ("history", "not_joined"), ("typing", "not_joined"), ("presence", "not_joined")],
)  # fmt: skip
def test_a_non_member_cannot_read_or_use_a_dm(parley: Any, dm: Party, action: str, code: str) -> None:
    # Given alice and bob's DM, which carol is not a member of
    _, _, carol = dm
    # When carol acts on it by its id
    # Then she is refused as if it did not exist (or never joined), and nothing is written
    refused(parley, carol, frame_for(action, dm.id), code)


def test_a_non_member_does_not_see_a_dm_in_her_list(dm: Party) -> None:
    _, bob, carol = dm
    assert dm.id not in _listed(carol)
    assert _listed(bob).get(dm.id) is True  # positive control: the other member sees it


def test_a_non_member_reading_a_dm_message_mark_is_refused_like_a_missing_channel(dm: Party) -> None:
    # Given alice's message in the DM
    alice, _, carol = dm
    message_id = alice.send({"action": "history", "channel": dm.id})["messages"][0]["id"]
    # When carol marks it read, Then she gets not_found, exactly as for a DM that does not exist
    _, private = send(carol, {"action": "mark_read", "channel": dm.id, "messageId": message_id})
    _, missing = send(carol, {"action": "mark_read", "channel": "dm.0000000000", "messageId": message_id})
    assert private is not None and missing is not None
    assert private["code"] == missing["code"] == "not_found"
    assert private["message"].replace(dm.id, "X") == missing["message"].replace("dm.0000000000", "X")


def test_users_of_another_workspace_cannot_be_dmed(parley: Any) -> None:
    # Given mallory connected to workspace `other`, and alice to acme
    parley.connect("mallory", "other")
    alice = parley.connect("alice", "acme")
    # When alice opens a DM with mallory
    # Then mallory is not a user of acme: not_found, and nothing is written
    refused(parley, alice, {"action": "open_dm", "users": ["mallory"]}, "not_found")


def test_a_dm_of_another_workspace_is_invisible(parley: Any, dm: Party) -> None:
    # Given alice and bob's DM in acme, and mallory of `other` who once opened a DM with her own bob
    mallory = parley.connect("mallory", "other")
    parley.connect("bob", "other")
    assert mallory.send({"action": "open_dm", "users": ["bob"]})["channel"]["id"] != dm.id
    # When mallory acts on acme's DM id, Then it does not exist for her
    refused(parley, mallory, frame_for("join", dm.id), "not_found")
    refused(parley, mallory, frame_for("mark_read", dm.id), "not_found")


def test_mark_read_on_a_private_channel_one_cannot_see_is_not_found(parley: Any, hush: Party) -> None:
    # Given alice's private channel hush, with a message in it; bob is not a member
    alice, bob = hush
    ack = alice.send({"action": "message", "channel": hush.id, "text": "secret"})
    # When bob marks that message read, Then not_found, and nothing is written
    refused(parley, bob, {"action": "mark_read", "channel": hush.id, "messageId": ack["id"]}, "not_found")


def test_a_read_event_never_reaches_another_user(parley: Any, dm: Party) -> None:
    # Given bob (two connections) and alice in the DM
    alice, bob, carol = dm
    bob_phone = parley.connect("bob")
    message_id = alice.send({"action": "history", "channel": dm.id})["messages"][0]["id"]
    parley.notifier.clear()
    # When bob marks alice's message read
    assert (
        bob.send({"action": "mark_read", "channel": dm.id, "messageId": message_id})["type"] == "marked_read"
    )
    # Then only his other connection hears of it
    assert [e["type"] for e in bob_phone.events] == ["read"]
    assert alice.events == [] and carol.events == [] and bob.events == []


# ---- expired tokens ------------------------------------------------------------------------------

ALL_ACTIONS = list(action_routes())


def assert_closed_for_expiry(parley: Any, client: Any, frame: dict[str, Any]) -> None:
    """Send `frame`: no route answer, a token_expired error pushed first, the connection closed, no write."""
    before = snapshot(parley.aws.dynamodb)
    request_id, reply = send(client, frame)
    assert reply is None
    pushed = client.events
    assert len(pushed) == 1
    assert_error_frame(pushed[0], code="token_expired", request_id=request_id, action=frame["action"])
    assert parley.notifier.closed == [client.connection_id]
    assert snapshot(parley.aws.dynamodb) == before


@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_expired_token_closes_the_connection_on_any_action(parley: Any, action: str) -> None:
    # Given alice connected with a token that expired a second ago
    alice = parley.connect("alice", expires_in_s=-1)
    # When she sends any well-formed frame
    # Then she is told token_expired, disconnected, and nothing is written
    assert_closed_for_expiry(parley, alice, frame_for(action, "general"))


def test_token_expiring_during_the_connection_closes_it_on_the_next_action(parley: Any) -> None:
    # Given alice joined general with a token valid for one more minute
    alice = parley.connect("alice", expires_in_s=60)
    alice.send({"action": "join", "channel": "general"})
    parley.notifier.clear()
    # When a minute passes and she posts
    parley.clock.advance(60_001)
    # Then she is told token_expired, disconnected, and nothing is written
    assert_closed_for_expiry(parley, alice, frame_for("message", "general"))


def test_token_is_expired_from_its_exp_second_on(parley: Any) -> None:
    # Given alice's token expires at `exp`
    alice = parley.connect("alice", expires_in_s=60)
    # When the clock reaches exp exactly
    parley.clock.now = alice.auth["tokenExp"] * 1000
    # Then her next action is refused as expired
    assert_closed_for_expiry(parley, alice, frame_for("heartbeat", "general"))


def test_token_is_valid_until_just_before_exp(parley: Any) -> None:
    # Given alice's token expires at `exp`
    alice = parley.connect("alice", expires_in_s=60)
    # When the clock is one millisecond before exp
    parley.clock.now = alice.auth["tokenExp"] * 1000 - 1
    reply = alice.send({"action": "heartbeat"})
    # Then she is served and stays connected
    assert reply is not None and reply["type"] == "heartbeat"
    assert parley.notifier.closed == []


def test_expiry_is_enforced_when_api_gateway_hands_the_exp_back_as_a_string(parley: Any) -> None:
    # Given alice connected, and API Gateway passes her context's tokenExp as a string, already past
    alice = parley.connect("alice")
    alice.auth["tokenExp"] = str(parley.clock.now_ms() // 1000 - 1)
    # When she sends a frame
    # Then the expiry is still enforced
    assert_closed_for_expiry(parley, alice, frame_for("heartbeat", "general"))


def test_expired_token_is_reported_before_the_frame_is_even_parsed(parley: Any) -> None:
    # Given alice's token has expired
    alice = parley.connect("alice", expires_in_s=-1)
    # When she sends a malformed message frame (no channel, no text)
    # Then the answer is still token_expired, not bad_request
    assert_closed_for_expiry(parley, alice, {"action": "message"})


@pytest.mark.parametrize(
    "body",
    ['{"action": "dance"}', "not json", '{"channel": "general"}'],
    ids=["unknown action", "not JSON", "no action"],
)
def test_expired_token_closes_the_connection_on_a_default_route_frame(parley: Any, body: str) -> None:
    # Given alice's token has expired
    alice = parley.connect("alice", expires_in_s=-1)
    before = snapshot(parley.aws.dynamodb)
    # When she sends a frame that API Gateway routes to $default
    request_id, reply = send(alice, body, route="$default")
    # Then, as for every frame, she is told token_expired (no action: none was known) and disconnected
    assert reply is None
    assert len(alice.events) == 1
    assert_error_frame(alice.events[0], code="token_expired", request_id=request_id, action=None)
    assert parley.notifier.closed == [alice.connection_id]
    assert snapshot(parley.aws.dynamodb) == before


@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_creating_a_private_channels_name_answers_exactly_as_a_fresh_name(
    parley: Any, hush: Party, private: bool
) -> None:
    # Given alice's private channel hush, which bob cannot see
    _, bob = hush
    # When bob creates a channel named hush, and one named zzzz that nothing holds
    taken = bob.send({"action": "create_channel", "name": "hush", "private": private})
    fresh = bob.send({"action": "create_channel", "name": "zzzz", "private": private})
    # Then both are created, and the answers differ only by the name (and a private id's random part)
    assert taken["type"] == fresh["type"] == "channel_created"

    def shape(reply: dict[str, Any], name: str) -> dict[str, Any]:
        channel = reply["channel"]
        assert channel["name"] == name and channel["id"].split(".")[0] == name
        return {**channel, "id": len(channel["id"]) - len(name), "name": None}

    assert shape(taken, "hush") == shape(fresh, "zzzz")
    assert taken["channel"]["id"] != hush.id


def test_a_public_channel_named_like_a_private_one_stays_apart_from_it(parley: Any, hush: Party) -> None:
    # Given bob created the public hush while alice's private hush exists, and both joined their own
    alice, bob = hush
    created = bob.send({"action": "create_channel", "name": "hush"})
    assert created["channel"]["id"] == "hush"
    bob.send({"action": "join", "channel": "hush"})
    parley.pump()
    # When alice posts in her private hush and fan-out runs
    alice.send({"action": "message", "channel": hush.id, "text": "members only"})
    parley.pump()
    # Then only alice gets it, bob's public hush shows none of it, and alice sees both channels listed
    assert [m["text"] for m in alice.events_of("message")] == ["members only"]
    assert bob.events_of("message") == []
    assert bob.send({"action": "history", "channel": "hush"})["messages"] == []
    listed = {c["id"]: (c["name"], c["private"]) for c in alice.send({"action": "channels"})["channels"]}
    assert listed[hush.id] == ("hush", True) and listed["hush"] == ("hush", False)


def test_members_reach_a_private_channel_by_its_id_not_its_name(parley: Any, hush: Party) -> None:
    # Given alice invited bob to her private hush
    alice, bob = hush
    alice.send({"action": "invite", "channel": hush.id, "user": "bob"})
    # When bob joins by the channel's name, Then there is no such channel (the name is not its address)
    refused(parley, bob, {"action": "join", "channel": "hush"}, "not_found")
    # When he joins by its id, Then he is in, and sees alice's messages
    joined = bob.send({"action": "join", "channel": hush.id})
    assert joined["type"] == "joined" and joined["channel"] == hush.id
    alice.send({"action": "message", "channel": hush.id, "text": "welcome"})
    history = bob.send({"action": "history", "channel": hush.id})
    assert [m["text"] for m in history["messages"]] == ["welcome"]
    assert {m["channel"] for m in history["messages"]} == {hush.id}


# ---- membership: who may invite, leave and remove ------------------------------------------------


@pytest.fixture
def crew(parley: Any) -> Party:
    """alice created the private channel `crew` (invite policy: creator only) and invited bob, who joined."""
    alice, bob, carol = parley.connect("alice"), parley.connect("bob"), parley.connect("carol")
    created = alice.send({"action": "create_channel", "name": "crew", "private": True, "invite": "creator"})
    assert created["channel"]["invite"] == "creator"
    crew_id = created["channel"]["id"]
    assert alice.send({"action": "invite", "channel": crew_id, "user": "bob"})["type"] == "invited"
    assert bob.send({"action": "join", "channel": crew_id})["type"] == "joined"
    return Party((alice, bob, carol), crew_id)


def test_a_member_cannot_invite_when_only_the_creator_may(parley: Any, crew: Party) -> None:
    # Given bob is a member of crew, whose policy lets only its creator invite
    _, bob, _ = crew
    # When bob invites carol
    # Then he is forbidden and nothing is written
    refused(parley, bob, {"action": "invite", "channel": crew.id, "user": "carol"}, "forbidden")


def test_any_member_may_invite_by_default(parley: Any, hush: Party) -> None:
    # Given alice invited bob to hush (default policy: any member)
    alice, bob = hush
    alice.send({"action": "invite", "channel": hush.id, "user": "bob"})
    # When bob invites carol
    reply = bob.send({"action": "invite", "channel": hush.id, "user": "carol"})
    # Then she is invited
    assert reply == {"type": "invited", "channel": hush.id, "user": "carol"}


def test_a_non_member_cannot_invite_to_a_public_channel(parley: Any) -> None:
    # Given bob never joined the public channel random
    bob = parley.connect("bob")
    # When he invites carol to it
    # Then he is forbidden and nothing is written
    refused(parley, bob, {"action": "invite", "channel": "random", "user": "carol"}, "forbidden")


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "leave", "channel": "crew", "user": "alice"},
        {"action": "leave", "channel": "crew", "user": "carol"},
    ],
    ids=["remove the creator", "remove a non-member"],
)
def test_only_the_creator_may_remove_a_member(parley: Any, crew: Party, frame: dict[str, Any]) -> None:
    # Given bob is a member of crew but not its creator
    _, bob, _ = crew
    # When he tries to remove someone
    # Then he is forbidden and nothing is written
    refused(parley, bob, with_channel(frame, "crew", crew.id), "forbidden")


def test_a_non_member_cannot_remove_from_a_private_channel_it_cannot_see(parley: Any, crew: Party) -> None:
    # Given carol is not a member of crew
    _, _, carol = crew
    # When she tries to remove bob
    # Then crew does not exist for her, and nothing is written
    refused(parley, carol, {"action": "leave", "channel": crew.id, "user": "bob"}, "not_found")


def test_the_creator_removing_a_member_ends_his_membership_and_his_subscriptions(
    parley: Any, crew: Party
) -> None:
    # Given bob is a member of crew, joined on his connection
    alice, bob, _ = crew
    # When alice removes him
    reply = alice.send({"action": "leave", "channel": crew.id, "user": "bob"})
    # Then he is no longer subscribed (his frames are not_joined), cannot join again, and no longer lists it
    assert reply == {"type": "left", "channel": crew.id, "membership": True, "user": "bob"}
    refused(parley, bob, {"action": "message", "channel": crew.id, "text": "still here?"}, "not_joined")
    refused(parley, bob, {"action": "join", "channel": crew.id}, "not_found")
    assert crew.id not in _listed(bob)


def test_a_removed_member_receives_no_more_messages(parley: Any, crew: Party) -> None:
    # Given alice (joined) removed bob from crew
    alice, bob, _ = crew
    alice.send({"action": "join", "channel": crew.id})
    alice.send({"action": "leave", "channel": crew.id, "user": "bob"})
    parley.pump()
    # When alice posts in crew and fan-out runs
    alice.send({"action": "message", "channel": crew.id, "text": "after bob"})
    parley.pump()
    # Then alice gets it and bob does not
    assert [m["text"] for m in alice.events_of("message")] == ["after bob"]
    assert bob.events_of("message") == []


def test_leaving_a_membership_unsubscribes_every_connection_and_needs_a_new_invite(
    parley: Any, crew: Party
) -> None:
    # Given bob is in crew on two connections
    _, bob, _ = crew
    phone = parley.connect("bob")
    phone.send({"action": "join", "channel": crew.id})
    # When he leaves crew's membership from his laptop
    reply = bob.send({"action": "leave", "channel": crew.id, "membership": True})
    # Then his phone is unsubscribed too and he cannot join again uninvited
    assert reply == {"type": "left", "channel": crew.id, "membership": True}
    refused(parley, phone, {"action": "typing", "channel": crew.id}, "not_joined")
    refused(parley, bob, {"action": "join", "channel": crew.id}, "not_found")


def test_a_plain_leave_keeps_the_membership(parley: Any, crew: Party) -> None:
    # Given bob is in crew
    _, bob, _ = crew
    # When he leaves without membership
    assert bob.send({"action": "leave", "channel": crew.id}) == {"type": "left", "channel": crew.id}
    # Then he may join again
    assert bob.send({"action": "join", "channel": crew.id})["type"] == "joined"
