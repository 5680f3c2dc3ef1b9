"""EventSources: every trigger of the template, wired to its function, started, drained and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ws_emulator.aws.services import LocalAws
from ws_emulator.aws.ttl import TtlMarks, TtlSweeper
from ws_emulator.aws.writes import TableWrites
from ws_emulator.runtime.pool import FunctionRuntime
from ws_emulator.sources.dead_letters import peek_messages
from ws_emulator.sources.dynamodb_streams import ShardPoller, StreamMapping
from ws_emulator.sources.reorder import RecordOrder
from ws_emulator.sources.schedules import ScheduledTarget, Scheduler
from ws_emulator.sources.sqs import SqsMapping
from ws_emulator.template.specs import Template


async def cancel_and_wait(tasks: list[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
    """Cancel tasks and wait until they are done, cancelling again if one swallowed it.

    Python 3.11's asyncio.wait_for can lose a cancellation when the awaited result arrives at the
    same moment (fixed in 3.12); a polling loop would then run on and stop() would wait forever.
    """
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.2)
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()  # retrieved, so asyncio does not warn about it


class EventSources:
    """Every trigger of the template: stream mappings, SQS mappings, schedules and the TTL sweeper."""

    def __init__(
        self,
        template: Template,
        aws: LocalAws,
        runtime: FunctionRuntime,
        *,
        poll_interval_s: float = 0.1,
        ttl_sweep_interval_s: float = 1.0,
        log: logging.Logger | None = None,
        retry_backoff_s: float = 0.1,
        sqs_wait_time_s: int = 1,
        schedule_speedup: float = 1.0,
        schedule_overrides: Mapping[str, float] | None = None,
        enable_schedules: bool = True,
        enable_ttl: bool = True,
        shard_refresh_s: float = 10.0,
        stream_order: RecordOrder | None = None,
        writes: TableWrites | None = None,
    ) -> None:
        self.template = template
        self.aws = aws
        self.runtime = runtime
        self.poll_interval_s = poll_interval_s
        self.ttl_sweep_interval_s = ttl_sweep_interval_s
        self.log = log or logging.getLogger("ws_emulator.sources")
        self.retry_backoff_s = retry_backoff_s
        self.sqs_wait_time_s = sqs_wait_time_s
        self.schedule_speedup = schedule_speedup
        self.schedule_overrides = dict(schedule_overrides or {})
        self.enable_schedules = enable_schedules
        self.enable_ttl = enable_ttl
        self.shard_refresh_s = shard_refresh_s
        self.stream_order = stream_order
        # Given (the embedded server's write signals), stream pollers wait for writes, not a timer.
        self.writes = writes
        self.ttl_marks = TtlMarks()
        self.stream_mappings: list[StreamMapping] = []
        self.sqs_mappings: list[SqsMapping] = []
        self.scheduler: Scheduler | None = None
        self.ttl_sweeper: TtlSweeper | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Blocking boto3 calls (and SQS long polls) get their own threads, not the loop's default pool.
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ws-emulator-sources")
        self._started = False

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        """Open stream iterators (LATEST unless the mapping says TRIM_HORIZON) and start every poller."""
        if self._started:
            return
        self._started = True
        for function in self.template.functions.values():
            for source in function.stream_sources:
                self.stream_mappings.append(
                    StreamMapping(
                        function,
                        source,
                        template=self.template,
                        aws=self.aws,
                        runtime=self.runtime,
                        ttl_marks=self.ttl_marks,
                        run_blocking=self.run_blocking,
                        poll_interval_s=self.poll_interval_s,
                        retry_backoff_s=self.retry_backoff_s,
                        log=self.log,
                        writes=self.writes,
                    )
                )
                self.stream_mappings[-1].reorder = self.stream_order
            for sqs_source in function.sqs_sources:
                queue = self.template.queues[sqs_source.queue_id]
                self.sqs_mappings.append(
                    SqsMapping(
                        function,
                        sqs_source,
                        queue_url=await self.run_blocking(
                            self.aws.queue_url, self.template, queue.logical_id
                        ),
                        queue_arn=queue.arn,
                        region=self.template.region,
                        client=self.aws.client("sqs"),
                        runtime=self.runtime,
                        run_blocking=self.run_blocking,
                        wait_time_s=self.sqs_wait_time_s,
                        log=self.log,
                    )
                )
        await asyncio.gather(*(m.prepare() for m in self.stream_mappings))
        pollers = [p for m in self.stream_mappings for p in m.shards.values()]
        # Iterators must exist before start() returns, or writes right after it would be missed.
        await asyncio.gather(*(self._open(p) for p in pollers))
        for stream_mapping in self.stream_mappings:
            self._spawn(self._watch_shards(stream_mapping), f"{stream_mapping.name} shards")
        for mapping in self.sqs_mappings:
            self._spawn(mapping.run(), mapping.name)
        self._start_schedules()
        if self.enable_ttl and any(t.ttl_attribute for t in self.template.tables.values()):
            self.ttl_sweeper = TtlSweeper(
                self.template,
                lambda: self.aws.client("dynamodb"),
                self.ttl_marks,
                interval_s=self.ttl_sweep_interval_s,
                log=self.log,
            )
            self._spawn(self.ttl_sweeper.run(self.run_blocking), "ttl-sweeper")
        self.log.info(
            "event sources: %d stream mapping(s), %d SQS mapping(s), %d schedule(s), TTL sweeper %s",
            len(self.stream_mappings),
            len(self.sqs_mappings),
            len(self.scheduler.targets) if self.scheduler else 0,
            "on" if self.ttl_sweeper else "off",
        )

    async def _open(self, poller: ShardPoller) -> None:
        await poller.open()
        self._spawn(poller.run(), f"{poller.mapping.name}/{poller.shard_id}")

    async def _watch_shards(self, mapping: StreamMapping) -> None:
        # moto keeps one shard forever; DynamoDB (and LocalStack) roll shards over every few hours.
        while True:
            await asyncio.sleep(self.shard_refresh_s)
            try:
                for poller in await mapping.new_shards():
                    self.log.info("%s: new shard %s", mapping.name, poller.shard_id)
                    await self._open(poller)
            except (ClientError, BotoCoreError) as exc:
                self.log.warning("%s: DescribeStream failed: %s", mapping.name, exc)

    def _start_schedules(self) -> None:
        if not self.enable_schedules:
            return
        targets = []
        for function in self.template.functions.values():
            for schedule in function.schedules:
                if not schedule.enabled:
                    continue
                rule = f"{self.template.stack_name}-{function.logical_id}{schedule.event_id}"
                targets.append(
                    ScheduledTarget(
                        function_id=function.logical_id,
                        event_id=schedule.event_id,
                        expression=schedule.expression,
                        input=schedule.input,
                        rule_arn=f"arn:aws:events:{self.template.region}:{self.template.account_id}:rule/{rule}",
                        period_override_s=self.schedule_overrides.get(function.logical_id),
                    )
                )
        if not targets:
            return
        self.scheduler = Scheduler(
            targets,
            self.runtime.invoke,
            account=self.template.account_id,
            region=self.template.region,
            speedup=self.schedule_speedup,
            log=self.log,
        )
        for target in targets:
            self._spawn(self.scheduler.run_target(target), f"schedule {target.function_id}.{target.event_id}")

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guard(coro, name), name=name)
        self._tasks.append(task)

    async def _guard(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a dead poller must be visible in the log, not silently gone
            self.log.exception("event source %s stopped", name)

    async def drain(self, timeout_s: float) -> None:
        """Deliver what is already in streams and queues (batching windows ignored); bounded by timeout."""
        deadline = time.monotonic() + timeout_s
        since = time.time()
        confirming = False
        for mapping in self.stream_mappings:
            mapping.flushing = True
        read = self._records_read()
        try:
            while time.monotonic() < deadline:
                if not await self._quiet(since):
                    # While confirming, "not quiet" may only mean that a shard has not polled again
                    # yet: start over unless every source is idle and nothing was read meanwhile.
                    confirming = confirming and self._records_read() == read and await self._idle()
                elif confirming:
                    return
                else:
                    # Quiet once; one more full round (fresh polls of every shard) catches records
                    # written meanwhile by functions triggered from another source.
                    confirming = True
                    since = time.time()
                    read = self._records_read()
                await asyncio.sleep(min(0.05, self.poll_interval_s))
            self.log.warning("drain: gave up after %.1f s with work still pending", timeout_s)
        finally:
            for mapping in self.stream_mappings:
                mapping.flushing = False

    async def _idle(self) -> bool:
        shards = [p for m in self.stream_mappings for p in m.shards.values()]
        if not all(p.finished or p.batcher.idle for p in shards):
            return False
        return all([await m.quiet() for m in self.sqs_mappings])

    def _records_read(self) -> int:
        return sum(p.records_read for m in self.stream_mappings for p in m.shards.values())

    async def _quiet(self, since: float) -> bool:
        for mapping in self.stream_mappings:
            if not all(p.quiet_since(since) for p in mapping.shards.values()):
                return False
        for sqs_mapping in self.sqs_mappings:
            if not await sqs_mapping.quiet():
                return False
        return True

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        for mapping in self.stream_mappings:
            for poller in mapping.shards.values():
                poller.close()
        # Batches already handed to a function (SQS runs several at once) end before the threads go.
        await cancel_and_wait([t for m in self.sqs_mappings for t in m.in_flight])
        self._tasks.clear()
        # Threads blocked in a long poll finish on their own within WaitTimeSeconds.
        self._executor.shutdown(wait=False, cancel_futures=True)

    def dead_letters(self) -> dict[str, list[dict[str, Any]]]:
        """Queue logical id -> messages now in every on-failure destination and DLQ (a peek)."""
        queue_ids = {
            s.on_failure_queue_id
            for f in self.template.functions.values()
            for s in f.stream_sources
            if s.on_failure_queue_id
        } | {q.dead_letter_queue_id for q in self.template.queues.values() if q.dead_letter_queue_id}
        sqs = self.aws.client("sqs")
        return {qid: peek_messages(sqs, self.aws.queue_url(self.template, qid)) for qid in sorted(queue_ids)}
