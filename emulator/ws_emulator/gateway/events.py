"""Lambda events for WebSocket routes and REQUEST authorizers, shaped as API Gateway sends them."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class ApiInfo:
    """The API and stage a connection belongs to."""

    api_id: str
    stage: str
    region: str
    account_id: str

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @property
    def connect_method_arn(self) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/$connect"


@dataclass(frozen=True)
class ClientInfo:
    """What the opening handshake told us about the client; fixed for the life of the connection."""

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    headers: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]


def new_id() -> str:
    """An id shaped like API Gateway's (16 characters ending in '='), e.g. a connection or request id.

    AWS ids are base64 and end in '=': keeping the '=' makes clients URL-encode ids in management calls,
    as they must against AWS. The alphabet leaves out '/' and '+' so an id never splits a URL path.
    """
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def request_time(epoch_ms: int) -> str:
    """CLF time as in `requestTime`: `09/Feb/2024:18:11:43 +0000` (month names fixed, not from the locale)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"


def _single_and_multi(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    # API Gateway keeps the last value in the single-value map and every value in the multi-value one.
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def _identity(client: ClientInfo) -> dict[str, str]:
    identity = {"sourceIp": client.source_ip}
    if client.user_agent is not None:
        identity["userAgent"] = client.user_agent
    return identity


def _request_context(
    api: ApiInfo,
    client: ClientInfo,
    *,
    route_key: str,
    event_type: str,
    request_id: str,
    now_ms: int,
    authorizer: Mapping[str, Any] | None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": client.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": _identity(client),
        "requestId": request_id,
        "domainName": api.domain_name,
        "connectionId": client.connection_id,
        "apiId": api.api_id,
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    return context


def _with_request_parameters(event: dict[str, Any], client: ClientInfo) -> dict[str, Any]:
    headers, multi_headers = _single_and_multi(client.headers)
    event["headers"] = headers
    event["multiValueHeaders"] = multi_headers
    # Like AWS, the query maps are present only when the URL had a query string.
    if client.query:
        query, multi_query = _single_and_multi(client.query)
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    return event


def connect_event(
    api: ApiInfo,
    client: ClientInfo,
    *,
    request_id: str,
    now_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `$connect` integration event: handshake headers, query string and the authorizer's output."""
    event: dict[str, Any] = {}
    _with_request_parameters(event, client)
    event["requestContext"] = _request_context(
        api,
        client,
        route_key="$connect",
        event_type="CONNECT",
        request_id=request_id,
        now_ms=now_ms,
        authorizer=authorizer,
    )
    event["isBase64Encoded"] = False
    return event


def message_event(
    api: ApiInfo,
    client: ClientInfo,
    *,
    route_key: str,
    body: str,
    is_base64_encoded: bool,
    message_id: str,
    request_id: str,
    now_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A MESSAGE event; binary frames arrive base64-encoded with `isBase64Encoded` true, as on AWS."""
    context = _request_context(
        api,
        client,
        route_key=route_key,
        event_type="MESSAGE",
        request_id=request_id,
        now_ms=now_ms,
        authorizer=authorizer,
    )
    context["messageId"] = message_id
    return {"requestContext": context, "body": body, "isBase64Encoded": is_base64_encoded}


def disconnect_event(
    api: ApiInfo,
    client: ClientInfo,
    *,
    status_code: int,
    reason: str,
    request_id: str,
    now_ms: int,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `$disconnect` event; AWS sends these fixed headers rather than the handshake's."""
    headers = {"Host": api.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    context = _request_context(
        api,
        client,
        route_key="$disconnect",
        event_type="DISCONNECT",
        request_id=request_id,
        now_ms=now_ms,
        authorizer=authorizer,
    )
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }


def authorizer_event(api: ApiInfo, client: ClientInfo, *, request_id: str, now_ms: int) -> dict[str, Any]:
    """The REQUEST authorizer event for `$connect`; its methodArn has no HTTP method, unlike REST APIs."""
    event: dict[str, Any] = {"type": "REQUEST", "methodArn": api.connect_method_arn}
    _with_request_parameters(event, client)
    event["stageVariables"] = {}
    event["requestContext"] = _request_context(
        api,
        client,
        route_key="$connect",
        event_type="CONNECT",
        request_id=request_id,
        now_ms=now_ms,
        authorizer=None,
    )
    return event
