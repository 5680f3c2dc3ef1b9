"""Read moto's DynamoDB streams as Lambda would receive them, and play DynamoDB's TTL deleter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr


def matches(pattern: Any, value: Any) -> bool:
    """The subset of Lambda event filtering the template uses: nested objects and lists of exact values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and matches(p, value[k]) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


def _jsonable(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    record = dict(record)
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    dynamodb.setdefault("SizeBytes", 100)
    dynamodb.setdefault("StreamViewType", "NEW_AND_OLD_IMAGES")
    record["dynamodb"] = dynamodb
    record["eventSourceARN"] = stream_arn  # moto leaves it out (FACTS.md)
    return record


class StreamPump:
    """Follows every shard of the given tables' streams from the moment it is created."""

    def __init__(self, dynamodb: Any, streams: Any, filters: dict[str, list[dict[str, Any]]]) -> None:
        self._streams = streams
        self._filters = filters
        # keyed by (stream, shard): moto names the first shard of every stream alike
        self._iterators: dict[tuple[str, str], str] = {}
        self.dropped = 0
        for table in filters:
            arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
                it = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
                )
                self._iterators[(arn, shard["ShardId"])] = it["ShardIterator"]

    def poll(self, *, filtered: bool = True) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for (arn, shard_id), iterator in list(self._iterators.items()):
            page = self._streams.get_records(ShardIterator=iterator)
            self._iterators[(arn, shard_id)] = page["NextShardIterator"]
            table = next(t for t in self._filters if arn.split("/")[1] == t)
            for raw in page["Records"]:
                record = _jsonable(raw, arn)
                if filtered and not any(matches(p, record) for p in self._filters[table]):
                    self.dropped += 1
                    continue
                records.append(record)
        return records


def sweep_expired(table: Any, attribute: str, now_s: int) -> int:
    """Delete what DynamoDB's TTL process would (moto never does). Scan is fine here: it plays AWS."""
    deleted = 0
    key_names = [k["AttributeName"] for k in table.key_schema]
    page: dict[str, Any] = table.scan(FilterExpression=Attr(attribute).lte(now_s))
    while True:
        for item in page["Items"]:
            table.delete_item(Key={k: item[k] for k in key_names})
            deleted += 1
        if "LastEvaluatedKey" not in page:
            return deleted
        page = table.scan(
            FilterExpression=Attr(attribute).lte(now_s), ExclusiveStartKey=page["LastEvaluatedKey"]
        )
