"""`--stream-reorder`: one stream read's records of different items interleaved, as DynamoDB may deliver them.

DynamoDB keeps the records of one item in order within its shard, but promises no order between
items, and the records of different transactions may appear interleaved (developer guide,
"Transactions": consumers must not assume transactional ordering). The emulator's moto writes one
request at a time, so its stream is always in commit order and code that silently relies on that
order passes locally. This mode shuffles each batch of records read from a shard with one rule:
the records of one item (same `Keys`) keep their relative order. Sequence numbers are then handed
out again in delivery order, so they still increase through the shard as on AWS (a record's number
says where it is in the shard, not when its transaction committed). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable

from ws_emulator.sources.batching import StreamRecord

RecordOrder = Callable[[list[StreamRecord]], list[StreamRecord]]


def item_key(record: StreamRecord) -> str:
    """Identifies the item a record is about (its `Keys`, canonically)."""
    return json.dumps(record.event.get("dynamodb", {}).get("Keys", {}), sort_keys=True)


def interleave(records: list[StreamRecord], rng: random.Random) -> list[StreamRecord]:
    """A random interleaving of the records that keeps each item's records in their order.

    When more than one item is present the result always differs from the input (a shuffle that
    happened to change nothing would test nothing): the first record of the last item to appear
    is moved to the front.
    """
    queues: dict[str, list[StreamRecord]] = {}
    for record in records:
        queues.setdefault(item_key(record), []).append(record)
    if len(queues) < 2:
        return list(records)
    # Drawing the next item with probability proportional to its records left gives every
    # interleaving that keeps per-item order the same chance.
    pending = [list(reversed(q)) for q in queues.values()]
    order: list[StreamRecord] = []
    while pending:
        weights = [len(q) for q in pending]
        chosen = rng.choices(range(len(pending)), weights=weights)[0]
        order.append(pending[chosen].pop())
        if not pending[chosen]:
            pending.pop(chosen)
    if order == records:
        last_item = queues[list(queues)[-1]][0]
        order.remove(last_item)
        order.insert(0, last_item)
    return _renumbered(order, [r.sequence_number for r in records])


def _renumbered(order: list[StreamRecord], numbers: list[str]) -> list[StreamRecord]:
    ascending = sorted(numbers, key=int)
    renumbered = []
    for record, number in zip(order, ascending, strict=True):
        event = dict(record.event)
        event["dynamodb"] = dict(event.get("dynamodb", {})) | {"SequenceNumber": number}
        renumbered.append(dataclasses.replace(record, sequence_number=number, event=event))
    return renumbered


def stream_reorder(seed: int | None = None) -> RecordOrder:
    """The `RecordOrder` a shard poller applies to each read (seeded for reproducible tests)."""
    rng = random.Random(seed)  # noqa: S311 - test shuffling, not security

    def reorder(records: list[StreamRecord]) -> list[StreamRecord]:
        return interleave(records, rng)

    return reorder
