"""API Gateway WebSocket events as the service sends them, for driving handlers in tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

_ids = itertools.count(1)

API_ID = "abc123"
STAGE = "prod"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def authorizer_context(user: str, workspace: str, *, name: str | None = None, exp: int) -> dict[str, Any]:
    return {
        "principalId": user,
        "userId": user,
        "userName": name or user,
        "workspace": workspace,
        "tokenExp": exp,
        "integrationLatency": 5,
    }


def _request_context(connection_id: str, route: str, event_type: str, now_ms: int) -> dict[str, Any]:
    n = next(_ids)
    return {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": f"ext-{n}",
        "requestTime": "28/Nov/2026:10:00:00 +0000",
        "messageDirection": "IN",
        "stage": STAGE,
        "connectedAt": now_ms - 1000,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
        "requestId": f"req-{n}",
        "domainName": DOMAIN,
        "connectionId": connection_id,
        "apiId": API_ID,
    }


def authorizer_event(token: str | None, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    query = {} if token is None else {"token": token}
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:{API_ID}/{STAGE}/$connect",
        "headers": headers or {"Host": DOMAIN},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "stageVariables": {},
        "requestContext": _request_context("conn-auth", "$connect", "CONNECT", 1_790_000_000_000),
    }


def connect_event(connection_id: str, auth: dict[str, Any], now_ms: int) -> dict[str, Any]:
    ctx = _request_context(connection_id, "$connect", "CONNECT", now_ms)
    ctx["authorizer"] = auth
    return {
        "headers": {"Host": DOMAIN},
        "multiValueHeaders": {"Host": [DOMAIN]},
        "queryStringParameters": {"token": "not-logged"},
        "requestContext": ctx,
        "isBase64Encoded": False,
    }


def disconnect_event(connection_id: str, auth: dict[str, Any], now_ms: int) -> dict[str, Any]:
    ctx = _request_context(connection_id, "$disconnect", "DISCONNECT", now_ms)
    ctx["authorizer"] = auth
    ctx["disconnectStatusCode"] = 1001
    ctx["disconnectReason"] = "Going away"
    return {
        "headers": {"Host": DOMAIN},
        "multiValueHeaders": {},
        "requestContext": ctx,
        "isBase64Encoded": False,
    }


def route_event(
    connection_id: str,
    auth: dict[str, Any],
    body: str | dict[str, Any],
    now_ms: int,
    route: str | None = None,
) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    if route is None:
        try:
            route = str(json.loads(raw)["action"])
        except (ValueError, KeyError, TypeError):
            route = "$default"
    ctx = _request_context(connection_id, route, "MESSAGE", now_ms)
    ctx["messageId"] = f"msg-{next(_ids)}"
    ctx["authorizer"] = auth
    return {"requestContext": ctx, "body": raw, "isBase64Encoded": False}
