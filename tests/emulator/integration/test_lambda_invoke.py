"""The Lambda Invoke API on the management port (any template's functions, through the worker pool),
and EventBridge's PutEvents recorded and authorized, as boto3 sees them."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from ws_emulator.app import run_emulator
from ws_emulator.config import Config

FIXTURE = Path(__file__).parents[1] / "fixtures" / "invoke_app" / "template.yaml"
ACCOUNT = "123456789012"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def emu():
    async with run_emulator(Config(template=FIXTURE, port=0)) as emulator:
        yield emulator


def lambda_client(emu: Any) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=emu.lambda_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"max_attempts": 1}),
    )


async def invoke(emu: Any, name: str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
    body = kwargs.pop("raw", None)
    if body is None:
        body = json.dumps(payload if payload is not None else {})
    answer: dict[str, Any] = await asyncio.to_thread(
        lambda_client(emu).invoke, FunctionName=name, Payload=body, **kwargs
    )
    return answer


def payload_of(answer: dict[str, Any]) -> Any:
    return json.loads(answer["Payload"].read())


async def test_a_function_is_invoked_by_name_arn_or_logical_id(emu):
    fn = emu.template.functions["EchoFunction"]
    for name in (fn.name, fn.arn, f"{ACCOUNT}:function:{fn.name}", "EchoFunction", f"{fn.name}:$LATEST"):
        answer = await invoke(emu, name, {"hello": name})
        assert answer["StatusCode"] == 200
        assert "FunctionError" not in answer
        assert answer["ExecutedVersion"] == "$LATEST"
        assert payload_of(answer) == {"event": {"hello": name}, "function": fn.name}


async def test_a_failing_function_answers_200_with_function_error_unhandled(emu):
    answer = await invoke(emu, "FailFunction", {})
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = payload_of(answer)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "this function always fails"


async def test_unknown_functions_and_qualifiers_are_resource_not_found(emu):
    for name in ("NoSuchFunction", f"{emu.template.functions['EchoFunction'].name}:7"):
        with pytest.raises(ClientError) as caught:
            await invoke(emu, name)
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert "Function not found: arn:aws:lambda:us-east-1:" in caught.value.response["Error"]["Message"]


async def test_a_body_that_is_not_json_is_invalid_request_content(emu):
    with pytest.raises(ClientError) as caught:
        await invoke(emu, "EchoFunction", raw=b"{not json")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


async def test_event_and_dry_run_invocations(emu):
    event = await invoke(emu, "EchoFunction", {"async": True}, InvocationType="Event")
    assert event["StatusCode"] == 202
    dry = await invoke(emu, "EchoFunction", {}, InvocationType="DryRun")
    assert dry["StatusCode"] == 204


async def test_a_function_invokes_another_only_with_lambda_invoke_function(emu):
    # EmitterFunction's role allows lambda:InvokeFunction on EchoFunction; its client finds the
    # emulator through AWS_ENDPOINT_URL_LAMBDA
    allowed = payload_of(await invoke(emu, "EmitterFunction", {"op": "invoke"}))
    emitter = emu.template.functions["EmitterFunction"].name
    assert allowed == {
        "ok": True,
        "payload": {"event": {"from": emitter}, "function": emu.template.functions["EchoFunction"].name},
    }
    denied = payload_of(await invoke(emu, "MuteFunction", {"op": "invoke"}))
    assert denied["error"] == "AccessDeniedException"
    assert "lambda:InvokeFunction" in denied["message"]
    assert emu.template.functions["EchoFunction"].arn in denied["message"]


async def recorded(emu: Any, **query: str) -> list[dict[str, Any]]:
    """GET /_emulator/events, off the loop (the emulator serves it on this very loop)."""
    return await asyncio.to_thread(_recorded, emu, **query)


def _recorded(emu: Any, **query: str) -> list[dict[str, Any]]:
    url = emu.admin_url + "/events" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    with urllib.request.urlopen(url) as response:
        events: list[dict[str, Any]] = json.loads(response.read())["events"]
        return events


async def test_put_events_are_recorded_and_inspectable(emu):
    bus = emu.template.event_buses["Bus"].name
    before = await recorded(emu)
    after = str(before[-1]["seq"]) if before else "0"
    answer = payload_of(
        await invoke(emu, "EmitterFunction", {"op": "put", "count": 3, "detailType": "order.placed"})
    )
    assert answer == {"ok": True, "failed": 0}
    entries = await recorded(emu, after=after, bus=bus)
    assert [(e["source"], e["detailType"], e["detail"]["n"]) for e in entries] == [
        ("fixture", "order.placed", 0),
        ("fixture", "order.placed", 1),
        ("fixture", "order.placed", 2),
    ]
    assert all(e["eventBusName"] == bus and e["eventId"] and e["errorCode"] is None for e in entries)


async def test_put_events_needs_events_put_events_on_the_bus(emu):
    denied = payload_of(await invoke(emu, "MuteFunction", {"op": "put"}))
    assert denied["error"] == "AccessDeniedException"
    assert (
        f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{emu.template.event_buses['Bus'].name}"
        in denied["message"]
    )
    # allowed on its bus, not on the default one
    other = payload_of(await invoke(emu, "EmitterFunction", {"op": "put", "bus": "default"}))
    assert other["error"] == "AccessDeniedException"


async def test_put_events_over_256_kb_is_refused(emu):
    before = await recorded(emu)
    answer = payload_of(await invoke(emu, "EmitterFunction", {"op": "put", "count": 3, "pad": 90_000}))
    assert answer["error"] == "ValidationException"
    assert await recorded(emu) == before  # nothing was put
