"""The store's one way to run a transaction: why it was cancelled decides what happens next."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from parley.errors import StoreError, StoreThrottled
from parley.store.calls import Cancelled, transact


def cancelled(*reasons: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        },
        "TransactWriteItems",
    )


class Client:
    """Answers each transact_write_items with the next of `answers` (an exception, or success)."""

    def __init__(self, *answers: ClientError | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        answer = self.answers.pop(0)
        if answer is not None:
            raise answer
        return {}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_written_transaction_is_none():
    assert transact(Client(None), [{}]) is None


def test_a_failed_condition_comes_back_with_the_reasons_item_by_item():
    # Given the second item's condition fails
    client = Client(cancelled("None", "ConditionalCheckFailed"))
    # When the transaction runs, Then the caller gets the reasons, without a retry
    outcome = transact(client, [{}, {}])
    assert isinstance(outcome, Cancelled)
    assert outcome.reasons == ("None", "ConditionalCheckFailed")
    assert client.calls == 1


def test_a_conflict_with_another_transaction_is_retried_after_a_jittered_backoff():
    client = Client(cancelled("TransactionConflict", "None"), cancelled("None", "TransactionConflict"), None)
    sleeps = Sleeps()
    assert transact(client, [{}, {}], sleep=sleeps) is None
    assert client.calls == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.02 * 2**n for n, s in enumerate(sleeps))


def test_conflicts_on_every_attempt_are_a_store_error():
    client = Client(*[cancelled("TransactionConflict")] * 4)
    with pytest.raises(StoreError, match="TransactionConflict"):
        transact(client, [{}], attempts=4, sleep=Sleeps())
    assert client.calls == 4


@pytest.mark.parametrize(
    "reason", ["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"]
)
def test_a_throttled_item_is_throttling_not_a_failed_condition(reason):
    # A throttled item cancels the whole transaction; it must not read as "the id was taken".
    client = Client(cancelled("None", reason))
    with pytest.raises(StoreThrottled):
        transact(client, [{}, {}], sleep=Sleeps())
    assert client.calls == 1


@pytest.mark.parametrize("reason", ["ValidationError", "ItemCollectionSizeLimitExceeded"])
def test_any_other_reason_is_a_store_error_at_once(reason):
    client = Client(cancelled(reason))
    with pytest.raises(StoreError) as raised:
        transact(client, [{}], sleep=Sleeps())
    assert not isinstance(raised.value, StoreThrottled)
    assert client.calls == 1
