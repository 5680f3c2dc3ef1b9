"""Event sources end to end: real moto server, real worker processes, the fixture app's triggers."""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel, SqsModel

from ws_emulator.aws.services import LocalAws
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources import dynamodb_streams
from ws_emulator.sources.supervisor import EventSources
from ws_emulator.template.loader import load_template
from ws_emulator.template.specs import Template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "app" / "template.yaml"
LOG = logging.getLogger("test.sources")


class App:
    def __init__(self, template: Template, aws: LocalAws, sources: EventSources, batch_log: Path) -> None:
        self.template = template
        self.aws = aws
        self.sources = sources
        self.batch_log = batch_log
        self.ddb = aws.client("dynamodb")
        self.sqs = aws.client("sqs")
        self.table = template.tables["ItemsTable"].name

    def batches(self) -> list[dict[str, Any]]:
        if not self.batch_log.exists():
            return []
        return [json.loads(line) for line in self.batch_log.read_text(encoding="utf-8").splitlines()]

    def put(self, pk: str, **attrs: Any) -> None:
        item = {"PK": {"S": pk}, "SK": {"S": "A"}} | attrs
        self.ddb.put_item(TableName=self.table, Item=item)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 8.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.05)
        raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    # One moto server for the module; each test gets its own stack name, hence its own resources.
    local = LocalAws()
    local.start()
    yield local
    local.stop()


@asynccontextmanager
async def running(tmp_path: Path, aws: LocalAws, **options: Any) -> AsyncIterator[App]:
    template = load_template(FIXTURE, stack_name=f"t{uuid.uuid4().hex[:8]}")
    aws.provision(template, {})
    batch_log = tmp_path / "batches.jsonl"
    runtime = FunctionRuntime(
        template, env_overrides=aws.function_env() | {"BATCH_LOG": str(batch_log)}, url_rewrites={}, log=LOG
    )
    await runtime.start()
    options = {"enable_schedules": False, "retry_backoff_s": 0.01, "poll_interval_s": 0.05} | options
    sources = EventSources(template, aws, runtime, log=LOG, **options)
    await sources.start()
    try:
        yield App(template, aws, sources, batch_log)
    finally:
        await sources.stop()
        await runtime.stop()


def stream_records(app: App) -> list[dict[str, Any]]:
    return [r for b in app.batches() for r in b.get("Records", []) if r.get("eventSource") == "aws:dynamodb"]


async def test_stream_records_are_filtered_and_shaped_like_lambda(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws) as app:
        # GIVEN a mapping filtered to kind=message INSERT/MODIFY images and any REMOVE
        # WHEN a message, a non-message and a delete are written
        app.put("m1", kind={"S": "message"}, text={"S": "hi"})
        app.put("x1", kind={"S": "other"})
        app.ddb.delete_item(TableName=app.table, Key={"PK": {"S": "x1"}, "SK": {"S": "A"}})
        await app.sources.drain(5)
        records = stream_records(app)
        # THEN only the message and the REMOVE reach the function, in order, shaped as on AWS
        assert [(r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"]) for r in records] == [
            ("INSERT", "m1"),
            ("REMOVE", "x1"),
        ]
        stream_arn = app.aws.stream_arn(app.template, "ItemsTable")
        first = records[0]
        assert first["eventSourceARN"] == stream_arn
        assert first["eventVersion"] == "1.1"
        assert first["eventSource"] == "aws:dynamodb"
        assert first["awsRegion"] == "us-east-1"
        assert first["dynamodb"]["NewImage"]["text"] == {"S": "hi"}
        assert first["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], int)
        assert "userIdentity" not in records[1]
        DynamoDBStreamModel.model_validate({"Records": records})


async def test_reported_item_failure_is_retried_then_sent_to_destination(
    tmp_path: Path, aws: LocalAws
) -> None:
    async with running(tmp_path, aws) as app:
        app.put("bad", kind={"S": "message"}, text={"S": "fail-item"})
        failures = await app.wait_for(lambda: app.sources.dead_letters()["StreamFailures"])
        assert len(stream_records(app)) == 2  # first delivery + MaximumRetryAttempts 1
        msg = json.loads(failures[0]["body"])
        assert msg["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert msg["requestContext"]["approximateInvokeCount"] == 2
        assert msg["requestContext"]["functionArn"] == app.template.functions["BatchFunction"].arn
        assert "functionError" not in msg["responseContext"]
        info = msg["DDBStreamBatchInfo"]
        assert info["streamArn"] == app.aws.stream_arn(app.template, "ItemsTable")
        assert info["batchSize"] == 1
        assert info["startSequenceNumber"] == stream_records(app)[0]["dynamodb"]["SequenceNumber"]
        # the peek left the message in the queue
        assert len(app.sources.dead_letters()["StreamFailures"]) == 1


async def test_function_error_goes_to_destination_with_function_error(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws) as app:
        app.put("boom", kind={"S": "message"}, text={"S": "fail-batch"})
        app.put("fine", kind={"S": "message"}, text={"S": "ok"})
        failures = await app.wait_for(lambda: app.sources.dead_letters()["StreamFailures"])
        await app.sources.drain(5)
        msg = json.loads(failures[0]["body"])
        assert msg["responseContext"]["functionError"] == "Unhandled"
        delivered = [r["dynamodb"]["Keys"]["PK"]["S"] for r in stream_records(app)]
        assert delivered.count("boom") >= 2
        assert delivered[-1] == "fine"  # the shard moved on after discarding


async def test_ttl_sweeper_deletes_expired_items_as_the_service(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws, ttl_sweep_interval_s=0.1) as app:
        now = int(time.time())
        app.put("old", kind={"S": "message"}, expiresAt={"N": str(now - 5)})
        app.put("future", kind={"S": "message"}, expiresAt={"N": str(now + 3600)})
        app.put("text", kind={"S": "message"}, expiresAt={"S": str(now - 5)})
        app.put("none", kind={"S": "message"})
        removes = await app.wait_for(lambda: [r for r in stream_records(app) if r["eventName"] == "REMOVE"])
        await asyncio.sleep(0.3)
        (remove,) = removes
        assert remove["dynamodb"]["Keys"]["PK"] == {"S": "old"}
        assert remove["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        left = app.ddb.scan(TableName=app.table)["Items"]
        assert sorted(i["PK"]["S"] for i in left) == ["future", "none", "text"]
        # a user's own delete carries no userIdentity
        app.ddb.delete_item(TableName=app.table, Key={"PK": {"S": "none"}, "SK": {"S": "A"}})
        await app.sources.drain(5)
        last = stream_records(app)[-1]
        assert last["dynamodb"]["Keys"]["PK"] == {"S": "none"}
        assert "userIdentity" not in last


async def test_sqs_messages_delivered_and_deleted(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws) as app:
        url = app.aws.queue_url(app.template, "WorkQueue")
        app.sqs.send_message(
            QueueUrl=url,
            MessageBody='{"job": 1}',
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "job"}},
        )
        await app.sources.drain(5)
        (batch,) = [b for b in app.batches() if b["Records"][0].get("eventSource") == "aws:sqs"]
        (record,) = batch["Records"]
        assert record["body"] == '{"job": 1}'
        assert record["eventSourceARN"] == app.template.queues["WorkQueue"].arn
        assert record["messageAttributes"]["kind"]["stringValue"] == "job"
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        SqsModel.model_validate(batch)
        attrs = app.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0"
        assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


async def test_drain_follows_a_chain_from_queue_to_stream(tmp_path: Path, aws: LocalAws) -> None:
    # GIVEN a queue-triggered function that writes to a table whose stream triggers a function
    async with running(tmp_path, aws) as app:
        url = app.aws.queue_url(app.template, "WorkQueue")
        # WHEN a message arrives and the sources are drained
        app.sqs.send_message(QueueUrl=url, MessageBody="write:chained")
        await app.sources.drain(5)
        # THEN the write made through plain boto3 in the worker reached the stream mapping too
        assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in stream_records(app)] == ["chained"]


async def test_sqs_delay_seconds_is_honoured(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws) as app:
        url = app.aws.queue_url(app.template, "WorkQueue")
        sent = time.monotonic()
        app.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        await app.wait_for(app.batches)
        assert time.monotonic() - sent >= 0.95


async def test_sqs_failed_message_goes_to_dlq_after_max_receives(tmp_path: Path, aws: LocalAws) -> None:
    async with running(tmp_path, aws) as app:
        url = app.aws.queue_url(app.template, "WorkQueue")
        app.sqs.send_message(QueueUrl=url, MessageBody="fail-item")
        app.sqs.send_message(QueueUrl=url, MessageBody="fine")
        dlq = await app.wait_for(lambda: app.sources.dead_letters()["WorkDLQ"], timeout=15)
        assert [m["body"] for m in dlq] == ["fail-item"]
        bodies = [r["body"] for b in app.batches() for r in b["Records"]]
        assert bodies.count("fail-item") == 2  # maxReceiveCount 2
        assert bodies.count("fine") == 1  # ReportBatchItemFailures: the good one was deleted


async def test_schedule_override_fires_with_configured_input(tmp_path: Path, aws: LocalAws) -> None:
    async with running(
        tmp_path, aws, enable_schedules=True, schedule_overrides={"BatchFunction": 0.1}
    ) as app:
        ticks = await app.wait_for(lambda: [b for b in app.batches() if b == {"tick": True}])
        assert ticks
        assert app.sources.scheduler is not None
        assert [t.event_id for t in app.sources.scheduler.targets] == ["Tick"]  # Nightly is DISABLED


async def test_a_write_wakes_its_stream_poller_without_a_poll_interval(
    tmp_path: Path, aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN pollers woken by the embedded server's writes, whose timers would not fire for an hour
    monkeypatch.setattr(dynamodb_streams, "WAKE_FALLBACK_S", 3600.0)
    async with running(tmp_path, aws, poll_interval_s=3600.0, writes=aws.writes) as app:
        await asyncio.sleep(0.3)  # every poller has read its empty shard and is waiting
        # WHEN a message is written, then another one
        app.put("w1", kind={"S": "message"}, text={"S": "one"})
        first = await app.wait_for(lambda: stream_records(app), timeout=30)
        app.put("w2", kind={"S": "message"}, text={"S": "two"})
        both = await app.wait_for(lambda: len(stream_records(app)) == 2 and stream_records(app), timeout=30)
    # THEN each reaches the function: the write itself woke the poller, each time
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in first] == ["w1"]
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in both] == ["w1", "w2"]
