"""events/*.json (for `sam local invoke -e`) are shaped as AWS sends them: Powertools' models accept them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
    DynamoDBStreamModel,
    EventBridgeModel,
    SqsModel,
)
from aws_lambda_powertools.utilities.parser.models.apigw_websocket import (
    APIGatewayWebSocketConnectEventRequestContext,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DESIGN = ROOT / "docs" / "design.md"

MESSAGE_ROUTES = {
    "default": "$default",
    "join": "join",
    "leave": "leave",
    "message": "message",
    "typing": "typing",
    "history": "history",
    "presence": "presence",
    "heartbeat": "heartbeat",
    "create_channel": "create_channel",
    "invite": "invite",
    "channels": "channels",
    "react": "react",
    "open_dm": "open_dm",
    "mark_read": "mark_read",
}
AUTHORIZER_CONTEXT_KEYS = {"principalId", "userId", "userName", "workspace", "tokenExp"}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def design_folders() -> list[str]:
    return re.findall(r"^\| \w+Function \| functions/(\w+) \|", DESIGN.read_text(), re.MULTILINE)


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """Lambda filter matching for the pattern forms docs/design.md uses: nested keys and lists of values."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        if isinstance(wanted, dict):
            if not isinstance(event[key], dict) or not matches(wanted, event[key]):
                return False
        elif event[key] not in wanted:
            return False
    return True


def test_there_is_one_sample_event_per_function():
    folders = design_folders()
    assert len(folders) == 26
    assert sorted(p.stem for p in EVENTS.glob("*.json")) == sorted(folders)


def test_authorizer_event_is_a_websocket_request_authorizer_event():
    event = load("authorizer")
    assert event["type"] == "REQUEST"
    context = APIGatewayWebSocketConnectEventRequestContext.model_validate(event["requestContext"])
    assert event["methodArn"].endswith(f":{context.api_id}/{context.stage}/$connect")
    # A placeholder: a sample must never carry a working token.
    assert event["queryStringParameters"] == {"token": "REPLACE_WITH_A_TOKEN"}
    assert event["multiValueQueryStringParameters"] == {"token": ["REPLACE_WITH_A_TOKEN"]}
    assert "authorizer" not in event["requestContext"]


def test_connect_event_parses_and_carries_the_authorizer_output():
    event = load("connect")
    parsed = APIGatewayWebSocketConnectEventModel.model_validate(event)
    assert parsed.request_context.route_key == "$connect"
    assert set(event["requestContext"]["authorizer"]) >= AUTHORIZER_CONTEXT_KEYS


def test_disconnect_event_parses():
    event = load("disconnect")
    parsed = APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    assert parsed.request_context.route_key == "$disconnect"
    assert set(event["requestContext"]["authorizer"]) >= AUTHORIZER_CONTEXT_KEYS


@pytest.mark.parametrize(("name", "route_key"), sorted(MESSAGE_ROUTES.items()))
def test_route_events_parse_and_their_body_selects_their_route(name, route_key):
    event = load(name)
    parsed = APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert parsed.request_context.route_key == route_key
    assert set(event["requestContext"]["authorizer"]) >= AUTHORIZER_CONTEXT_KEYS
    body = json.loads(event["body"])
    # RouteSelectionExpression is $request.body.action: an unknown action falls through to $default.
    expected_action = body["action"] if route_key == "$default" else route_key
    assert body["action"] == expected_action
    if route_key == "$default":
        assert body["action"] not in MESSAGE_ROUTES.values()


@pytest.mark.parametrize("name", sorted(set(MESSAGE_ROUTES) - {"default"}))
def test_route_event_bodies_are_valid_frames(name):
    from parley import protocol

    body = load(name)["body"]
    action = json.loads(body)["action"]
    protocol.parse_frame(body, protocol.FRAMES[action])


def test_fanout_event_is_a_stream_insert_that_passes_the_messages_filter():
    event = load("fanout")
    parsed = DynamoDBStreamModel.model_validate(event)
    (record,) = parsed.Records
    assert record.eventName == "INSERT"
    assert re.fullmatch(
        r"arn:aws:dynamodb:[\w-]+:\d{12}:table/[\w.-]+/stream/[\w:.-]+", record.eventSourceARN
    )
    assert record.dynamodb.NewImage["kind"] == "message"  # type: ignore[index]  # a dict once parsed
    pattern = json.loads(
        re.search(r"MessagesTable \(MessagesStream\): `(\{.*?\})`", DESIGN.read_text()).group(1)
    )
    assert matches(pattern, event["Records"][0])


def test_presence_timer_event_carries_a_timer_body():
    parsed = SqsModel.model_validate(load("presence_timer"))
    (record,) = parsed.Records
    assert json.loads(record.body) == {"workspace": "demo", "channel": "general", "userId": "alice"}  # type: ignore[arg-type]


def test_sweeper_event_is_a_scheduled_event():
    parsed = EventBridgeModel.model_validate(load("sweeper"))
    assert (parsed.source, parsed.detail_type) == ("aws.events", "Scheduled Event")


def test_publish_event_is_a_valid_publish_request():
    from parley.apps import PublishRequest, parse_request

    request = parse_request(load("publish"))
    assert isinstance(request, PublishRequest)
    assert request.app == "deploy-bot"


def test_domain_events_event_passes_the_domain_filters_and_maps_to_events():
    from parley.domain_events import events_of, records_of

    event = load("domain_events")
    section = DESIGN.read_text().split("## Domain event filters", 1)[1].split("\n## ", 1)[0]
    patterns = [json.loads(raw) for raw in re.findall(r"`(\{.*?\})`", section)]
    assert len(patterns) == 3
    assert all(any(matches(p, record) for p in patterns) for record in event["Records"])
    kinds = [e.detail_type for r in records_of(event) for e in events_of(r)]
    assert kinds == ["message.created", "member.joined"]
