"""Every route adapter maps errors the same way: typed errors by code, anything else as `internal`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley.errors import StoreError, StoreThrottled
from parley.store import calls
from tests.support import events
from tests.support.handlers import LambdaContext, load


def failing(*_: Any, **__: Any) -> None:
    raise StoreError("ProvisionedThroughputExceededException")


def test_default_answers_internal_when_the_store_fails(parley: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given alice connected, and the token check failing with a store error (as a bug or outage would)
    alice = parley.connect("alice")
    monkeypatch.setattr(parley.services.chat, "check_token", failing)
    # When she sends a frame of no known action
    event = events.route_event(alice.connection_id, alice.auth, '{"action": "nope"}', parley.clock.now_ms())
    event["requestContext"]["routeKey"] = "$default"
    response = load("default").handler(event, LambdaContext())
    # Then she gets the internal error frame, with no detail of the failure
    frame = json.loads(response["body"])
    assert response["statusCode"] == 200
    assert (frame["type"], frame["code"]) == ("error", "internal")
    assert "Throughput" not in response["body"]


def test_default_still_answers_unknown_action_when_nothing_fails(parley: Any) -> None:
    # positive control for the test above: the same frame, nothing failing
    alice = parley.connect("alice")
    reply = alice.send('{"action": "nope"}')
    assert reply is not None and reply["code"] == "unknown_action"


def test_default_answers_internal_for_an_event_without_authorizer_context(parley: Any) -> None:
    # Given an event that lacks the authorizer's context (a misconfigured route)
    alice = parley.connect("alice")
    event = events.route_event(alice.connection_id, alice.auth, '{"action": "nope"}', parley.clock.now_ms())
    event["requestContext"]["routeKey"] = "$default"
    del event["requestContext"]["authorizer"]
    # When it arrives, Then the client is told `internal`, not left with API Gateway's bare error
    response = load("default").handler(event, LambdaContext())
    assert json.loads(response["body"])["code"] == "internal"


def test_disconnect_reports_a_store_failure_as_500(parley: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given alice connected, and forgetting connections failing
    alice = parley.connect("alice")
    real = parley.services.chat.disconnect
    monkeypatch.setattr(parley.services.chat, "disconnect", failing)
    # When she disconnects, Then the handler answers 500 (logged) instead of raising
    event = events.disconnect_event(alice.connection_id, alice.auth, parley.clock.now_ms())
    assert load("disconnect").handler(event, LambdaContext()) == {"statusCode": 500}
    # positive control: once the store works again the same disconnect is a 200 and forgets her
    monkeypatch.setattr(parley.services.chat, "disconnect", real)
    assert load("disconnect").handler(event, LambdaContext()) == {"statusCode": 200}
    assert parley.store.get_connection(alice.connection_id) is None


def test_connect_refuses_the_handshake_when_the_store_fails(
    parley: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parley.services.chat, "connect", failing)
    event = events.connect_event("c-fail=", events.authorizer_context("alice", "acme", exp=2**31), 0)
    assert load("connect").handler(event, LambdaContext()) == {"statusCode": 500}
    assert parley.store.get_connection("c-fail=") is None


def test_a_throttled_transaction_answers_internal_with_a_retry_hint_and_writes_nothing(
    parley: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given alice in #general, and DynamoDB cancelling the append with a throttled item
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    before = parley.store.recent_messages("acme", "general", 10).messages

    capacity = {"left": False}

    def throttled_until_capacity(*args: Any, **kwargs: Any) -> Any:
        if not capacity["left"]:
            raise StoreThrottled("TransactionCanceledException: ThrottlingError")
        return calls.transact(*args, **kwargs)

    monkeypatch.setattr("parley.store.messages.transact", throttled_until_capacity)
    # When she sends a message
    frame = alice.send({"action": "message", "channel": "general", "text": "hi", "clientMsgId": "t-1"})
    # Then she is told to send it again in a second, and nothing was stored
    assert frame is not None
    assert (frame["code"], frame["retryAfterMs"]) == ("internal", 1000)
    assert parley.store.recent_messages("acme", "general", 10).messages == before
    # and once DynamoDB has capacity again, the same frame is stored once
    capacity["left"] = True
    again = alice.send({"action": "message", "channel": "general", "text": "hi", "clientMsgId": "t-1"})
    assert again is not None and again["type"] == "ack"
