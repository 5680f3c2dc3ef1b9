"""Opt-in counting wrapper for a Lambda handler: counts every AWS call it makes via boto3 event hooks.

Activated only by a derived template (bench/templates.py): it sets `Handler: bench_hook.handler`,
`BENCH_HANDLER` to the real handler and `BENCH_COUNTS_DIR` to a directory. Before the real handler is
imported, `before-call`/`after-call` handlers are registered on every botocore session, so every client
the function builds is counted. After each invocation the process writes its totals to
`$BENCH_COUNTS_DIR/<function>-<pid>.json`; the bench sums those files. Generic: knows nothing of Parley.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections import defaultdict
from typing import Any

import botocore.session

_COUNTS: dict[str, Any] = {
    "invocations": 0,
    "handler_ms": 0.0,
    "records_in": 0,  # stream/SQS records handed to the function
    "calls": defaultdict(int),  # "service.Operation" -> calls
    "items_read": defaultdict(int),  # "service.Operation" -> items read (Count/ScannedCount/Item)
    "bytes_read": defaultdict(int),  # response body bytes of read calls
    "bytes_written": defaultdict(int),  # request parameter bytes of write calls (JSON), an item-size proxy
    "eventually_consistent_reads": 0,
    "batches": [],  # per invocation with records: [records, handler ms]
}
_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def _service(model: Any) -> str:
    return str(model.service_model.service_name)


def _before(model: Any, params: dict[str, Any], **_: Any) -> None:
    key = f"{_service(model)}.{model.name}"
    _COUNTS["calls"][key] += 1
    if model.name in _WRITES:
        _COUNTS["bytes_written"][key] += len(json.dumps(params, default=str))
    if model.name in _READS and not params.get("ConsistentRead"):
        _COUNTS["eventually_consistent_reads"] += 1


def _after(model: Any, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
    if model.name not in _READS:
        return
    key = f"{_service(model)}.{model.name}"
    if model.name == "Scan":
        items = int(parsed.get("ScannedCount", 0))
    elif model.name == "Query":
        items = int(parsed.get("Count", 0))
    elif model.name == "GetItem":
        items = 1 if parsed.get("Item") else 0
    else:
        items = (
            sum(len(v) for v in parsed.get("Responses", {}).values())
            if isinstance(parsed.get("Responses"), dict)
            else len(parsed.get("Responses", []))
        )
    _COUNTS["items_read"][key] += items
    _COUNTS["bytes_read"][key] += len(getattr(http_response, "content", b"") or b"")


_original_init = botocore.session.Session.__init__


def _counting_init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    # botocore passes handlers keyword arguments only; its stubs want a bare **kwargs signature
    self.register("before-call", _before)  # type: ignore[arg-type]
    self.register("after-call", _after)  # type: ignore[arg-type]


# Every session created from now on (boto3's default one included) counts; clients inherit its hooks.
botocore.session.Session.__init__ = _counting_init  # type: ignore[method-assign]

_module, _, _attr = os.environ["BENCH_HANDLER"].rpartition(".")
_real = getattr(importlib.import_module(_module), _attr)
_out = os.path.join(
    os.environ["BENCH_COUNTS_DIR"], f"{os.environ.get('AWS_LAMBDA_FUNCTION_NAME', 'fn')}-{os.getpid()}.json"
)


def handler(event: Any, context: Any) -> Any:
    started = time.perf_counter()
    try:
        return _real(event, context)
    finally:
        ms = (time.perf_counter() - started) * 1000
        _COUNTS["invocations"] += 1
        _COUNTS["handler_ms"] += ms
        records = event.get("Records") if isinstance(event, dict) else None
        if isinstance(records, list):
            _COUNTS["records_in"] += len(records)
            _COUNTS["batches"].append([len(records), round(ms, 2)])
        tmp = _out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(_COUNTS, fh)
        os.replace(tmp, _out)
