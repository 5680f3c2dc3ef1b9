"""What reactions cost in DynamoDB calls, counted at botocore under moto: a plain message costs what it
did before reactions; a history page costs one Query more (two when the page has reactions); a `react`
is four calls. Counts, not timings: they hold on any machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.integration.harness import joined_pair


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every DynamoDB API call made while the test runs, by operation name."""
    counted: Counter[str] = Counter()
    real = BaseClient._make_api_call  # type: ignore[attr-defined]  # botocore-stubs leave it out

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            counted[operation] += 1
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    yield counted


def _measure(calls: Counter[str], send: Any) -> dict[str, int]:
    calls.clear()
    send()
    return dict(calls)


def test_a_plain_message_makes_the_calls_it_made_before_reactions(parley: Any, calls: Counter[str]) -> None:
    alice, _ = joined_pair(parley)
    parley.clock.advance(1000)
    plain = _measure(calls, lambda: alice.send({"action": "message", "channel": "general", "text": "hi"}))
    # the subscription check, the rate limiter, the head-and-message transaction
    assert plain == {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 1}


def test_a_history_page_costs_one_query_more_and_two_with_reactions(parley: Any, calls: Counter[str]) -> None:
    alice, bob = joined_pair(parley)
    ids = []
    for i in range(10):
        parley.clock.advance(300)
        ids.append(alice.send({"action": "message", "channel": "general", "text": f"m{i}"})["id"])
    history = {"action": "history", "channel": "general"}
    # messages (Query), the page's counts (Query, empty): no reader's items are read then
    assert _measure(calls, lambda: alice.send(history)) == {"GetItem": 1, "PutItem": 1, "Query": 2}
    for message_id in ids[:5]:
        bob.send({"action": "react", "channel": "general", "messageId": message_id, "name": "+1"})
    parley.clock.advance(1000)  # the history limiter idle again: one write, as for the first page
    # with reactions on half the page: still one Query each for messages, counts and the reader's own
    assert _measure(calls, lambda: alice.send(history)) == {"GetItem": 1, "PutItem": 1, "Query": 3}


def test_a_reaction_is_four_calls_and_a_repeat_two(parley: Any, calls: Counter[str]) -> None:
    alice, bob = joined_pair(parley)
    message_id = alice.send({"action": "message", "channel": "general", "text": "hi"})["id"]
    frame = {"action": "react", "channel": "general", "messageId": message_id, "name": "👍"}
    # subscription check, one BatchGetItem (message, counts, own names), rate limiter, one transaction
    assert _measure(calls, lambda: bob.send(frame)) == {
        "GetItem": 1,
        "BatchGetItem": 1,
        "PutItem": 1,
        "TransactWriteItems": 1,
    }
    # already so: read, nothing written, no rate spent
    assert _measure(calls, lambda: bob.send(frame)) == {"GetItem": 1, "BatchGetItem": 1}
