"""Stream, queue and schedule invocations get event lines and records too, from the same recorder."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ws_emulator.app import schedule_fallbacks
from ws_emulator.aws.services import LocalAws
from ws_emulator.observe.lines import JsonEventFormatter
from ws_emulator.observe.recorder import InvocationRecorder
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.supervisor import EventSources
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"
LOG = logging.getLogger("test.invocation-lines")


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    local = LocalAws()
    local.start()
    yield local
    local.stop()


async def test_stream_and_queue_batches_get_lines_with_size_failures_and_lag(aws: LocalAws, caplog) -> None:
    # GIVEN the fixture app's stream and queue mappings, with the recorder on the runtime
    template = load_template(FIXTURE, stack_name=f"t{uuid.uuid4().hex[:8]}")
    aws.provision(template, {})
    events = logging.getLogger("test.events.lines")
    recorder = InvocationRecorder(event_log=events)
    runtime = FunctionRuntime(
        template, env_overrides=aws.function_env(), url_rewrites={}, log=LOG, observer=recorder.observe
    )
    await runtime.start()
    sources = EventSources(
        template, aws, runtime, log=LOG, enable_schedules=False, retry_backoff_s=0.01, poll_interval_s=0.05
    )
    await sources.start()
    try:
        # WHEN a stream record and a queue message (one asking to fail) arrive
        with caplog.at_level(logging.INFO, events.name):
            aws.client("dynamodb").put_item(
                TableName=template.tables["ItemsTable"].name,
                Item={"PK": {"S": "p1"}, "SK": {"S": "A"}, "kind": {"S": "message"}, "text": {"S": "hi"}},
            )
            url = aws.queue_url(template, "WorkQueue")
            aws.client("sqs").send_message(QueueUrl=url, MessageBody="fail-item once")
            await sources.drain(8)
    finally:
        await sources.stop()
        await runtime.stop()
    # THEN each invocation has a record and a line naming its trigger, batch size and failures
    by_trigger = {r.trigger: r for r in recorder.recent()}
    stream, queue = by_trigger["dynamodb"], by_trigger["sqs"]
    assert (stream.function, stream.source, stream.batch_size, stream.failures) == (
        "BatchFunction",
        template.tables["ItemsTable"].name,
        1,
        0,
    )
    assert stream.lag_ms is not None and stream.lag_ms >= 0
    assert (queue.source, queue.batch_size, queue.failures, queue.status) == (
        template.queues["WorkQueue"].name,
        1,
        1,
        "Partial",
    )
    lines = [r.getMessage() for r in caplog.records if r.name == events.name]
    assert any(line.startswith(f"dynamodb:{stream.source}") and "batch 1" in line for line in lines)
    assert any(line.startswith(f"sqs:{queue.source}") and "1 failed" in line for line in lines)
    # AND the same lines in JSON are one parseable object each
    documents = [json.loads(JsonEventFormatter().format(r)) for r in caplog.records if r.name == events.name]
    assert {d["trigger"] for d in documents} >= {"dynamodb", "sqs"}


async def test_a_schedule_with_a_constant_input_is_still_recorded_as_the_schedule(aws: LocalAws) -> None:
    # GIVEN the fixture's Tick schedule (Input '{"tick": true}'), fired every 50 ms here
    template = load_template(FIXTURE, stack_name=f"t{uuid.uuid4().hex[:8]}")
    aws.provision(template, {})
    recorder = InvocationRecorder(fallbacks=schedule_fallbacks(template))
    seen = asyncio.Event()
    recorder.subscribe(lambda record: seen.set())
    runtime = FunctionRuntime(
        template, env_overrides=aws.function_env(), url_rewrites={}, log=LOG, observer=recorder.observe
    )
    await runtime.start()
    sources = EventSources(template, aws, runtime, log=LOG, schedule_overrides={"BatchFunction": 0.05})
    await sources.start()
    try:
        # WHEN it fires
        await asyncio.wait_for(seen.wait(), 20)
    finally:
        await sources.stop()
        await runtime.stop()
    # THEN its record names the schedule, although the event is only the constant input
    record = recorder.recent()[0]
    assert (record.trigger, record.source, record.function) == ("schedule", "Tick", "BatchFunction")
    assert json.loads(record.event) == {"tick": True}
