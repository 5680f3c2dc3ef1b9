"""DynamoDB TTL emulation: a background sweeper deleting expired items, marked as service deletions."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ws_emulator.template.specs import Template

# AWS skips items whose TTL is more than five years in the past (probably not epoch seconds).
_MAX_PAST_S = 5 * 365 * 24 * 3600
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def is_expired(item: dict[str, Any], attribute: str, now: float) -> bool:
    """Whether the TTL process would delete `item` (DynamoDB JSON) at `now` (epoch seconds)."""
    value = item.get(attribute)
    if not isinstance(value, dict) or "N" not in value:
        return False  # missing or not a Number: TTL ignores the item
    try:
        expires = float(value["N"])
    except ValueError:
        return False
    return now - _MAX_PAST_S <= expires <= now


def key_fingerprint(keys: dict[str, Any]) -> str:
    """The same string for equal keys, whichever API returned them (Binary keys come as bytes)."""
    return json.dumps(keys, sort_keys=True, separators=(",", ":"), default=_bytes_to_text)


def _bytes_to_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"unexpected key value {value!r}")


class TtlMarks:
    """Tells stream mappings which REMOVE records come from the sweeper (one inbox per mapping)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inboxes: dict[int, set[tuple[str, str]]] = {}

    def register(self) -> int:
        with self._lock:
            consumer = len(self._inboxes)
            self._inboxes[consumer] = set()
            return consumer

    def mark(self, table: str, keys: dict[str, Any]) -> None:
        entry = (table, key_fingerprint(keys))
        with self._lock:
            for inbox in self._inboxes.values():
                inbox.add(entry)

    def unmark(self, table: str, keys: dict[str, Any]) -> None:
        entry = (table, key_fingerprint(keys))
        with self._lock:
            for inbox in self._inboxes.values():
                inbox.discard(entry)

    def take(self, consumer: int, table: str, keys: dict[str, Any]) -> bool:
        entry = (table, key_fingerprint(keys))
        with self._lock:
            inbox = self._inboxes.get(consumer, set())
            if entry in inbox:
                inbox.discard(entry)
                return True
            return False


class TtlSweeper:
    """Every `interval_s`, scans TTL-enabled tables and deletes expired items (AWS's background job).

    A pass is a Scan of each table, which holds the embedded DynamoDB for as long as it takes, so on a
    large table the sweeper waits `BUSY_FACTOR` times its last pass before the next one: it never takes
    more than a tenth of the database's time. (AWS itself deletes expired items within days.)
    """

    BUSY_FACTOR = 9

    def __init__(
        self,
        template: Template,
        client_factory: Callable[[], Any],
        marks: TtlMarks,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        log: logging.Logger | None = None,
    ) -> None:
        self._tables = {t.name: t for t in template.tables.values() if t.ttl_attribute}
        self._client_factory = client_factory
        self._client: Any = None
        self._marks = marks
        self.interval_s = interval_s
        self._clock = clock
        self._log = log or logging.getLogger("ws_emulator.ttl")
        self.deleted = 0

    @property
    def active(self) -> bool:
        return bool(self._tables)

    def sweep(self) -> int:
        """One pass over every TTL table (blocking; run it in a thread). Returns items deleted."""
        if self._client is None:
            self._client = self._client_factory()
        deleted = 0
        for table in self._tables.values():
            assert table.ttl_attribute is not None
            key_names = [k["AttributeName"] for k in table.create_args["KeySchema"]]
            deleted += self._sweep_table(table.name, table.ttl_attribute, key_names)
        self.deleted += deleted
        return deleted

    def _sweep_table(self, table: str, attribute: str, key_names: list[str]) -> int:
        now = self._clock()
        deleted = 0
        names = {f"#k{i}": k for i, k in enumerate(key_names)} | {"#ttl": attribute}
        kwargs: dict[str, Any] = {
            "TableName": table,
            # Compared here, not in a FilterExpression: moto 5.2 raises on `<=` between S and N.
            "FilterExpression": "attribute_exists(#ttl)",
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
        }
        while True:
            page = self._client.scan(**kwargs)
            for item in page.get("Items", []):
                if is_expired(item, attribute, now) and self._delete(table, attribute, key_names, item):
                    deleted += 1
            if "LastEvaluatedKey" not in page:
                return deleted
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete(self, table: str, attribute: str, key_names: list[str], item: dict[str, Any]) -> bool:
        keys = {k: item[k] for k in key_names}
        # Mark first: the stream record can be read before delete_item even returns.
        self._marks.mark(table, keys)
        try:
            self._client.delete_item(
                TableName=table,
                Key=keys,
                # Only if nobody extended or removed it since the scan.
                ConditionExpression="#ttl = :seen",
                ExpressionAttributeNames={"#ttl": attribute},
                ExpressionAttributeValues={":seen": item[attribute]},
            )
        except ClientError as exc:
            self._marks.unmark(table, keys)
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                self._log.warning("TTL delete on %s failed: %s", table, exc)
            return False
        return True

    async def run(self, run_blocking: Callable[[Callable[[], int]], Any]) -> None:
        """Sweep forever; `run_blocking` runs the blocking pass off the event loop."""
        while True:
            started = time.monotonic()
            try:
                count = await run_blocking(self.sweep)
                if count:
                    self._log.info("TTL sweeper deleted %d expired item(s)", count)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed pass must not stop the sweeper; the next one retries
                self._log.exception("TTL sweep failed")
            await asyncio.sleep(self.pause_after(time.monotonic() - started))

    def pause_after(self, pass_seconds: float) -> float:
        """How long to wait after a pass that took `pass_seconds`."""
        return max(self.interval_s, self.BUSY_FACTOR * pass_seconds)
