"""Route selection as API Gateway evaluates RouteSelectionExpression."""

import pytest

from ws_emulator.gateway.routing import RouteSelectionError, evaluate, parse_expression, select_route

ROUTES = {"$connect", "$disconnect", "$default", "join", "chat/send"}
ACTION = parse_expression("$request.body.action")


def test_body_action_selects_its_route():
    # GIVEN a message naming a defined route / WHEN selecting / THEN that route handles it
    assert select_route(ACTION, '{"action": "join", "channel": "x"}', ROUTES) == "join"


def test_unknown_action_falls_back_to_default():
    assert select_route(ACTION, '{"action": "nope"}', ROUTES) == "$default"


def test_missing_key_falls_back_to_default():
    assert select_route(ACTION, '{"type": "join"}', ROUTES) == "$default"


def test_non_json_body_falls_back_to_default():
    assert select_route(ACTION, "hello there", ROUTES) == "$default"


def test_binary_body_falls_back_to_default():
    assert select_route(ACTION, None, ROUTES) == "$default"


def test_no_default_means_no_route():
    assert select_route(ACTION, "not json", {"join"}) is None
    assert select_route(ACTION, '{"action": "other"}', {"join"}) is None


def test_nested_path():
    expression = parse_expression("$request.body.meta.kind")
    assert select_route(expression, '{"meta": {"kind": "join"}}', ROUTES) == "join"
    assert select_route(expression, '{"meta": "join"}', ROUTES) == "$default"


def test_braced_template_with_literal_text():
    expression = parse_expression("${request.body.service}/${request.body.action}")
    assert select_route(expression, '{"service": "chat", "action": "send"}', ROUTES) == "chat/send"


def test_literal_only_expression_routes_every_message_to_that_key():
    expression = parse_expression("join")
    assert expression.is_literal
    assert select_route(expression, "anything at all", ROUTES) == "join"


def test_messages_cannot_select_connect_or_disconnect():
    assert select_route(ACTION, '{"action": "$connect"}', ROUTES) == "$default"
    assert select_route(ACTION, '{"action": "$disconnect"}', {"$disconnect"}) is None


def test_scalars_compare_by_json_text_and_objects_never_match():
    assert evaluate(ACTION, '{"action": 5}') == "5"
    assert evaluate(ACTION, '{"action": true}') == "true"
    assert evaluate(ACTION, '{"action": {"a": 1}}') is None
    assert evaluate(ACTION, '{"action": null}') is None
    assert evaluate(ACTION, "[1, 2]") is None


def test_unsupported_expression_is_rejected():
    with pytest.raises(RouteSelectionError):
        parse_expression("$request.header.x")
