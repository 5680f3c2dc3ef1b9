"""The pure parts of the Lambda Invoke API (naming a function) and of EventBridge recording (sizes,
bus names, the log), and the template's event buses."""

from __future__ import annotations

import json
from pathlib import Path

from ws_emulator.aws.eventbridge import MAX_REQUEST_BYTES, PutEventsLog, bus_name, entry_size
from ws_emulator.gateway.lambda_invoke import resolve
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "invoke_app" / "template.yaml"


def test_an_event_bus_is_named_and_given_its_arn() -> None:
    template = load_template(FIXTURE, stack_name="s1", region="eu-west-1")
    bus = template.event_buses["Bus"]
    assert bus.name == "s1-bus"
    assert bus.arn == "arn:aws:events:eu-west-1:123456789012:event-bus/s1-bus"
    assert not any("Bus" in ignored for ignored in template.ignored)
    # a function's environment gets the bus's name from !Ref
    assert template.functions["EmitterFunction"].environment["BUS_NAME"] == "s1-bus"


def test_a_function_is_named_by_name_arn_partial_arn_or_logical_id() -> None:
    template = load_template(FIXTURE)
    echo = template.functions["EchoFunction"]
    for name in (
        echo.name,
        echo.arn,
        f"123456789012:function:{echo.name}",
        "EchoFunction",
        f"{echo.name}:$LATEST",
    ):
        target, shown = resolve(template, name, None)
        assert target is not None and target.function_id == "EchoFunction", name
        assert shown == echo.arn or shown == f"{echo.arn}:$LATEST"
    target, shown = resolve(template, echo.name, "3")
    assert target is None and shown == f"{echo.arn}:3"
    target, shown = resolve(template, "nope", None)
    assert target is None and shown.endswith(":function:nope")


def test_entry_size_counts_as_aws_does() -> None:
    entry = {"Source": "s", "DetailType": "dé", "Detail": '{"a":1}', "Resources": ["r1"], "Time": 1}
    assert entry_size(entry) == 1 + 3 + 7 + 2 + 14
    assert (
        entry_size({"Source": "s", "DetailType": "d", "Detail": "x" * MAX_REQUEST_BYTES}) > MAX_REQUEST_BYTES
    )


def test_bus_names_and_arns_name_the_same_bus() -> None:
    assert bus_name(None) == "default"
    assert bus_name("orders") == "orders"
    assert bus_name("arn:aws:events:us-east-1:123456789012:event-bus/orders") == "orders"


def test_the_log_keeps_entries_with_their_answer_and_filters_by_bus_and_seq() -> None:
    heard: list[dict[str, object]] = []
    log = PutEventsLog(listener=heard.append)
    request = {
        "Entries": [
            {"Source": "a", "DetailType": "x", "Detail": json.dumps({"n": 1}), "EventBusName": "b1"},
            {"Source": "a", "DetailType": "y", "Detail": "not json", "EventBusName": "b2"},
        ]
    }
    log.record(request, {"Entries": [{"EventId": "e1"}, {"ErrorCode": "InternalFailure"}]}, 5)
    first, second = log.recent()
    assert (first["eventBusName"], first["detail"], first["eventId"]) == ("b1", {"n": 1}, "e1")
    assert (second["detail"], second["errorCode"]) == ("not json", "InternalFailure")
    assert log.recent(bus="b2") == [second]
    assert log.recent(after=int(str(first["seq"]))) == [second]
    assert heard == [first, second]
