"""--stream-reorder end to end: transactions' records reach the function interleaved, per item in order."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ws_emulator.aws.services import LocalAws
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.reorder import stream_reorder
from ws_emulator.sources.supervisor import EventSources
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "devserver" / "template.yaml"
LOG = logging.getLogger("test.reorder")


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    local = LocalAws()
    local.start()
    yield local
    local.stop()


def put(table: str, pk: str, version: int) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "v": {"N": str(version)}}}}


async def deliveries(tmp_path: Path, aws: LocalAws, **options: Any) -> list[list[dict[str, Any]]]:
    """Commit T1 = {a@1, b@1}, T2 = {a@2, c@1}, T3 = {b@2, c@2}; then poll from TRIM_HORIZON once."""
    template = load_template(FIXTURE, stack_name=f"r{uuid.uuid4().hex[:8]}")
    aws.provision(template, {})
    table = template.tables["RecordsTable"].name
    ddb = aws.client("dynamodb")
    for transaction in ([("a", 1), ("b", 1)], [("a", 2), ("c", 1)], [("b", 2), ("c", 2)]):
        ddb.transact_write_items(TransactItems=[put(table, pk, v) for pk, v in transaction])
    log = tmp_path / f"{template.stack_name}.jsonl"
    runtime = FunctionRuntime(
        template, env_overrides=aws.function_env() | {"BATCH_LOG": str(log)}, url_rewrites={}, log=LOG
    )
    await runtime.start()
    sources = EventSources(
        template, aws, runtime, log=LOG, enable_schedules=False, enable_ttl=False, **options
    )
    await sources.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            batches = (
                [json.loads(line)["Records"] for line in log.read_text().splitlines()] if log.exists() else []
            )
            if sum(len(b) for b in batches) >= 6:
                return batches
            await asyncio.sleep(0.05)
        raise AssertionError(f"not all records delivered: {batches}")
    finally:
        await sources.stop()
        await runtime.stop()


def order(batches: list[list[dict[str, Any]]]) -> list[str]:
    return [
        f"{r['dynamodb']['Keys']['pk']['S']}@{r['dynamodb']['NewImage']['v']['N']}"
        for b in batches
        for r in b
    ]


def sequence_numbers(batches: list[list[dict[str, Any]]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for b in batches for r in b]


async def test_by_default_records_arrive_in_commit_order(tmp_path: Path, aws: LocalAws) -> None:
    batches = await deliveries(tmp_path, aws)
    assert order(batches) == ["a@1", "b@1", "a@2", "c@1", "b@2", "c@2"]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stream_reorder_interleaves_transactions_and_keeps_each_item_in_order(
    tmp_path: Path, aws: LocalAws, seed: int
) -> None:
    # GIVEN three committed transactions and a mapping in --stream-reorder mode
    batches = await deliveries(tmp_path, aws, stream_order=stream_reorder(seed))
    delivered = order(batches)
    # THEN the function sees the records out of commit order...
    assert delivered != ["a@1", "b@1", "a@2", "c@1", "b@2", "c@2"]
    assert sorted(delivered) == ["a@1", "a@2", "b@1", "b@2", "c@1", "c@2"]
    # ...each item's records still in order...
    for item in "abc":
        assert [d for d in delivered if d[0] == item] == [f"{item}@1", f"{item}@2"]
    # ...and sequence numbers increasing in delivery order, as they do through a shard on AWS
    numbers = sequence_numbers(batches)
    assert numbers == sorted(numbers) and len(set(numbers)) == 6
