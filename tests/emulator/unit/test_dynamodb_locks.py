"""The embedded DynamoDB's locking: requests on different tables overlap, on one table they do not."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest

from ws_emulator.aws.dynamodb_locks import (
    DynamoDBLocks,
    table_from_arn,
    tables_of,
    transaction_conflict_body,
)
from ws_emulator.faults import Faults

WAIT_S = 10.0  # generous: only reached when the behaviour is wrong


class BlockingApp:
    """A stand-in for moto's WSGI app: each request waits until the test releases its table."""

    def __init__(self) -> None:
        self.entered: dict[str, threading.Event] = {}
        self.release: dict[str, threading.Event] = {}
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def gate(self, label: str) -> None:
        self.entered[label] = threading.Event()
        self.release[label] = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.loads(environ["wsgi.input"].read())  # the middleware left the body readable
        label = body["label"]
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.entered[label].set()
        self.release[label].wait(WAIT_S)
        with self._lock:
            self.active -= 1
        start_response("200 OK", [])
        return [b"{}"]


def request(app: DynamoDBLocks, operation: str, body: dict[str, Any]) -> threading.Thread:
    raw = json.dumps(body).encode()
    environ = {
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    thread = threading.Thread(target=lambda: app(environ, lambda *a: None), daemon=True)
    thread.start()
    return thread


def test_requests_on_different_tables_run_at_the_same_time():
    inner = BlockingApp()
    app = DynamoDBLocks(inner, Faults())
    inner.gate("a")
    inner.gate("b")
    first = request(app, "PutItem", {"TableName": "A", "label": "a"})
    assert inner.entered["a"].wait(WAIT_S)
    # WHEN a request on another table arrives while the first is still inside moto
    second = request(app, "Query", {"TableName": "B", "label": "b"})
    # THEN it gets in too, without waiting for the first
    assert inner.entered["b"].wait(WAIT_S)
    assert inner.most_active == 2
    inner.release["a"].set()
    inner.release["b"].set()
    first.join(WAIT_S)
    second.join(WAIT_S)


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("PutItem", {"TableName": "A"}),
        # a transaction touching A waits for A, whatever else it touches
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "B"}}, {"Update": {"TableName": "A"}}]},
        ),
        # control-plane requests run alone
        ("DescribeTable", {"TableName": "C"}),
    ],
)
def test_a_request_on_a_busy_table_or_a_control_plane_request_waits(operation, body):
    inner = BlockingApp()
    app = DynamoDBLocks(inner, Faults())
    inner.gate("first")
    inner.gate("second")
    first = request(app, "UpdateItem", {"TableName": "A", "label": "first"})
    assert inner.entered["first"].wait(WAIT_S)
    second = request(app, operation, body | {"label": "second"})
    # THEN the second stays out while the first holds table A...
    assert not inner.entered["second"].wait(0.3)
    # ...and runs once it is done
    inner.release["first"].set()
    assert inner.entered["second"].wait(WAIT_S)
    assert inner.most_active == 1
    inner.release["second"].set()
    first.join(WAIT_S)
    second.join(WAIT_S)


def test_one_lock_for_everything_when_per_table_is_off():
    inner = BlockingApp()
    app = DynamoDBLocks(inner, Faults(), per_table=False)
    inner.gate("a")
    inner.gate("b")
    first = request(app, "PutItem", {"TableName": "A", "label": "a"})
    assert inner.entered["a"].wait(WAIT_S)
    second = request(app, "PutItem", {"TableName": "B", "label": "b"})
    assert not inner.entered["b"].wait(0.3)
    inner.release["a"].set()
    assert inner.entered["b"].wait(WAIT_S)
    inner.release["b"].set()
    first.join(WAIT_S)
    second.join(WAIT_S)


def test_the_tables_of_each_kind_of_request():
    assert tables_of("GetItem", {"TableName": "T"}) == ["T"]
    assert tables_of("BatchWriteItem", {"RequestItems": {"B": [], "A": []}}) == ["A", "B"]
    assert tables_of(
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "Z"}}, {"ConditionCheck": {"TableName": "A"}}]},
    ) == ["A", "Z"]
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/Msgs/stream/2026-12-01T00:00:00.000"
    assert tables_of("GetRecords", {"ShardIterator": f"{arn}|1|abc"}) == ["Msgs"]
    assert tables_of("DescribeStream", {"StreamArn": arn}) == ["Msgs"]
    assert table_from_arn("arn:aws:sqs:us-east-1:1:q") is None
    # unknown shapes run alone rather than guess
    assert tables_of("PutItem", {}) is None
    assert tables_of("TransactWriteItems", {"TransactItems": [{"Put": {}}]}) is None
    assert tables_of("ExecuteStatement", {"Statement": "SELECT * FROM T"}) is None
    assert tables_of("CreateTable", {"TableName": "T"}) is None


def test_conflict_body_names_one_item_and_lists_every_reason_in_order():
    body = json.loads(transaction_conflict_body(3, 1))
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
    assert [r["Code"] for r in body["CancellationReasons"]] == ["None", "TransactionConflict", "None"]
    assert body["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, TransactionConflict, None]"
    )


def test_conflicts_follow_their_rate_and_pick_an_item():
    assert Faults().conflict_transaction(3) is None
    faults = Faults(transaction_conflict_rate=0.5, seed=2)
    picks = [faults.conflict_transaction(4) for _ in range(400)]
    chosen = [p for p in picks if p is not None]
    assert 140 < len(chosen) < 260
    assert set(chosen) == {0, 1, 2, 3}
    assert faults.as_dict()["transactionConflicts"] == len(chosen)
    with pytest.raises(ValueError):
        Faults.from_dict({"transactionConflictRate": 2})
