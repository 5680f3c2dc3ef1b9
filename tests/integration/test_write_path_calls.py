"""How many DynamoDB calls each message-path frame makes, counted through botocore under moto.

A plain `message` must not get dearer with edits and threads: the counts below are those of the write
path before them (docs/design.md, "Edits, deletes and thread counts"). A reply makes the same calls
as before (it already read its parent), its transaction one item longer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore import handlers as botocore_handlers

from tests.support.world import MotoAws, clear_cached_clients


class Counted:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()  # items written by transactions

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.service_model.service_name != "dynamodb":
            return
        self.calls[model.name] += 1
        if model.name == "TransactWriteItems":
            self.items["TransactWriteItems"] += len(params["TransactItems"])

    def during(self, action: Any) -> tuple[dict[str, int], int]:
        self.calls.clear()
        self.items.clear()
        action()
        return dict(self.calls), self.items["TransactWriteItems"]


@pytest.fixture
def counted(moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Counted]]:
    from parley import deps
    from tests.integration.harness import Harness

    counter = Counted()
    hooks = [("before-parameter-build", counter.before_parameter_build)]
    monkeypatch.setattr(botocore_handlers, "BUILTIN_HANDLERS", [*botocore_handlers.BUILTIN_HANDLERS, *hooks])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    clear_cached_clients()
    with ThreadPoolExecutor(max_workers=4) as pool:
        harness = Harness(moto_aws, pool)
        monkeypatch.setattr(deps, "services", lambda: harness.services)
        yield harness, counter
    clear_cached_clients()


def test_dynamodb_calls_per_frame_on_the_message_path(counted: tuple[Any, Counted]) -> None:
    parley, counter = counted
    alice = parley.connect("alice")
    alice.send({"action": "join", "channel": "general"})
    sent: dict[str, Any] = {}

    def send(name: str, frame: dict[str, Any]) -> None:
        parley.clock.advance(1000)
        sent[name] = alice.send(frame)
        assert sent[name] is not None and sent[name]["type"] != "error", sent[name]

    message = {"action": "message", "channel": "general", "text": "hi"}
    # the subscription (GetItem), the limiter (PutItem), the append (head and message)
    assert counter.during(lambda: send("plain", message)) == (
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 1},
        2,
    )
    # with clientMsgId, Powertools' idempotency record: put in progress, then completed
    with_id = {**message, "clientMsgId": "c-1"}
    assert counter.during(lambda: send("idempotent", with_id)) == (
        {"GetItem": 1, "PutItem": 2, "UpdateItem": 1, "TransactWriteItems": 1},
        2,
    )
    # a reply also reads its parent, and counts on it inside the same transaction (a third item)
    reply = {**message, "threadId": sent["plain"]["id"]}
    assert counter.during(lambda: send("reply", reply)) == (
        {"GetItem": 2, "PutItem": 1, "TransactWriteItems": 1},
        3,
    )
    # an edit and a delete: subscription, the message (consistent), limiter, one conditional update
    edit = {"action": "edit", "channel": "general", "messageId": sent["plain"]["id"], "text": "hi!"}
    assert counter.during(lambda: send("edit", edit)) == ({"GetItem": 2, "PutItem": 1, "UpdateItem": 1}, 0)
    delete = {"action": "delete", "channel": "general", "messageId": sent["idempotent"]["id"]}
    assert counter.during(lambda: send("delete", delete)) == (
        {"GetItem": 2, "PutItem": 1, "UpdateItem": 1},
        0,
    )
    # a reply's delete moves its parent's count in a two-item transaction instead
    delete_reply = {**delete, "messageId": sent["reply"]["id"]}
    assert counter.during(lambda: send("delete reply", delete_reply)) == (
        {"GetItem": 2, "PutItem": 1, "TransactWriteItems": 1},
        2,
    )
    # a thread page: subscription, parent, limiter, one Query of the Threads index
    thread = {"action": "thread", "channel": "general", "threadId": sent["plain"]["id"]}
    assert counter.during(lambda: send("thread", thread)) == ({"GetItem": 2, "PutItem": 1, "Query": 1}, 0)
