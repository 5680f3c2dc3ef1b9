"""Which tables a DynamoDB request writes, and the signals that wake the stream pollers watching them."""

import asyncio
import json

import pytest

from ws_emulator.aws.writes import TableWrites, written_tables


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("operation", ["PutItem", "UpdateItem", "DeleteItem"])
def test_a_single_item_write_names_its_table(operation: str) -> None:
    assert written_tables(operation, body({"TableName": "state", "Key": {}})) == {"state"}


def test_a_table_arn_names_the_table() -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/messages"
    assert written_tables("PutItem", body({"TableName": arn})) == {"messages"}


def test_batch_and_transaction_writes_name_every_table_they_write() -> None:
    batch = body({"RequestItems": {"a": [], "b": []}})
    transaction = body(
        {
            "TransactItems": [
                {"Put": {"TableName": "a"}},
                {"Update": {"TableName": "b"}},
                {"Delete": {"TableName": "c"}},
                {"ConditionCheck": {"TableName": "d"}},  # checks, writes nothing
            ]
        }
    )
    assert written_tables("BatchWriteItem", batch) == {"a", "b"}
    assert written_tables("TransactWriteItems", transaction) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("operation", "raw"),
    [
        ("Query", body({"TableName": "state"})),  # a read
        ("GetRecords", body({"ShardIterator": "x"})),
        ("PutItem", b"not json"),
        ("PutItem", body(["a list"])),
        ("PutItem", b""),
        ("BatchWriteItem", body({"RequestItems": ["a"]})),
        ("TransactWriteItems", body({"TransactItems": ["a", {"Put": "b"}]})),
    ],
)
def test_reads_and_unreadable_bodies_name_no_table(operation: str, raw: bytes) -> None:
    assert written_tables(operation, raw) == set()


async def test_a_write_wakes_only_the_pollers_of_its_table_even_from_another_thread() -> None:
    # GIVEN pollers watching two tables
    writes = TableWrites()
    state, messages = writes.watch("state"), writes.watch("messages")
    # WHEN the state table is written from a server thread
    await asyncio.to_thread(writes.notify, {"state"})
    # THEN its poller wakes and the other one does not
    assert await state.wait(5.0) is True
    assert await messages.wait(0.01) is False


async def test_a_cleared_signal_waits_for_the_next_write_and_an_unwatched_one_never_fires() -> None:
    writes = TableWrites()
    signal = writes.watch("state")
    writes.notify({"state"})
    await asyncio.sleep(0)  # the thread-safe set has run
    signal.clear()
    assert await signal.wait(0.01) is False
    writes.unwatch("state", signal)
    writes.notify({"state"})
    assert await signal.wait(0.01) is False
