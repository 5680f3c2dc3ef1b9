"""The sample events in events/ drive every handler under moto, in the order a session would send them."""

from __future__ import annotations

import json
from typing import Any

from tests.support.handlers import LambdaContext, load
from tests.support.template import ROOT


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


def reply(name: str, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
    response = load(name).handler(event or sample(name), LambdaContext(function_name=f"parley-{name}"))
    assert response["statusCode"] == 200
    return json.loads(response["body"]) if "body" in response else None


def test_a_session_of_sample_events_gets_the_documented_replies(parley: Any) -> None:
    # Given the sample $connect event (alice, workspace demo) was admitted
    assert load("connect").handler(sample("connect"), LambdaContext()) == {"statusCode": 200}
    # When each sample route event is sent in turn, Then each answers its documented frame type
    expected = {
        "join": "joined",
        "message": "ack",
        "react": "reacted",
        "thread": "thread",
        "edit": "edited",
        "delete": "deleted",
        "typing": None,
        "history": "history",
        "presence": "presence",
        "heartbeat": "heartbeat",
        "channels": "channels",
        "create_channel": "channel_created",
        "invite": "invited",
        "leave": "left",
    }
    created: dict[str, Any] = {}
    posted: dict[str, Any] = {}
    for name, frame_type in expected.items():
        event = sample(name)
        if name == "invite":
            # A private channel's id is drawn when it is created (events/invite.json shows its shape):
            # a client invites with the id that create_channel answered.
            body = json.loads(event["body"]) | {"channel": created["channel"]["id"]}
            event["body"] = json.dumps(body)
        if name == "react":
            # events/react.json shows the shape; a client reacts to a message id it was given
            body = json.loads(event["body"]) | {"messageId": posted["id"]}
            event["body"] = json.dumps(body, ensure_ascii=False)
        if name in ("edit", "delete", "thread"):
            # a message's id is drawn when it is posted: these name the one the sample message got
            field = "threadId" if name == "thread" else "messageId"
            event["body"] = json.dumps(json.loads(event["body"]) | {field: posted["id"]})
        answer = reply(name, event)
        assert (answer or {}).get("type") == frame_type, (name, answer)
        if name == "create_channel":
            created = answer or {}
        if name == "message":
            posted = answer or {}
    default = reply("default")
    assert default is not None and default["code"] == "unknown_action"
    assert load("disconnect").handler(sample("disconnect"), LambdaContext()) == {"statusCode": 200}


def test_sample_stream_queue_and_schedule_events_run(parley: Any) -> None:
    assert load("fanout").handler(sample("fanout"), LambdaContext()) == {"batchItemFailures": []}
    assert load("presence_timer").handler(sample("presence_timer"), LambdaContext()) == {
        "batchItemFailures": []
    }
    # the chunk's two connections get its event (the fake @connections API delivers to any id)
    assert load("fanout_chunk").handler(sample("fanout_chunk"), LambdaContext()) == {"batchItemFailures": []}
    assert [e["text"] for e in parley.notifier.events("BcDeFgHiJkLmNoP=")] == ["hello, everyone"]
    assert load("sweeper").handler(sample("sweeper"), LambdaContext()) == {
        "staleConnections": 0,
        "overdueLeaves": 0,
    }


def test_the_sample_publish_event_posts_as_its_app(parley: Any) -> None:
    # Given workspace demo exists (the sample $connect creates it), When the sample publish runs
    assert load("connect").handler(sample("connect"), LambdaContext()) == {"statusCode": 200}
    answer = load("publish").handler(sample("publish"), LambdaContext())
    # Then it is acknowledged, and a repeat of it is the same message
    assert answer["type"] == "ack", answer
    assert load("publish").handler(sample("publish"), LambdaContext()) == answer
