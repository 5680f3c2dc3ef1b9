"""rate()/cron() parsing, next firing times, the scheduled event and sped-up schedules."""

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from ws_emulator.sources.schedules import (
    Cron,
    Rate,
    ScheduledTarget,
    ScheduleError,
    Scheduler,
    parse_expression,
    scheduled_event,
)

T0 = datetime(2026, 11, 27, 23, 58, 30, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate(expression: str, seconds: int) -> None:
    assert parse_expression(expression) == Rate(seconds)


@pytest.mark.parametrize(
    "expression",
    ["rate(0 minutes)", "rate(5 minute)", "rate(1 minutes)", "rate(1 week)", "every minute", "cron(* * * *)"],
)
def test_bad_expressions(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_expression(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(* * * * ? *)", datetime(2026, 11, 27, 23, 59, tzinfo=UTC)),
        ("cron(0 * * * ? *)", datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 28, 0, 0, tzinfo=UTC)),
        ("cron(10,40 3 * * ? *)", datetime(2026, 11, 28, 3, 10, tzinfo=UTC)),
        ("cron(0 9-17 * * ? *)", datetime(2026, 11, 28, 9, 0, tzinfo=UTC)),
        ("cron(0 12 ? * MON-FRI *)", datetime(2026, 11, 30, 12, 0, tzinfo=UTC)),
        ("cron(0 0 1 * ? *)", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("cron(30 6 15 JAN ? *)", datetime(2027, 1, 15, 6, 30, tzinfo=UTC)),
        ("cron(0 8 ? * 1 *)", datetime(2026, 11, 29, 8, 0, tzinfo=UTC)),  # 1 = Sunday
    ],
)
def test_cron_next_after(expression: str, expected: datetime) -> None:
    schedule = parse_expression(expression)
    assert isinstance(schedule, Cron)
    assert schedule.next_after(T0) == expected


def test_cron_needs_a_question_mark_for_one_day_field() -> None:
    with pytest.raises(ScheduleError):
        parse_expression("cron(0 12 1 * MON *)")


def test_scheduled_event_shape() -> None:
    event = scheduled_event(account="123456789012", region="us-east-1", rule_arn="arn:aws:events:x", at=T0)
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-11-27T23:58:30Z"
    assert event["resources"] == ["arn:aws:events:x"]
    assert event["detail"] == {}
    EventBridgeModel.model_validate(event)


async def test_speedup_makes_rate_fire_quickly() -> None:
    # GIVEN rate(1 minute) with the clock 600 times faster: one firing every 0.1 s
    calls: list[tuple[str, dict[str, Any]]] = []

    async def invoke(function_id: str, event: dict[str, Any]) -> None:
        calls.append((function_id, event))

    target = ScheduledTarget("Fn", "Tick", "rate(1 minute)", None, "arn:aws:events:r")
    scheduler = Scheduler([target], invoke, account="1", region="r", speedup=600)
    task = asyncio.create_task(scheduler.run_target(target))
    await asyncio.sleep(0.35)
    task.cancel()
    # THEN it fired about three times, with the EventBridge event
    assert 2 <= len(calls) <= 4
    assert calls[0][0] == "Fn"
    assert calls[0][1]["detail-type"] == "Scheduled Event"


async def test_override_and_input() -> None:
    events: list[dict[str, Any]] = []

    async def invoke(function_id: str, event: dict[str, Any]) -> None:
        events.append(event)

    target = ScheduledTarget("Fn", "Tick", "rate(1 day)", '{"x": 1}', "arn", period_override_s=0.05)
    scheduler = Scheduler([target], invoke, account="1", region="r")
    task = asyncio.create_task(scheduler.run_target(target))
    await asyncio.sleep(0.18)
    task.cancel()
    assert events and all(e == {"x": 1} for e in events)


async def test_failed_scheduled_invocation_is_retried_twice_like_async_lambda() -> None:
    # GIVEN a schedule whose function always fails, on a clock 6000 times faster (retries after 10/20 ms)
    attempts: list[dict[str, Any]] = []

    async def invoke(function_id: str, event: dict[str, Any]) -> SimpleNamespace:
        attempts.append(event)
        return SimpleNamespace(ok=False, error={"errorType": "E", "errorMessage": "m"})

    target = ScheduledTarget("Fn", "Tick", "rate(1 day)", None, "arn")
    scheduler = Scheduler([target], invoke, account="1", region="r", speedup=6000)
    delivery = asyncio.create_task(scheduler._deliver(target, {"n": 1}))
    await asyncio.wait_for(delivery, timeout=2)
    # THEN the same event was invoked three times in all
    assert attempts == [{"n": 1}] * 3
