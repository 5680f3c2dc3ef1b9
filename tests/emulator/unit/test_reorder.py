"""--stream-reorder's shuffle: any interleaving of items, each item's records in order, numbers ascending."""

from __future__ import annotations

import random

from ws_emulator.sources.batching import StreamRecord
from ws_emulator.sources.reorder import interleave, stream_reorder


def record(pk: str, version: int, seq: int) -> StreamRecord:
    event = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"pk": {"S": pk}},
            "SequenceNumber": str(seq),
            "NewImage": {"v": {"N": str(version)}},
        },
    }
    return StreamRecord(sequence_number=str(seq), arrival=0.0, event=event)


def label(r: StreamRecord) -> str:
    return f"{r.event['dynamodb']['Keys']['pk']['S']}@{r.event['dynamodb']['NewImage']['v']['N']}"


def test_one_items_records_are_never_reordered():
    records = [record("a", v, 100 + v) for v in range(5)]
    assert interleave(records, random.Random(1)) == records


def test_items_are_interleaved_but_each_keeps_its_order_and_numbers_still_ascend():
    records = [record(pk, v, 100 + 3 * v + i) for v in range(4) for i, pk in enumerate("abc")]
    seen = set()
    for seed in range(30):
        out = interleave(records, random.Random(seed))
        labels = [label(r) for r in out]
        assert labels != [label(r) for r in records]
        assert sorted(labels) == sorted(label(r) for r in records)
        for pk in "abc":
            assert [x for x in labels if x[0] == pk] == [f"{pk}@{v}" for v in range(4)]
        numbers = [int(r.sequence_number) for r in out]
        assert numbers == sorted(numbers) == [int(r.sequence_number) for r in records]
        assert [int(r.event["dynamodb"]["SequenceNumber"]) for r in out] == numbers
        seen.add(tuple(labels))
    assert len(seen) > 20  # many different interleavings, not one fixed permutation


def test_a_shuffle_that_changed_nothing_is_still_changed():
    # Two records of two items: half the random interleavings are the input itself.
    records = [record("a", 1, 1), record("b", 1, 2)]
    for seed in range(20):
        assert [label(r) for r in interleave(records, random.Random(seed))] == ["b@1", "a@1"]


def test_the_same_seed_gives_the_same_order():
    records = [record(pk, 1, i) for i, pk in enumerate("abcdef")]
    assert [label(r) for r in stream_reorder(7)(records)] == [label(r) for r in stream_reorder(7)(records)]
