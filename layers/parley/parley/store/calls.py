"""The one way the store calls DynamoDB: each SDK call gives a typed outcome, never a raw ClientError.

The access modules decide which outcomes are normal for them (a failed condition, a cancelled
transaction); `unwrap` turns every other one into the domain's StoreError, keeping the SDK error as
the cause for logs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from parley.errors import StoreError, StoreThrottled

R = TypeVar("R")

_THROTTLES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
# TransactWriteItems cancellation reasons (one per item, in order), as DynamoDB documents them.
_THROTTLED_REASONS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"
TRANSACT_ATTEMPTS = 4
_CONFLICT_BASE_S = 0.02
_deserializer = TypeDeserializer()


@dataclass(frozen=True, slots=True)
class Ok(Generic[R]):
    value: R


@dataclass(frozen=True, slots=True)
class ConditionFailed:
    """A conditional write found its condition false: nothing was written."""

    cause: ClientError
    # the item as it was, when the call asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD)
    old_item: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A transaction was cancelled: nothing was written. One reason per item, "None" where it was fine."""

    cause: ClientError
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Throttled:
    """DynamoDB still throttled the request after the SDK's own retries."""

    cause: ClientError
    code: str


@dataclass(frozen=True, slots=True)
class Failed:
    """Anything else: a validation error, a timeout, an unreachable endpoint."""

    cause: Exception
    code: str


Outcome: TypeAlias = Ok[R] | ConditionFailed | Cancelled | Throttled | Failed


def attempt(operation: Callable[..., R], **kwargs: Any) -> Outcome[R]:
    """Run one SDK call and say how it went."""
    try:
        return Ok(operation(**kwargs))
    except ClientError as exc:
        return _outcome_of(exc)
    except BotoCoreError as exc:
        return Failed(exc, type(exc).__name__)


def unwrap(outcome: Outcome[R]) -> R:
    """The call's result; any other outcome is a StoreError (StoreThrottled when throttled)."""
    if isinstance(outcome, Ok):
        return outcome.value
    if isinstance(outcome, Throttled):
        raise StoreThrottled(outcome.code) from outcome.cause
    if isinstance(outcome, ConditionFailed):
        raise StoreError("ConditionalCheckFailedException") from outcome.cause
    if isinstance(outcome, Cancelled):
        raise StoreError("TransactionCanceledException") from outcome.cause
    raise StoreError(outcome.code) from outcome.cause


def call(operation: Callable[..., R], **kwargs: Any) -> R:
    """Run an SDK call that has no normal failure."""
    return unwrap(attempt(operation, **kwargs))


def written(operation: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a conditional write; False when its condition did not hold (a normal outcome here)."""
    outcome = attempt(operation, **kwargs)
    if isinstance(outcome, ConditionFailed):
        return False
    unwrap(outcome)
    return True


def transact(
    client: Any,
    transaction: Sequence[Any],
    *,
    attempts: int = TRANSACT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Cancelled | None:
    """Run a TransactWriteItems and read why it was cancelled, item by item.

    None when it was written. A condition that failed is a normal outcome for the caller: the Cancelled
    outcome comes back, its `reasons` saying which item. A conflict with another transaction on the
    same items is retried after a jittered backoff; throttling of any item raises StoreThrottled, as a
    throttled single write does; any other reason is a StoreError.
    """
    for n in range(attempts):
        outcome = attempt(client.transact_write_items, TransactItems=list(transaction))
        if not isinstance(outcome, Cancelled):
            unwrap(outcome)
            return None
        reasons = set(outcome.reasons)
        if reasons & _THROTTLED_REASONS:
            raise StoreThrottled(
                "TransactionCanceledException: " + ", ".join(sorted(reasons))
            ) from outcome.cause
        if CONDITION_FAILED in reasons:
            return outcome
        if TRANSACTION_CONFLICT not in reasons:
            unwrap(outcome)
        if n + 1 < attempts:
            sleep(random.uniform(0, _CONFLICT_BASE_S * 2**n))  # noqa: S311 - jitter, not secrecy
    raise StoreError("TransactionConflict: too many concurrent writers of the same items")


def _outcome_of(exc: ClientError) -> Outcome[Any]:
    response: dict[str, Any] = dict(exc.response)
    code = str(response.get("Error", {}).get("Code", ""))
    if code in _THROTTLES:
        return Throttled(exc, code)
    if code == "ConditionalCheckFailedException":
        raw = response.get("Item")
        old = {k: _deserializer.deserialize(v) for k, v in raw.items()} if isinstance(raw, dict) else None
        return ConditionFailed(exc, old)
    if code == "TransactionCanceledException":
        reasons = tuple(str(r.get("Code", "None")) for r in response.get("CancellationReasons", []))
        return Cancelled(exc, reasons)
    return Failed(exc, code or "ClientError")
