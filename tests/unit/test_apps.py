"""The publish function's use cases (parley.apps) against the in-memory store: validation, idempotency,
the app marker, rate limits per app, history, and the error payloads."""

from __future__ import annotations

from typing import Any

import pytest

from parley import protocol
from parley.apps import Apps, app_user_id, parse_request
from parley.chat import Chat
from parley.config import Settings
from parley.errors import BadRequest, Conflict, NotFound, RateLimited
from parley.idempotency import InMemoryOnce
from parley.models import Caller, User
from tests.support.fakes import FakeClock, FakeNotifier, FakeTimers
from tests.support.memory_store import MemoryStore

WS = "acme"
SETTINGS = Settings(
    state_table="StateTable",
    messages_table="MessagesTable",
    idempotency_table="IdempotencyTable",
    connections_endpoint="https://example.invalid/prod",
    rate_burst=3,
    rate_per_second=1,
)


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock = FakeClock()
        self.chat = Chat(
            store=self.store,
            notifier=FakeNotifier(),
            timers=FakeTimers(),
            once=InMemoryOnce(),
            clock=self.clock,
            settings=SETTINGS,
        )
        self.store.create_workspace(WS, ["general", "random"], self.clock.now_ms())
        self.apps = Apps(self.chat)

    def publish(self, **fields: Any) -> dict[str, Any]:
        body = {"op": "publish", "app": "deploy-bot", "workspace": WS, "channel": "general"}
        body |= {"text": "deployed v1.2", "clientMsgId": "d-1"} | fields
        return self.apps.handle(parse_request(body))


@pytest.fixture
def world() -> World:
    return World()


GOOD = {"op": "publish", "app": "deploy-bot", "workspace": WS, "channel": "general", "text": "hi"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("not an object", "payload"),
        ({"app": "bot"}, "op"),
        ({**GOOD, "op": "delete"}, "op"),
        ({**GOOD, "clientMsgId": "c"} | {"text": ""}, "text"),
        ({**GOOD, "clientMsgId": "c", "text": "x" * (protocol.MAX_TEXT + 1)}, "text"),
        ({**GOOD, "clientMsgId": "c", "text": "\n" * (protocol.MAX_TEXT_BYTES // 2 + 1)}, "text"),
        (GOOD, "clientMsgId"),  # required for apps: an Invoke retried by the SDK must be the same message
        ({**GOOD, "clientMsgId": "x" * (protocol.MAX_CLIENT_MSG_ID + 1)}, "clientMsgId"),
        ({**GOOD, "clientMsgId": "c", "app": "Deploy Bot"}, "app"),
        ({**GOOD, "clientMsgId": "c", "app": ""}, "app"),
        ({**GOOD, "clientMsgId": "c", "workspace": "a#b"}, "workspace"),
        ({**GOOD, "clientMsgId": "c", "channel": "General!"}, "channel"),
        ({**GOOD, "clientMsgId": "c", "threadId": "12"}, "threadId"),
        ({**GOOD, "clientMsgId": "c", "user": "alice"}, "user"),  # no field passes unnoticed
        ({**GOOD, "clientMsgId": 7}, "clientMsgId"),  # strict, as client frames are
        ({"op": "history", "app": "bot", "workspace": WS, "channel": "general", "limit": 0}, "limit"),
        ({"op": "history", "app": "bot", "workspace": WS, "channel": "general", "limit": "5"}, "limit"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(payload: Any, field: str) -> None:
    # GIVEN a payload that breaks one rule; WHEN it is parsed; THEN BadRequest names that field
    with pytest.raises(BadRequest) as caught:
        parse_request(payload)
    assert caught.value.message.startswith(field)


def test_publish_stores_the_message_marked_as_the_apps(world: World) -> None:
    ack = world.publish()
    assert ack["type"] == "ack"
    assert ack["clientMsgId"] == "d-1"
    stored = world.store.get_message(WS, "general", ack["id"])
    assert stored is not None
    assert stored.app == "deploy-bot"
    assert stored.user == User(app_user_id("deploy-bot"), "deploy-bot")
    assert protocol.message_wire(stored)["app"] == "deploy-bot"


def test_a_users_message_carries_no_app(world: World) -> None:
    caller = Caller("c1=", User("alice", "Alice"), WS, token_expires_at=world.clock.now_ms() // 1000 + 60)
    world.chat.connect(caller, world.clock.now_ms())
    world.chat.join(caller, protocol.JoinFrame(action="join", channel="general"))
    frame = protocol.parse_frame(
        '{"action":"message","channel":"general","text":"hi"}', protocol.MessageFrame
    )
    ack = world.chat.post_message(caller, frame).frame
    assert ack is not None
    stored = world.store.get_message(WS, "general", ack["id"])
    assert stored is not None and stored.app is None
    assert "app" not in protocol.message_wire(stored)


def test_a_retried_publish_is_the_same_message(world: World) -> None:
    first = world.publish()
    world.clock.advance(5_000)
    again = world.publish()
    assert again == first
    assert len(world.store.recent_messages(WS, "general", 10).messages) == 1


def test_a_clientmsgid_reused_for_other_text_is_a_conflict(world: World) -> None:
    world.publish()
    with pytest.raises(Conflict):
        world.publish(text="something else")


def test_publishing_to_a_channel_that_does_not_exist_writes_nothing(world: World) -> None:
    with pytest.raises(NotFound):
        world.publish(channel="nope")
    with pytest.raises(NotFound):
        world.publish(workspace="other")
    assert world.store.recent_messages(WS, "nope", 10).messages == []


def test_a_reply_needs_its_thread(world: World) -> None:
    parent = world.publish()
    reply = world.publish(clientMsgId="d-2", threadId=parent["id"])
    stored = world.store.get_message(WS, "general", reply["id"])
    assert stored is not None and stored.thread_id == parent["id"]
    with pytest.raises(NotFound):
        world.publish(clientMsgId="d-3", threadId="00000000000000001")


def test_each_app_has_its_own_rate_limit(world: World) -> None:
    # GIVEN a burst of 3: deploy-bot spends it
    for n in range(3):
        world.publish(clientMsgId=f"m-{n}")
    # THEN its fourth message is refused with a retry-after, and nothing is stored for it
    with pytest.raises(RateLimited) as caught:
        world.publish(clientMsgId="m-3")
    assert caught.value.retry_after_ms > 0
    assert len(world.store.recent_messages(WS, "general", 10).messages) == 3
    # AND another app is not held back by it
    assert world.publish(app="ci-bot", clientMsgId="m-3")["type"] == "ack"


def test_history_reads_a_channel_without_a_connection(world: World) -> None:
    ids = [world.publish(clientMsgId=f"m-{n}", text=f"t{n}")["id"] for n in range(3)]
    body = {"op": "history", "app": "reader", "workspace": WS, "channel": "general", "limit": 2}
    page = world.apps.handle(parse_request(body))
    assert page["type"] == "history"
    assert [m["id"] for m in page["messages"]] == ids[1:]
    assert page["hasMore"] is True
    assert all(m["app"] == "deploy-bot" for m in page["messages"])
    older = world.apps.handle(parse_request(body | {"before": ids[1]}))
    assert [m["id"] for m in older["messages"]] == ids[:1]
    with pytest.raises(NotFound):
        world.apps.handle(parse_request(body | {"channel": "nope"}))
