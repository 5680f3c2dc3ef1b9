"""The emulator's fixes to the embedded moto: same answers as DynamoDB, at a cost that does not grow
with the table (counted in moto's own comparisons and copies, not timed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.dynamo_type import DynamoType

from ws_emulator.aws.services import LocalAws

OTHER_PARTITIONS = 400


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    local = LocalAws()
    local.start()
    yield local
    local.stop()


@pytest.fixture
def table(aws: LocalAws) -> str:
    """A PK/SK table with a stream and a sparse index, holding OTHER_PARTITIONS unrelated partitions."""
    name = f"t{uuid.uuid4().hex[:8]}"
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
            {"AttributeName": "shard", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByShard",
                "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    for i in range(OTHER_PARTITIONS):
        ddb.put_item(TableName=name, Item={"PK": {"S": f"other#{i}"}, "SK": {"S": "x"}, "n": {"N": str(i)}})
    return name


class Counting:
    """Counts calls of one moto method (or module function) while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        self.calls = 0
        original = getattr(owner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)


def put(aws: LocalAws, table: str, pk: str, sk: str, **attrs: str) -> None:
    item = {"PK": {"S": pk}, "SK": {"S": sk}} | {k: {"S": v} for k, v in attrs.items()}
    aws.client("dynamodb").put_item(TableName=table, Item=item)


def sks(response: dict[str, Any]) -> list[str]:
    return [i["SK"]["S"] for i in response["Items"]]


def test_query_answers_from_the_partition_as_dynamodb_does(aws: LocalAws, table: str) -> None:
    ddb = aws.client("dynamodb")
    for sk in ["b", "a", "d", "c", "e"]:
        put(aws, table, "chan#1", sk, colour="red" if sk in "ace" else "blue")
    put(aws, table, "chan#10", "a")  # a key that sorts next to it must not leak in

    def query(**extra: Any) -> dict[str, Any]:
        return ddb.query(
            TableName=table,
            KeyConditionExpression="PK = :p",
            ExpressionAttributeValues={":p": {"S": "chan#1"}} | extra.pop("values", {}),
            **extra,
        )

    assert sks(query()) == ["a", "b", "c", "d", "e"]
    assert sks(query(ScanIndexForward=False, Limit=2)) == ["e", "d"]
    first = query(Limit=2)
    assert (sks(first), first["LastEvaluatedKey"]["SK"]) == (["a", "b"], {"S": "b"})
    assert sks(query(Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])) == ["c", "d"]
    red = query(FilterExpression="colour = :c", values={":c": {"S": "red"}})
    assert (sks(red), red["ScannedCount"]) == (["a", "c", "e"], 5)
    between = ddb.query(
        TableName=table,
        KeyConditionExpression="PK = :p AND SK BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":p": {"S": "chan#1"}, ":lo": {"S": "b"}, ":hi": {"S": "d"}},
    )
    assert sks(between) == ["b", "c", "d"]
    missing = ddb.query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "none"}}
    )
    assert missing["Items"] == [] and missing["Count"] == 0


def test_query_does_not_sort_the_whole_table(
    aws: LocalAws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for sk in ["a", "b", "c"]:
        put(aws, table, "small", sk)
    comparisons = Counting(monkeypatch, DynamoType, "__lt__")
    result = aws.client("dynamodb").query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "small"}}
    )
    assert sks(result) == ["a", "b", "c"]
    # moto as shipped sorts all OTHER_PARTITIONS + 3 items (thousands of comparisons) for this Query
    assert comparisons.calls < 20


def test_index_queries_still_see_the_whole_table(aws: LocalAws, table: str) -> None:
    put(aws, table, "p1", "a", shard="s1")
    put(aws, table, "p2", "b", shard="s1")
    put(aws, table, "p3", "c", shard="s2")
    result = aws.client("dynamodb").query(
        TableName=table,
        IndexName="ByShard",
        KeyConditionExpression="shard = :s",
        ExpressionAttributeValues={":s": {"S": "s1"}},
    )
    assert sorted(i["PK"]["S"] for i in result["Items"]) == ["p1", "p2"]


def test_an_index_query_sorts_only_what_it_matched_in_dynamodb_order(
    aws: LocalAws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for pk in ["p3", "p1", "p2"]:
        put(aws, table, pk, "x", shard="s9")
    comparisons = Counting(monkeypatch, DynamoType, "__lt__")
    result = aws.client("dynamodb").query(
        TableName=table,
        IndexName="ByShard",
        KeyConditionExpression="shard = :s",
        ExpressionAttributeValues={":s": {"S": "s9"}},
    )
    # the index's items come in the order DynamoDB gives them here (then the table's key), and moto as
    # shipped sorted all OTHER_PARTITIONS + 3 items of the table first (thousands of comparisons)
    assert [i["PK"]["S"] for i in result["Items"]] == ["p1", "p2", "p3"]
    assert comparisons.calls < 20


def transaction(table: str, *, head_condition: str) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": table,
                "Key": {"PK": {"S": "chan"}, "SK": {"S": "HEAD"}},
                "UpdateExpression": "SET lastId = :id",
                "ConditionExpression": head_condition,
                "ExpressionAttributeValues": {":id": {"S": "2"}},
            }
        },
        {"Put": {"TableName": table, "Item": {"PK": {"S": "chan"}, "SK": {"S": "MSG#2"}}}},
    ]


def stream_reader(aws: LocalAws, table: str) -> Any:
    ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]

    def read() -> list[tuple[str, str]]:
        nonlocal iterator
        page = streams.get_records(ShardIterator=iterator)
        iterator = page["NextShardIterator"]
        return [(r["eventName"], r["dynamodb"]["Keys"]["SK"]["S"]) for r in page["Records"]]

    return read


def test_a_cancelled_transaction_changes_nothing_and_the_stream_goes_on(aws: LocalAws, table: str) -> None:
    ddb = aws.client("dynamodb")
    put(aws, table, "chan", "HEAD", lastId="5")
    read = stream_reader(aws, table)

    with pytest.raises(ClientError) as refused:
        # the Update runs (in place, in moto) before the Put's condition... here the head's fails
        ddb.transact_write_items(TransactItems=transaction(table, head_condition="lastId < :id"))
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    head = ddb.get_item(TableName=table, Key={"PK": {"S": "chan"}, "SK": {"S": "HEAD"}})["Item"]
    assert head["lastId"] == {"S": "5"}
    assert "Item" not in ddb.get_item(TableName=table, Key={"PK": {"S": "chan"}, "SK": {"S": "MSG#2"}})
    assert read() == []

    # a transaction whose first write succeeds and whose second fails is undone whole
    items = transaction(table, head_condition="lastId > :id")
    items[1]["Put"]["ConditionExpression"] = "attribute_not_exists(PK)"
    put(aws, table, "chan", "MSG#2", text="taken")
    read()  # that put's own record
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=items)
    head = ddb.get_item(TableName=table, Key={"PK": {"S": "chan"}, "SK": {"S": "HEAD"}})["Item"]
    assert head["lastId"] == {"S": "5"}
    assert read() == []

    # after the rollbacks, the table takes new partitions and the same stream goes on
    ddb.transact_write_items(TransactItems=transaction(table, head_condition="lastId > :id"))
    put(aws, table, "brand-new", "x")
    assert read() == [("MODIFY", "HEAD"), ("MODIFY", "MSG#2"), ("INSERT", "x")]
    assert ddb.get_item(TableName=table, Key={"PK": {"S": "brand-new"}, "SK": {"S": "x"}})["Item"]


def test_a_transaction_copies_only_what_it_writes(
    aws: LocalAws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(aws, table, "chan", "HEAD", lastId="1")
    copies = Counting(monkeypatch, DynamoType, "__deepcopy__")
    aws.client("dynamodb").transact_write_items(
        TransactItems=transaction(table, head_condition="lastId < :id")
    )
    # moto as shipped deep-copies every attribute of all OTHER_PARTITIONS items for its rollback copy
    assert 0 < copies.calls < 20


def test_a_stream_keeps_its_newest_records_and_readers_that_keep_up_miss_none(
    aws: LocalAws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models import dynamodb_backends

    from ws_emulator.aws import moto_fixes

    monkeypatch.setattr(moto_fixes, "_KEPT_STREAM_RECORDS", 20)
    shard = dynamodb_backends["123456789012"]["us-east-1"].get_table(table).stream_shard
    read = stream_reader(aws, table)
    seen: list[str] = []
    for i in range(100):
        put(aws, table, "chan", f"m{i:03}")
        if i % 7 == 6:
            seen += [sk for _, sk in read()]
    seen += [sk for _, sk in read()]
    assert seen == [f"m{i:03}" for i in range(100)]  # in order, none lost, none twice
    assert len(shard.items) <= 22  # not the 400 set-up records and 100 more

    # a reader from the shard's start gets the oldest record kept, not an error
    ddb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard_id = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    oldest = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=oldest["ShardIterator"])["Records"]
    assert records and records[-1]["dynamodb"]["Keys"]["SK"]["S"] == "m099"


def test_the_server_finds_a_requests_service_without_listing_moto_on_every_request(
    aws: LocalAws, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import backends

    listings = Counting(monkeypatch, backends, "list_of_moto_modules")
    ddb = aws.client("dynamodb")
    for sk in ["a", "b", "c", "d", "e"]:
        put(aws, table, "dispatch", sk)
    result = ddb.query(
        TableName=table, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "dispatch"}}
    )
    # every request still reaches DynamoDB, and moto's folder (about 150 stats) was listed at most once
    # for its host, where moto as shipped lists it on each of these 6 requests
    assert sks(result) == ["a", "b", "c", "d", "e"]
    assert listings.calls <= 1
