"""Fault injection, one object shared by the `@connections` API and the local AWS from start-up."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    """Fault injection: a share of @connections posts answered 410 or 429 although the socket is fine,
    a share of the functions' DynamoDB requests answered ProvisionedThroughputExceededException, and a
    share of their TransactWriteItems cancelled with a TransactionConflict reason."""

    post_gone_rate: float = 0.0
    post_throttle_rate: float = 0.0
    seed: int | None = None
    dynamodb_throttle_rate: float = 0.0
    dynamodb_throttled: int = 0  # requests answered with the throttling error so far
    transaction_conflict_rate: float = 0.0
    transaction_conflicts: int = 0  # TransactWriteItems cancelled with TransactionConflict so far
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _dynamodb_rng: random.Random = field(default_factory=random.Random, repr=False)
    _conflict_rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - test fault injection, not security
        self._dynamodb_rng = random.Random(self.seed)  # noqa: S311
        self._conflict_rng = random.Random(self.seed)  # noqa: S311

    def conflict_transaction(self, items: int) -> int | None:
        """The index of the item to report in TransactionConflict for one transaction, or None."""
        if items <= 0 or not self.transaction_conflict_rate:
            return None
        if self._conflict_rng.random() >= self.transaction_conflict_rate:
            return None
        self.transaction_conflicts += 1
        return self._conflict_rng.randrange(items)

    def throttle_dynamodb(self) -> bool:
        """Whether to throttle one DynamoDB request."""
        if not self.dynamodb_throttle_rate or self._dynamodb_rng.random() >= self.dynamodb_throttle_rate:
            return False
        self.dynamodb_throttled += 1
        return True

    def pick(self) -> str | None:
        """'gone', 'throttle' or None for one post."""
        if not (self.post_gone_rate or self.post_throttle_rate):
            return None
        roll = self._rng.random()
        if roll < self.post_gone_rate:
            return "gone"
        if roll < self.post_gone_rate + self.post_throttle_rate:
            return "throttle"
        return None

    def configure(self, document: Mapping[str, Any]) -> None:
        """Take the settings of a PUT to /_emulator/faults in place (validated first; counters restart).

        In place, because the @connections API and the local AWS hold this same object from start-up.
        """
        self._take(Faults.from_dict(document))

    def clear(self) -> None:
        """No faults any more (DELETE /_emulator/faults)."""
        self._take(Faults())

    def _take(self, other: Faults) -> None:
        for name in [f.name for f in fields(self)]:
            setattr(self, name, getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {
            "postGoneRate": self.post_gone_rate,
            "postThrottleRate": self.post_throttle_rate,
            "dynamodbThrottleRate": self.dynamodb_throttle_rate,
            "dynamodbThrottled": self.dynamodb_throttled,
            "transactionConflictRate": self.transaction_conflict_rate,
            "transactionConflicts": self.transaction_conflicts,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Faults:
        gone = float(document.get("postGoneRate", 0.0))
        throttle = float(document.get("postThrottleRate", 0.0))
        dynamodb = float(document.get("dynamodbThrottleRate", 0.0))
        if not (0 <= gone <= 1 and 0 <= throttle <= 1 and gone + throttle <= 1):
            raise ValueError("rates must be between 0 and 1 and add up to at most 1")
        if not 0 <= dynamodb <= 1:
            raise ValueError("dynamodbThrottleRate must be between 0 and 1")
        conflict = float(document.get("transactionConflictRate", 0.0))
        if not 0 <= conflict <= 1:
            raise ValueError("transactionConflictRate must be between 0 and 1")
        seed = document.get("seed")
        return cls(
            gone,
            throttle,
            int(seed) if seed is not None else None,
            dynamodb,
            transaction_conflict_rate=conflict,
        )
