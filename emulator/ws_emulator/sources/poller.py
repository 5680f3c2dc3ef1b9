"""The steps every polling event source takes, named as LocalStack's event source mapping pollers name them.

A poller `poll_events` from its source (GetRecords on a shard, ReceiveMessage on a queue), turns each
raw record into what Lambda hands the function (`add_source_metadata`: eventSourceARN, the TTL
identity, SQS's camelCase fields), drops what no FilterCriteria pattern matches (`filter_events`), and
then delivers the rest its own way: a shard through its batching state machine, a queue in
concurrent batches. Unlike LocalStack, metadata comes before filtering: patterns match the record
as the function would receive it, which is what AWS documents.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from ws_emulator.sources.filters import matches_any

RecordT = TypeVar("RecordT")
# Runs a blocking boto3 call off the event loop (the event sources' own thread pool).
RunBlocking = Callable[..., Awaitable[Any]]


class Poller(ABC, Generic[RecordT]):
    """One event source mapping's poll, metadata and filter steps; delivery is the subclass's."""

    @property
    @abstractmethod
    def filters(self) -> Sequence[dict[str, Any]]:
        """The mapping's FilterCriteria patterns (OR-ed; none means every record passes)."""

    @abstractmethod
    async def poll_events(self) -> list[dict[str, Any]]:
        """Raw records from the source, oldest first (an empty list when there is nothing new)."""

    @abstractmethod
    def add_source_metadata(self, raw: dict[str, Any]) -> RecordT:
        """One raw record as the function receives it."""

    def filter_view(self, record: RecordT) -> Any:
        """What the filter patterns are matched against (the record itself unless overridden)."""
        return record

    def filter_events(self, records: Sequence[RecordT]) -> tuple[list[RecordT], list[RecordT]]:
        """(kept, dropped): records matching no pattern are dropped without invoking, as Lambda does."""
        if not self.filters:
            return list(records), []
        kept: list[RecordT] = []
        dropped: list[RecordT] = []
        for record in records:
            (kept if matches_any(self.filters, self.filter_view(record)) else dropped).append(record)
        return kept, dropped
