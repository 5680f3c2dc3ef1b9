"""The server-side way in, end to end on the emulator: a backend posts with boto3's Lambda Invoke, a
WebSocket client sees the message arrive from the app, and the domain event is on the bus."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from tests.e2e.conftest import Peers

EVENT_WAIT_S = 30.0


def lambda_client(emulator: Any) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=emulator.lambda_url,
        region_name=emulator.template.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def invoke_publish(emulator: Any, payload: dict[str, Any]) -> dict[str, Any]:
    name = emulator.template.functions["PublishFunction"].name
    answer = lambda_client(emulator).invoke(FunctionName=name, Payload=json.dumps(payload))
    assert "FunctionError" not in answer, answer
    reply: dict[str, Any] = json.loads(answer["Payload"].read())
    return reply


def recorded_events(emulator: Any) -> list[dict[str, Any]]:
    bus = emulator.template.event_buses["DomainEventBus"].name
    url = f"{emulator.admin_url}/events?{urllib.parse.urlencode({'bus': bus})}"
    with urllib.request.urlopen(url) as response:
        events: list[dict[str, Any]] = json.loads(response.read())["events"]
        return events


async def domain_event(emulator: Any, detail_type: str, message_id: str) -> dict[str, Any]:
    """The recorded entry of that message's event; the stream consumer runs asynchronously."""

    async def find() -> dict[str, Any]:
        while True:
            for entry in await asyncio.to_thread(recorded_events, emulator):
                message = (entry["detail"] or {}).get("message") or {}
                if entry["detailType"] == detail_type and message.get("id") == message_id:
                    return entry
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(find(), EVENT_WAIT_S)


async def test_a_backend_posts_with_lambda_invoke_and_a_websocket_client_sees_it(
    peers: Peers, workspace: str, emulator: Any
) -> None:
    # GIVEN alice joined #general of a fresh workspace
    alice = await peers.joined("alice", workspace)
    payload = {
        "op": "publish",
        "app": "deploy-bot",
        "workspace": workspace,
        "channel": "general",
        "text": "deployed v1.2",
        "clientMsgId": "deploy-1",
    }
    # WHEN a backend invokes the publish function with boto3, and its SDK retries once
    ack = await asyncio.to_thread(invoke_publish, emulator, payload)
    assert ack["type"] == "ack", ack
    assert await asyncio.to_thread(invoke_publish, emulator, payload) == ack
    # THEN alice's connection receives the message, marked as the app's
    event = await alice.wait_for(lambda e: e["type"] == "message" and e["id"] == ack["id"])
    assert event["app"] == "deploy-bot"
    assert event["user"] == {"id": "app#deploy-bot", "name": "deploy-bot"}
    assert event["text"] == "deployed v1.2"
    # AND the bus got message.created for it, once per stream record (the retry wrote nothing)
    entry = await domain_event(emulator, "message.created", ack["id"])
    assert entry["source"] == "parley" and entry["errorCode"] is None
    assert entry["detail"]["workspace"] == workspace
    assert entry["detail"]["message"]["app"] == "deploy-bot"
    same = [
        e
        for e in await asyncio.to_thread(recorded_events, emulator)
        if e["detailType"] == "message.created" and e["detail"]["message"]["id"] == ack["id"]
    ]
    assert len({e["detail"]["eventId"] for e in same}) == 1
    # AND a bot reads the channel back through the same function
    history = await asyncio.to_thread(
        invoke_publish,
        emulator,
        {"op": "history", "app": "reader", "workspace": workspace, "channel": "general"},
    )
    assert [m["id"] for m in history["messages"]] == [ack["id"]]


async def test_the_entry_point_answers_errors_as_payloads(
    peers: Peers, workspace: str, emulator: Any
) -> None:
    await peers.joined("alice", workspace)
    bad = await asyncio.to_thread(
        invoke_publish,
        emulator,
        {
            "op": "publish",
            "app": "bot",
            "workspace": workspace,
            "channel": "nope",
            "text": "x",
            "clientMsgId": "c",
        },
    )
    assert (bad["type"], bad["code"], bad["action"]) == ("error", "not_found", "publish")
