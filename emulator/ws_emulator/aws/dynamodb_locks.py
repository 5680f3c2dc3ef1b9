"""How the embedded moto server runs DynamoDB requests side by side: one lock per table, not one for all.

moto's DynamoDB backend is not thread-safe *within a table*: a write changes the table's item dicts
and its stream shard while a Query, a Scan or a transaction's rollback copy iterates them ("dictionary
changed size during iteration"). Requests on different tables share nothing mutable but the streams
backend's iterator registry, so each data-plane request takes the locks of the tables it names
(sorted, so two transactions cannot deadlock) under a shared lock; control-plane requests
(CreateTable, DescribeTable, ListStreams, PartiQL, anything not recognised) take that lock exclusively.
DynamoDB Streams requests also take one streams lock (moto keeps every shard iterator in one dict).

Where moto needs a table's lock, two requests on the same table never overlap, so the transaction
conflicts AWS has (a TransactWriteItems racing another write to the same item) cannot happen by
themselves: `Faults.conflict_transaction` injects them, shaped as DynamoDB returns them.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

from ws_emulator.faults import Faults

OWN_USER_AGENT = "ws-emulator-internal"  # the emulator's own requests: never fault-injected

THROTTLED_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
# Operations that touch only the tables their request names (everything else runs alone).
TABLE_OPERATIONS = THROTTLED_OPERATIONS
STREAM_OPERATIONS = frozenset({"GetRecords", "GetShardIterator", "DescribeStream"})

TRANSACTION_CONFLICT_MESSAGE = "Transaction is ongoing for the item"


class SharedExclusiveLock:
    """Many holders in shared mode, or one in exclusive mode (waiting exclusives go first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting_exclusive:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_exclusive += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def table_from_arn(arn: str) -> str | None:
    """`arn:aws:dynamodb:r:a:table/NAME/stream/...` (a stream ARN or moto's shard iterator) -> NAME."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[5].startswith("table/"):
        return None
    return parts[5].split("/")[1] or None


def _transaction_tables(body: dict[str, Any]) -> list[str] | None:
    names = set()
    for entry in body.get("TransactItems") or []:
        ops = entry.values() if isinstance(entry, dict) else [None]
        for op in ops:
            name = op.get("TableName") if isinstance(op, dict) else None
            if not isinstance(name, str):
                return None
            names.add(name)
    return sorted(names) or None


def tables_of(operation: str, body: dict[str, Any]) -> list[str] | None:
    """The tables one request reads or writes; None when it is not known (then it runs alone)."""
    name: Any = None
    if operation in ("BatchGetItem", "BatchWriteItem"):
        items = body.get("RequestItems")
        return sorted(items) if isinstance(items, dict) and items else None
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return _transaction_tables(body)
    if operation in TABLE_OPERATIONS:
        name = body.get("TableName")
    elif operation in STREAM_OPERATIONS:
        arn = body.get("StreamArn") or body.get("ShardIterator")
        name = table_from_arn(arn) if isinstance(arn, str) else None
    return [name] if isinstance(name, str) and name else None


def transaction_conflict_body(items: int, conflicted: int) -> bytes:
    """A TransactionCanceledException as DynamoDB sends it: one reason per item, in request order."""
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(items)]
    reasons[conflicted] = {"Code": "TransactionConflict", "Message": TRANSACTION_CONFLICT_MESSAGE}
    codes = ", ".join(reason["Code"] for reason in reasons)
    return json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "CancellationReasons": reasons,
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{codes}]",
        }
    ).encode()


def throttled_body() -> bytes:
    return json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded "
            "(injected by ws-emulator)",
        }
    ).encode()


def _answer(start_response: Any, body: bytes) -> list[bytes]:
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]


class DynamoDBLocks:
    """WSGI middleware around moto's app: per-table locks for DynamoDB, and its fault injection.

    `per_table=False` restores one lock for every DynamoDB request (what the emulator did before;
    kept for the benchmark that compares the two).
    """

    def __init__(self, app: Any, faults: Faults, *, per_table: bool = True) -> None:
        self.app = app
        self.faults = faults
        self.per_table = per_table
        self._all = SharedExclusiveLock()
        self._streams = threading.Lock()
        self._tables: dict[str, threading.Lock] = {}
        self._tables_guard = threading.Lock()

    def _table_lock(self, name: str) -> threading.Lock:
        with self._tables_guard:
            return self._tables.setdefault(name, threading.Lock())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB"):
            return self.app(environ, start_response)  # SQS long polls and SSM stay concurrent
        operation = target.rpartition(".")[2]
        body = self._read_body(environ)
        own = OWN_USER_AGENT in environ.get("HTTP_USER_AGENT", "")
        if not own and operation in THROTTLED_OPERATIONS and self.faults.throttle_dynamodb():
            return _answer(start_response, throttled_body())
        tables = tables_of(operation, body) if self.per_table else None
        with contextlib.ExitStack() as held:
            if tables is None:
                held.enter_context(self._all.exclusive())
            else:
                held.enter_context(self._all.shared())
                for name in tables:
                    held.enter_context(self._table_lock(name))
                if operation in STREAM_OPERATIONS:
                    held.enter_context(self._streams)
            if not own and operation == "TransactWriteItems":
                items = body.get("TransactItems") or []
                conflicted = self.faults.conflict_transaction(len(items))
                if conflicted is not None:
                    return _answer(start_response, transaction_conflict_body(len(items), conflicted))
            return list(self.app(environ, start_response))

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> dict[str, Any]:
        """The JSON body, leaving an equal stream in place for moto to read."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            document = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}
