"""Fixes to the embedded moto (5.2) that the emulator relies on.

moto is written for unit tests, where tables hold a few items. The emulator runs chat workloads through
it for minutes at a time, which showed three kinds of problem: races under concurrent requests, memory
that is never freed, and costs that grow with the size of a table or the age of its stream. Each fix
below is applied once per process to moto's classes and keeps moto's observable behaviour; the
DynamoDB requests of one table are run one at a time by the emulator (see `aws.dynamodb_locks`).
"""

from __future__ import annotations

import copy
import inspect
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_applied: set[str] = set()
_lock = threading.Lock()
_local = threading.local()  # per request thread: the partition a Query reads, the keys a transaction writes

_KEPT_SHARD_ITERATORS = 10_000
_KEPT_STREAM_RECORDS = 10_000


def apply() -> None:
    """Apply every fix (idempotent)."""
    with _lock:
        if not _applied:
            _query_reads_one_partition()
            _transactions_snapshot_what_they_write()
            _stop_instance_tracking()
            _backend_found_once_per_host()
            _applied.add("all")


# ---- Query ---------------------------------------------------------------------------------------


def _query_reads_one_partition() -> None:
    """A Query on a table's own key reads its partition only.

    moto's `Table.query` builds `all_items()` - every item of the table, sorted - and then keeps those
    with the queried partition key. Every Query therefore cost O(n log n) in the table's size: with a
    thousand connections' worth of items, one Query of a ten-item partition sorted thousands of items.
    An index Query has no partition to read (moto keeps no per-index storage): it still looks at every
    item, but without sorting the whole table first, since moto sorts what the index matched by the
    index's keys and then the table's anyway. The sweeper's Queries of the sparse `Due` index each sorted
    the whole table before: with 2,000 connections joined, a sweep made the gateway's own requests to
    the embedded DynamoDB time out.
    """
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> list[Any]:
        only = getattr(_local, "partition", None)
        if only is not None and only[0] is self:
            return list(only[1].values()) if only[1] is not None else _unsorted_items(self)
        return original_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name"):
            _local.partition = (self, None)  # every item, unsorted: moto sorts the index's matches itself
            try:
                return original_query(self, *args, **kwargs)
            finally:
                _local.partition = None
        if hash_key is None or not self.range_key_attr:
            return original_query(self, *args, **kwargs)
        partition = self.items.get(hash_key) or {}  # .get: never create an empty partition
        _local.partition = (self, partition)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _local.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def _unsorted_items(table: Any) -> list[Any]:
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


# ---- The server's dispatch ----------------------------------------------------------------------


def _backend_found_once_per_host() -> None:
    """The server finds a request's service once per host, not on every request.

    moto's `DomainDispatcherApplication.get_backend_for_host` lists moto's package folder (a `stat` per
    service, about 150) and then tries every service's URL patterns in turn, on every request, holding
    the dispatcher's one lock: every call to the embedded AWS waited for it. The answer depends on the
    host only (the patterns are fixed at import), so it is kept per host.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        found: dict[str | None, Any] = self.__dict__.setdefault("_emulator_backend_by_host", {})
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# ---- TransactWriteItems --------------------------------------------------------------------------


def _transactions_snapshot_what_they_write() -> None:
    """`TransactWriteItems` keeps a rollback copy of the items it writes, not of whole tables.

    moto deep-copies every table a transaction touches before running it, so that it can put the copy
    back if a condition fails. An append of one chat message deep-copied the whole messages table, and
    each message cost more than the one before. Now the copy shares every item the transaction does
    not write and deep-copies only those it does (an Update changes its item in place).

    Two more fixes keep the stream right across a rollback:
    - the copy shares the table's stream shard, whose records are never changed once written (moto's
      own copy duplicated the whole stream history each time);
    - a rollback keeps the live shard, trimmed back to where it was, so open shard iterators go on
      reading it (with moto's copy the stream went silent after the first cancelled transaction).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard, Table

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {name: t.stream_shard for name, t in self.tables.items() if t.stream_shard is not None}
        lengths = {name: len(shard.items) for name, shard in shards.items()}
        with _writing(_writes_of(self, transact_items)):
            try:
                original(self, transact_items)
            except Exception:
                for name, shard in shards.items():
                    del shard.items[lengths[name] :]  # a cancelled transaction leaves no record
                    table = self.tables.get(name)
                    if table is not None:
                        shard.table = table
                        table.stream_shard = shard
                raise

    Table.__deepcopy__ = _table_snapshot  # type: ignore[attr-defined]
    StreamShard.__deepcopy__ = _shard_copy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _writes_of(backend: Any, transact_items: list[dict[str, Any]]) -> dict[str, set[Any]] | None:
    """(hash, range) keys per table; None when an entry is malformed (moto's own checks report it)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    writes: dict[str, set[Any]] = {}
    for entry in transact_items:
        for op in entry.values():
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                return None
            key = op.get("Key") or op.get("Item") or {}
            hash_value = key.get(table.hash_key_attr)
            range_value = key.get(table.range_key_attr) if table.range_key_attr else None
            if hash_value is None or (table.range_key_attr and range_value is None):
                return None
            writes.setdefault(table.name, set()).add(
                (DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None)
            )
    return writes


def _table_snapshot(table: Any, memo: dict[int, Any]) -> Any:
    """`copy.deepcopy` of a moto Table: inside a transaction, a copy of the items it writes only."""
    keys = (getattr(_local, "writes", None) or {}).get(table.name)
    if keys is None:
        return _deepcopy_attributes(table, memo)
    new = copy.copy(table)
    memo[id(table)] = new
    items = copy.copy(table.items)  # a defaultdict still: a rolled-back table must accept new keys
    for hash_key, range_key in keys:
        current = items.get(hash_key)
        if current is None:
            continue
        if table.range_key_attr is None:
            items[hash_key] = copy.deepcopy(current)
        else:
            partition = dict(current)
            if range_key in partition:
                partition[range_key] = copy.deepcopy(partition[range_key])
            items[hash_key] = partition
    new.items = items
    return new


def _shard_copy(shard: Any, memo: dict[int, Any]) -> Any:
    """`copy.deepcopy` of a stream shard: its records are never changed once written, so they are shared."""
    new = copy.copy(shard)
    memo[id(shard)] = new
    new.table = copy.deepcopy(shard.table, memo)
    new.items = list(shard.items)
    return new


@contextmanager
def _writing(writes: dict[str, set[Any]] | None) -> Iterator[None]:
    _local.writes = writes
    try:
        yield
    finally:
        _local.writes = None


def _deepcopy_attributes(obj: Any, memo: dict[int, Any]) -> Any:
    """What `copy.deepcopy` does for a plain object, for when a class defines its own `__deepcopy__`."""
    cls: Any = type(obj)
    new = cls.__new__(cls)
    memo[id(obj)] = new
    for name, value in obj.__dict__.items():
        setattr(new, name, copy.deepcopy(value, memo))
    return new


# ---- memory --------------------------------------------------------------------------------------


def _stop_instance_tracking() -> None:
    """Stop moto from keeping every model instance it ever created.

    moto appends each instance of its models to a class-level list, for its dashboard only: every item
    ever written or replaced, and every table snapshot a transaction made. Nothing is ever freed, so the
    emulator's memory grew without bound (a soak measured +370 MB a minute). The emulator never serves
    that dashboard.
    """
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]
    reset_model_data()

    # Likewise every shard iterator GetRecords hands out is kept (each poll makes one, 4 a second per
    # shard): keep the newest ones only. AWS expires iterators after 15 minutes anyway. And every stream
    # record ever written is kept: keep the newest _KEPT_STREAM_RECORDS per shard (AWS keeps 24 hours).
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records
    original_get = StreamShard.get

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        shard = self.shard_iterators[iterator_arn].stream_shard
        result: dict[str, Any] = original(self, iterator_arn, limit)
        iterators = self.shard_iterators
        for stale in list(itertools.islice(iterators, max(0, len(iterators) - _KEPT_SHARD_ITERATORS))):
            del iterators[stale]
        _trim(shard)
        return result

    def get_from_oldest_kept(self: Any, start: int, quantity: int) -> list[dict[str, Any]]:
        # an iterator older than the oldest record kept reads from there (as from TRIM_HORIZON)
        return original_get(self, max(start, self.starting_sequence_number), quantity)

    StreamShard.get = get_from_oldest_kept  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def _trim(shard: Any) -> None:
    """Drop a shard's oldest records beyond _KEPT_STREAM_RECORDS (in steps of a tenth, not per record).

    Sequence numbers stay as they were: moto numbers a record by its position plus the shard's starting
    number, so the start moves up by as many records as are dropped. It runs inside GetRecords, which
    holds the table's lock like every request on that table (never in the middle of a transaction).
    """
    excess = len(shard.items) - _KEPT_STREAM_RECORDS
    if excess >= max(1, _KEPT_STREAM_RECORDS // 10):
        del shard.items[:excess]
        shard.starting_sequence_number += excess
