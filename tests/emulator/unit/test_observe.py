"""The invocation recorder: what each trigger's record says, redaction, event lines, series, commands."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from ws_emulator.gateway.live import origin_refusal
from ws_emulator.observe.dashboard import dead_letter_view, parse_command
from ws_emulator.observe.lines import JsonEventFormatter, event_formatter
from ws_emulator.observe.recorder import InvocationRecorder, percentile
from ws_emulator.observe.records import build_record, classify, json_line, redact, text_line

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Messages/stream/2026-01-01T00:00:00.000"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:PresenceTimers"


@dataclass(frozen=True)
class Result:
    ok: bool = True
    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 12.5
    cold_start: bool = False
    init_ms: float = 0.0
    request_id: str = "req-1"


def route_event(route: str = "message", cid: str = "Abc123def456gh=") -> dict[str, Any]:
    return {"requestContext": {"routeKey": route, "connectionId": cid}, "body": "{}"}


def authorizer_event() -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:1:api/prod/$connect",
        "headers": {"Authorization": f"Bearer {JWT}", "Host": "x"},
        "queryStringParameters": {"token": JWT, "room": "a"},
        "multiValueQueryStringParameters": {"token": [JWT]},
        "requestContext": {"routeKey": "$connect", "connectionId": "Conn1="},
    }


def stream_event(created_s: list[float]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:dynamodb",
                "eventSourceARN": STREAM_ARN,
                "dynamodb": {"ApproximateCreationDateTime": c},
            }
            for c in created_s
        ]
    }


# ---- classify ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (route_event("join", "C1="), ("route", "join", "C1=")),
        (authorizer_event(), ("authorizer", "$connect", "Conn1=")),
        (stream_event([1.0]), ("dynamodb", "Messages", None)),
        (
            {"Records": [{"eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN}]},
            ("sqs", "PresenceTimers", None),
        ),
        (
            {
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "resources": ["arn:aws:events:r:1:rule/Sweep"],
            },
            ("schedule", "Sweep", None),
        ),
        ({"anything": 1}, ("invoke", "-", None)),
    ],
)
def test_the_trigger_is_read_from_the_events_shape(event, expected):
    assert classify(event) == expected


# ---- redaction --------------------------------------------------------------------------------------


def test_tokens_authorization_and_jwts_never_reach_a_record():
    # GIVEN an authorizer event carrying the token in the query, a header and a frame body
    event = authorizer_event() | {"body": f'{{"note": "my token is {JWT}", "url": "wss://x/?token=abc&b=1"}}'}
    # WHEN it is recorded
    record = build_record(
        1, "AuthFn", "local-AuthFn", event, Result(payload={"context": {"apiToken": "s3"}}), now_ms=0
    )
    # THEN no part of the token is left, and other values are kept
    text = json.dumps(record.as_dict())
    assert JWT not in text and "abc&" not in text and '"s3"' not in text
    detail = json.loads(record.event)
    assert detail["queryStringParameters"] == {"token": "***", "room": "a"}
    assert detail["headers"] == {"Authorization": "***", "Host": "x"}
    assert detail["multiValueQueryStringParameters"] == {"token": "***"}
    assert "token=***&b=1" in detail["body"]


def test_redact_leaves_empty_secret_fields_and_other_values_alone():
    assert redact({"token": "", "Password": None, "n": [1, "a"]}) == {
        "token": "",
        "Password": None,
        "n": [1, "a"],
    }


def test_bodies_are_truncated_with_their_size_said():
    record = build_record(
        1, "F", "F", route_event() | {"body": "x" * 5000}, Result(payload={"body": "y" * 5000}), now_ms=0
    )
    assert len(record.event) < 2100 and record.event.endswith("characters)")
    assert len(record.response) < 2100


# ---- statuses ---------------------------------------------------------------------------------------


def allow(effect: str) -> dict[str, Any]:
    return {
        "principalId": "u",
        "policyDocument": {"Statement": [{"Effect": effect, "Action": "execute-api:Invoke"}]},
    }


@pytest.mark.parametrize(
    ("result", "status", "ok"),
    [
        (Result(payload=allow("Allow")), "Allow", True),
        (Result(payload=allow("Deny")), "403", False),
        (Result(ok=False, error={"errorType": "Exception", "errorMessage": "Unauthorized"}), "401", False),
        (Result(ok=False, error={"errorType": "KeyError", "errorMessage": "'x'"}), "500", False),
    ],
)
def test_authorizer_records_say_allow_refusal_or_error(result, status, ok):
    record = build_record(1, "A", "A", authorizer_event(), result, now_ms=0)
    assert (record.trigger, record.status, record.ok) == ("authorizer", status, ok)


@pytest.mark.parametrize(
    ("result", "status", "ok"),
    [
        (Result(payload={"statusCode": 200}), "200", True),
        (Result(payload=None), "200", True),
        (Result(payload={"statusCode": 429}), "429", False),
        (Result(ok=False, error={"errorType": "RuntimeError", "errorMessage": "boom"}), "500", False),
    ],
)
def test_route_records_carry_the_integrations_status(result, status, ok):
    record = build_record(1, "F", "F", route_event(), result, now_ms=0)
    assert (record.status, record.ok, record.connection_id) == (status, ok, "Abc123def456gh=")


def test_a_stream_batch_records_its_size_failures_and_the_age_of_its_oldest_record():
    event = stream_event([100.0, 99.5, 100.2])
    result = Result(payload={"batchItemFailures": [{"itemIdentifier": "2"}]})
    record = build_record(1, "Fanout", "Fanout", event, result, now_ms=100_750)
    assert (record.batch_size, record.failures, record.lag_ms) == (3, 1, 1250.0)
    assert (record.status, record.ok) == ("Partial", False)


def test_a_failed_batch_counts_every_record_as_failed():
    event = {
        "Records": [
            {"eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "attributes": {"SentTimestamp": "1000"}}
        ]
    }
    record = build_record(1, "Timer", "Timer", event, Result(ok=False, error={"errorType": "E"}), now_ms=1300)
    assert (record.status, record.failures, record.lag_ms, record.error_type) == ("Error", 1, 300.0, "E")


# ---- event lines ------------------------------------------------------------------------------------


def test_text_lines_name_route_connection_function_status_and_notes():
    route = build_record(
        1, "MessageFunction", "x", route_event(), Result(cold_start=True, init_ms=812.0), now_ms=0
    )
    assert text_line(route).split()[:5] == ["message", "Abc123de", "MessageFunction", "200", "12.5"]
    assert text_line(route).endswith("cold start, init 812 ms")
    batch = build_record(
        2, "FanoutFunction", "x", stream_event([0.0]), Result(payload={"batchItemFailures": []}), now_ms=40
    )
    line = text_line(batch)
    assert line.startswith("dynamodb:Messages -        FanoutFunction")
    assert "batch 1" in line and "lag 40 ms" in line


def test_a_json_line_is_one_object_without_bodies():
    record = build_record(
        7, "F", "local-F", stream_event([0.0]), Result(payload={"batchItemFailures": []}), now_ms=5
    )
    document = json.loads(json_line(record))
    assert document["type"] == "invocation"
    keys = ("seq", "function", "function_name", "trigger", "source", "batch_size", "failures")
    assert [document[k] for k in keys] == [7, "F", "local-F", "dynamodb", "Messages", 1, 0]
    assert "event" not in document and "response" not in document and "\n" not in json_line(record)


def test_the_json_formatter_prints_invocations_as_records_and_other_lines_as_messages():
    formatter = JsonEventFormatter()
    plain = logging.LogRecord(
        "ws_emulator.events", logging.INFO, __file__, 1, "%s 403", ("(no route)",), None
    )
    assert json.loads(formatter.format(plain))["message"] == "(no route) 403"
    plain.invocation = '{"type":"invocation"}'
    assert formatter.format(plain) == '{"type":"invocation"}'
    assert not isinstance(event_formatter("text"), JsonEventFormatter)


def test_the_recorder_writes_one_event_line_per_invocation(caplog):
    recorder = InvocationRecorder(event_log=logging.getLogger("test.events"))
    with caplog.at_level(logging.INFO, "test.events"):
        recorder.observe("EchoFunction", route_event("echo"), Result())
    (line,) = caplog.records
    assert line.getMessage().startswith("echo ") and json.loads(line.invocation)["source"] == "echo"


# ---- ring, subscribers, series ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_ring_is_bounded_and_subscribers_see_every_record():
    recorder = InvocationRecorder(capacity=3)
    seen: list[int] = []
    unsubscribe = recorder.subscribe(lambda r: seen.append(r.seq))
    for _ in range(5):
        recorder.observe("F", route_event(), Result())
    unsubscribe()
    recorder.observe("F", route_event(), Result())
    assert [r.seq for r in recorder.recent()] == [4, 5, 6]
    assert seen == [1, 2, 3, 4, 5]
    assert recorder.find(6) is not None and recorder.find(1) is None


def test_a_failing_subscriber_does_not_fail_the_invocation():
    recorder = InvocationRecorder()
    recorder.subscribe(lambda r: 1 / 0)
    assert recorder.observe("F", route_event(), Result()).seq == 1


def test_series_give_rates_percentiles_lag_and_cold_starts_per_bin():
    clock = Clock()
    recorder = InvocationRecorder(clock=clock)
    for ms in (10.0, 20.0, 30.0, 40.0):
        recorder.observe("F", route_event("join"), Result(duration_ms=ms))
    recorder.observe("G", stream_event([clock.now - 0.5]), Result(payload={}, cold_start=True))
    for outcome in ("ok", "ok", "gone", "throttled"):
        recorder.count_post(outcome)
    series = recorder.series(window_s=60, step_s=10)
    assert len(series["invocationsPerS"]) == 6
    assert series["invocationsPerS"][-1] == 0.5  # 5 invocations in a 10 s bin
    assert series["postsPerS"][-1] == 0.4 and series["failedPostsPerS"][-1] == 0.2
    assert series["latency"]["join"]["p50"][-1] == 20.0 and series["latency"]["join"]["p95"][-1] == 40.0
    assert series["lagP95Ms"][-1] == 500.0 and series["coldStarts"][-1] == 1
    assert series["latency"]["join"]["p50"][0] is None


def test_post_totals_count_every_post_since_start_by_outcome_after_the_series_forget_them():
    clock = Clock()
    recorder = InvocationRecorder(clock=clock)
    for outcome in ("ok", "gone", "ok"):
        recorder.count_post(outcome)
    clock.now += 3_600  # long past the series' history
    recorder.count_post("throttled")
    assert recorder.series(window_s=60, step_s=10)["postsPerS"][0] == 0  # the series forgot the first three
    assert recorder.post_totals == {"ok": 2, "gone": 1, "throttled": 1}


def test_percentile_is_nearest_rank():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([float(v) for v in range(1, 101)], 0.95) == 95.0


def test_old_seconds_are_forgotten():
    clock = Clock()
    recorder = InvocationRecorder(clock=clock)
    recorder.observe("F", route_event(), Result())
    clock.now += 700
    recorder.observe("F", route_event(), Result())
    assert sum(recorder.series(window_s=900, step_s=10)["invocationsPerS"]) == 0.1


# ---- the dashboard's commands and origin ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "not JSON"),
        ("[1]", "JSON object"),
        ('{"op": "detail", "seq": "1"}', "integer 'seq'"),
        ('{"op": "detail", "seq": true}', "integer 'seq'"),
        ('{"op": "close"}', "'connectionId'"),
        ('{"op": "drop"}', "unknown op 'drop'"),
        (b"{}", "JSON text frames"),
        ('{"op":"close","connectionId":"' + "x" * 5000 + '"}', "4096 bytes"),
    ],
)
def test_bad_commands_get_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_command(text)


def test_good_commands_parse():
    assert parse_command('{"op": "detail", "seq": 3}') == ("detail", 3)
    assert parse_command('{"op": "close", "connectionId": "A="}') == ("close", "A=")


@pytest.mark.parametrize(
    ("origin", "refused"),
    [
        ("http://127.0.0.1:3001", False),
        ("http://localhost:3001", False),
        ("http://127.0.0.1:3002", True),
        ("https://evil.example", True),
        ("null", True),
        (None, True),
    ],
)
def test_only_the_emulators_own_origin_may_open_the_live_socket(origin, refused):
    reply = origin_refusal(origin, "127.0.0.1", 3001)
    assert (reply is not None) == refused
    if reply is not None:
        assert reply.status == 403 and b"origin" in reply.body


def test_dead_letters_are_listed_with_redacted_truncated_bodies():
    letters = {
        "Dlq": [
            {
                "messageId": "m1",
                "body": f'{{"token": "{JWT}"}}',
                "attributes": {"ApproximateReceiveCount": "3"},
            }
        ]
    }
    (message,) = dead_letter_view(letters)["Dlq"]
    assert message["messageId"] == "m1" and message["receiveCount"] == "3" and JWT not in message["body"]


def test_a_long_batch_shows_its_first_records_and_how_many_more():
    record = build_record(
        1, "F", "F", stream_event([float(i) for i in range(50)]), Result(payload={}), now_ms=0
    )
    shown = (
        json.loads(record.event.split("… (")[0]) if record.event.endswith(")") else json.loads(record.event)
    )
    assert len(shown["Records"]) == 4 and shown["Records"][-1] == "… 47 more records"
    assert record.batch_size == 50
