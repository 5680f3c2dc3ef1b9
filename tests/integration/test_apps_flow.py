"""The server-side way in under moto: the publish handler posts like a user (idempotent, fanned out to
WebSocket connections, marked with its app), and the domain events handler puts the stream's events on
an EventBridge bus whose rule delivers them to a queue."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from parley import domain_events
from tests.support.handlers import LambdaContext, load
from tests.support.streams import StreamPump
from tests.support.template import load_template

BUS = "parley-events"


def publish(**fields: Any) -> dict[str, Any]:
    payload = {"op": "publish", "app": "deploy-bot", "workspace": "acme", "channel": "general"}
    payload |= {"text": "deployed v1.2", "clientMsgId": "deploy-1"} | fields
    answer: dict[str, Any] = load("publish").handler(payload, LambdaContext(function_name="parley-publish"))
    return answer


def domain_filters() -> list[dict[str, Any]]:
    (source,) = load_template()["Resources"]["DomainEventsFunction"]["Properties"]["Events"].values()
    return [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]


@pytest.fixture
def bus(parley: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The domain event bus in moto, with a rule sending every Parley event to a queue."""
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    from parley import config

    config.settings.cache_clear()
    domain_events.publisher.cache_clear()
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="parley-events-target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all-parley", EventBusName=BUS, EventPattern=json.dumps({"source": ["parley"]}))
    events.put_targets(Rule="all-parley", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    yield sqs, queue
    domain_events.publisher.cache_clear()


def test_an_apps_message_reaches_a_joined_connection_marked_as_the_apps(parley: Any) -> None:
    # GIVEN alice joined #general on a WebSocket connection
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    # WHEN deploy-bot publishes through the function, twice (an SDK retry)
    ack = publish()
    assert ack["type"] == "ack" and ack["clientMsgId"] == "deploy-1"
    assert publish() == ack
    parley.pump()
    # THEN alice receives it once, from the app
    (event,) = [e for e in alice.events_of("message") if e["id"] == ack["id"]]
    assert event["app"] == "deploy-bot"
    assert event["user"] == {"id": "app#deploy-bot", "name": "deploy-bot"}
    assert event["text"] == "deployed v1.2"
    # AND history shows it the same way, to a user and to an app
    history = alice.send({"action": "history", "channel": "general"})
    assert history is not None and history["messages"][-1]["app"] == "deploy-bot"
    read = load("publish").handler(
        {"op": "history", "app": "reader", "workspace": "acme", "channel": "general"}, LambdaContext()
    )
    assert [m["id"] for m in read["messages"]] == [ack["id"]]


def test_errors_are_payloads_with_a_stable_code(parley: Any) -> None:
    parley.connect("alice")  # the workspace and its default channels exist from the first connect
    bad = publish(text="")
    assert (bad["type"], bad["code"], bad["action"]) == ("error", "bad_request", "publish")
    assert bad["message"].startswith("text")
    missing = publish(channel="nope")
    assert (missing["code"], missing["action"]) == ("not_found", "publish")
    unknown = load("publish").handler(["not", "an", "object"], LambdaContext())
    assert unknown["code"] == "bad_request" and "action" not in unknown
    assert parley.store.recent_messages("acme", "nope", 5).messages == []


def test_stream_records_become_events_on_the_bus(parley: Any, bus: Any) -> None:
    sqs, queue = bus
    pump = StreamPump(parley.aws.client, parley.aws.streams, {"MessagesTable": domain_filters()})
    # GIVEN a workspace created by a first connection, a joined member and an app's message
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    ack = publish()
    records = pump.poll()
    # WHEN the domain events function gets the stream's batch
    answer = load("domain_events").handler({"Records": records}, LambdaContext())
    # THEN nothing failed, and the rule's queue got every event, each with its record's eventId
    assert answer == {"batchItemFailures": []}
    bodies = [json.loads(m["Body"]) for m in receive_all(sqs, queue)]
    kinds = sorted(b["detail-type"] for b in bodies)
    assert kinds == sorted(
        ["workspace.created", "channel.created", "channel.created", "member.joined", "message.created"]
    )
    assert all(b["source"] == "parley" for b in bodies)
    created = next(b["detail"] for b in bodies if b["detail-type"] == "message.created")
    assert created["message"]["id"] == ack["id"] and created["message"]["app"] == "deploy-bot"
    assert {b["detail"]["eventId"] for b in bodies} <= {r["eventID"] for r in records}


def receive_all(sqs: Any, queue: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return found
        found += got
        for m in got:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
