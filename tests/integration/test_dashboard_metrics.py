"""The metrics the CloudWatch dashboard adds: messages sent, and connection duration at `$disconnect`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.harness import joined_pair
from tests.support import events
from tests.support.handlers import LambdaContext, load


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_an_accepted_message_is_counted(parley: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given Alice in #general
    alice, _ = joined_pair(parley)
    capsys.readouterr()
    # When she sends a message
    ack = alice.send({"action": "message", "channel": "general", "text": "hi", "clientMsgId": "c-1"})
    assert ack is not None and ack["type"] == "ack"
    # Then MessagesSent counts one
    assert [m["MessagesSent"] for m in emitted(capsys) if "MessagesSent" in m] == [[1.0]]


def test_a_refused_message_is_not_counted(parley: Any, capsys: pytest.CaptureFixture[str]) -> None:
    alice, _ = joined_pair(parley)
    capsys.readouterr()
    reply = alice.send({"action": "message", "channel": "nowhere", "text": "hi", "clientMsgId": "c-2"})
    assert reply is not None and reply["type"] == "error"
    assert all("MessagesSent" not in m for m in emitted(capsys))


def test_disconnect_reports_how_long_the_connection_lived(
    parley: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a connection whose $disconnect event says it was opened 90 s before
    alice = parley.connect("alice")
    event = events.disconnect_event(alice.connection_id, alice.auth, parley.clock.now_ms())
    event["requestContext"]["connectedAt"] = event["requestContext"]["requestTimeEpoch"] - 90_000
    capsys.readouterr()
    # When it disconnects
    assert load("disconnect").handler(event, LambdaContext())["statusCode"] == 200
    # Then ConnectionDuration is its age in seconds, with the unit said
    (document,) = [m for m in emitted(capsys) if "ConnectionDuration" in m]
    assert document["ConnectionDuration"] == [90.0]
    (definition,) = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert definition == {"Name": "ConnectionDuration", "Unit": "Seconds"}
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Parley"
    assert document["service"] == "parley"
