"""The embedded DynamoDB with one lock per table against one lock for all: does a slow request on one
table still hold up the requests on every other table?

`python -m bench.dynamodb_locks [--items 3000] [--seconds 5]`: one embedded moto server per mode; one
thread Scans a big table over and over (as the TTL sweeper or a test's Scan does) while another times
GetItem on a small table. moto is CPU-bound Python under one GIL, so per-table locks do not add
throughput; what they change is that a GetItem no longer waits for a whole Scan. Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import boto3
from botocore.config import Config

from ws_emulator.aws.services import LocalAws


def _client(aws: LocalAws) -> Any:
    # A function's client (not the emulator's own user agent), many connections.
    return boto3.client(
        "dynamodb",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=50, retries={"mode": "standard", "max_attempts": 1}),
    )


def _create(aws: LocalAws, tables: int, prefix: str) -> list[str]:
    ddb = aws.client("dynamodb")
    names = [f"{prefix}-{i}" for i in range(tables)]
    for name in names:
        ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    return names


def _fill(client: Any, table: str, items: int) -> None:
    for start in range(0, items, 25):
        batch = [
            {
                "PutRequest": {
                    "Item": {"pk": {"S": f"p{i % 50}"}, "sk": {"S": f"{i:08d}"}, "t": {"S": "x" * 200}}
                }
            }
            for i in range(start, min(items, start + 25))
        ]
        client.batch_write_item(RequestItems={table: batch})


def _scan_forever(client: Any, table: str, stop: threading.Event, scans: list[int]) -> None:
    while not stop.is_set():
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = client.scan(**kwargs)
            if "LastEvaluatedKey" not in page or stop.is_set():
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        scans[0] += 1


def run(per_table: bool, items: int, seconds: float) -> tuple[list[float], int]:
    """GetItem latencies (ms) on a small table while another thread Scans a big table, and scans done."""
    aws = LocalAws()
    aws.per_table_locks = per_table
    aws.start()
    try:
        big, small = _create(aws, 2, "per-table" if per_table else "global")
        scanner, reader = _client(aws), _client(aws)
        _fill(scanner, big, items)
        reader.put_item(TableName=small, Item={"pk": {"S": "k"}, "sk": {"S": "k"}})
        stop = threading.Event()
        scans = [0]
        thread = threading.Thread(target=_scan_forever, args=(scanner, big, stop, scans), daemon=True)
        thread.start()
        latencies = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            reader.get_item(TableName=small, Key={"pk": {"S": "k"}, "sk": {"S": "k"}})
            latencies.append((time.perf_counter() - started) * 1000)
        stop.set()
        thread.join()
        return latencies, scans[0]
    finally:
        aws.stop()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=3000, help="items in the scanned table")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for per_table in (False, True):
        latencies, scans = run(per_table, args.items, args.seconds)
        label = "one lock per table" if per_table else "one lock for all  "
        print(
            f"{label}: GetItem on a small table p50 {_percentile(latencies, 0.5):6.1f} ms, "
            f"p99 {_percentile(latencies, 0.99):6.1f} ms, {len(latencies) / args.seconds:5.0f}/s, "
            f"while {scans} full Scans of {args.items} items ran on another table",
            flush=True,
        )


if __name__ == "__main__":
    main()
