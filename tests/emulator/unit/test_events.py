"""Events built for API Gateway WebSocket routes, validated against Powertools' parser models."""

import re

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from ws_emulator.gateway import events

API = events.ApiInfo(api_id="abc123", stage="prod", region="eu-west-1", account_id="123456789012")
CLIENT = events.ClientInfo(
    connection_id="AbCdEfGhIjKlMnO=",
    connected_at_ms=1_707_502_303_419,
    source_ip="127.0.0.1",
    user_agent="pytest",
    headers=(("Host", "127.0.0.1:3001"), ("User-Agent", "pytest"), ("X-Multi", "a"), ("X-Multi", "b")),
    query=(("token", "t1"), ("tag", "x"), ("tag", "y")),
)
AUTH = {"principalId": "alice", "integrationLatency": 3, "workspace": "demo"}
NOW = 1_707_502_303_420


def test_connect_event_matches_powertools_model():
    event = events.connect_event(API, CLIENT, request_id="R1", now_ms=NOW, authorizer=AUTH)
    model = APIGatewayWebSocketConnectEventModel.model_validate(event)
    assert model.request_context.route_key == "$connect"
    assert model.request_context.connection_id == CLIENT.connection_id
    assert event["requestContext"]["authorizer"] == AUTH
    assert event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest"}
    assert event["requestContext"]["domainName"] == "abc123.execute-api.eu-west-1.amazonaws.com"


def test_connect_event_has_single_and_multi_value_maps():
    event = events.connect_event(API, CLIENT, request_id="R1", now_ms=NOW)
    assert event["headers"]["X-Multi"] == "b"
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"token": "t1", "tag": "y"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["x", "y"]
    assert "authorizer" not in event["requestContext"]


def test_query_maps_are_absent_without_a_query_string():
    client = events.ClientInfo("C=", 1, "127.0.0.1", None, (), ())
    event = events.connect_event(API, client, request_id="R1", now_ms=NOW)
    assert "queryStringParameters" not in event
    assert event["requestContext"]["identity"] == {"sourceIp": "127.0.0.1"}


def test_message_event_matches_powertools_model():
    event = events.message_event(
        API,
        CLIENT,
        route_key="join",
        body='{"action": "join"}',
        is_base64_encoded=False,
        message_id="M1",
        request_id="R2",
        now_ms=NOW,
        authorizer=AUTH,
    )
    model = APIGatewayWebSocketMessageEventModel.model_validate(event)
    assert model.request_context.event_type == "MESSAGE"
    assert model.request_context.message_id == "M1"
    assert model.body == '{"action": "join"}'
    assert event["requestContext"]["authorizer"]["principalId"] == "alice"


def test_disconnect_event_matches_powertools_model():
    event = events.disconnect_event(
        API, CLIENT, status_code=1001, reason="Going away", request_id="R3", now_ms=NOW, authorizer=AUTH
    )
    model = APIGatewayWebSocketDisconnectEventModel.model_validate(event)
    assert model.request_context.disconnect_status_code == 1001
    assert model.request_context.disconnect_reason == "Going away"
    assert event["headers"]["Host"] == API.domain_name
    assert set(event["headers"]) == {"Host", "x-api-key", "X-Forwarded-For", "x-restapi"}


def test_authorizer_event_shape():
    event = events.authorizer_event(API, CLIENT, request_id="R4", now_ms=NOW)
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/$connect"
    assert event["queryStringParameters"]["token"] == "t1"
    assert event["stageVariables"] == {}
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"], context["messageDirection"]) == (
        "$connect",
        "CONNECT",
        "IN",
    )
    assert "authorizer" not in context


def test_request_time_is_clf_in_utc_with_english_months():
    assert events.request_time(1_707_502_303_420) == "09/Feb/2024:18:11:43 +0000"


def test_ids_look_like_aws_ids_and_are_url_safe_apart_from_the_padding():
    ids = {events.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[A-Za-z0-9]{15}=", value) for value in ids)
