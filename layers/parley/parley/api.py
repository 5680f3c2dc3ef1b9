"""The one place route events become domain calls and domain results (or errors) become responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps, protocol
from parley.chat import Chat, Reply
from parley.errors import ErrorCode, ParleyError, RateLimited, TokenExpired, UnknownAction
from parley.lambda_events import ConnectEvent, DisconnectEvent, RouteEvent, caller_of
from parley.models import Caller
from parley.observability import MetricUnit, logger, metrics

F = TypeVar("F", bound=protocol.Frame)
Response = dict[str, Any]

INTERNAL_MESSAGE = "something went wrong on our side; try again"


def respond(frame: dict[str, Any] | None) -> Response:
    if frame is None:
        return {"statusCode": 200}
    return {"statusCode": 200, "body": protocol.encode(frame)}


def handle_route(
    event: dict[str, Any],
    context: LambdaContext,
    frame_model: type[F],
    action: Callable[[Chat, Caller, F], Reply],
) -> Response:
    """Parse, authorise by the authorizer's context, run one use case, and map any error to an error frame."""
    request_id = str(event.get("requestContext", {}).get("requestId", ""))
    action_name = protocol.ACTION_OF[frame_model]
    try:
        parsed = RouteEvent.model_validate(event)
        caller = caller_of(
            parsed.request_context.connection_id, request_id, parsed.request_context.authorizer
        )
        logger.append_keys(connection_id=caller.connection_id, user_id=caller.user.id)
        chat = deps.services().chat
        chat.once.register(context)
        chat.check_token(caller)
        body = parsed.body if isinstance(parsed.body, str) else None
        return respond(action(chat, caller, protocol.parse_frame(body, frame_model)).frame)
    except TokenExpired as exc:
        return _close_expired(caller, exc, action_name)
    except ParleyError as exc:
        return respond(error_frame(exc, request_id, action_name))
    except Exception:
        # store failures, a misconfigured event, bugs: details go to the log (with the request id),
        # never to the client
        logger.exception("route failed", extra={"action": action_name})
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        return respond(
            protocol.error(ErrorCode.INTERNAL, INTERNAL_MESSAGE, request_id=request_id, action=action_name)
        )


def error_frame(exc: ParleyError, request_id: str, action: str | None) -> dict[str, Any]:
    retry_after = exc.retry_after_ms if isinstance(exc, RateLimited) else None
    if isinstance(exc, RateLimited):
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
    return protocol.error(
        exc.code, exc.message, request_id=request_id, action=action, retry_after_ms=retry_after
    )


def _close_expired(caller: Caller, exc: TokenExpired, action: str | None) -> Response:
    """Tell the client why, then close: the route response would race the close, so post it first."""
    chat = deps.services().chat
    frame = protocol.encode(error_frame(exc, caller.request_id, action))
    chat.notifier.post(caller.connection_id, frame)
    chat.notifier.close(caller.connection_id)
    return respond(None)


def handle_default(event: dict[str, Any]) -> Response:
    """`$default`: frames that are not JSON objects, or name no known action."""
    request_id = str(event.get("requestContext", {}).get("requestId", ""))
    context_ = RouteEvent.model_validate(event).request_context
    caller = caller_of(context_.connection_id, request_id, context_.authorizer)
    try:
        deps.services().chat.check_token(caller)  # every frame, as on the named routes
        data = protocol.decode_json_object(event.get("body"))
        action = data.get("action")
        known = ", ".join(protocol.FRAMES)
        if not isinstance(action, str):
            raise UnknownAction(f"frame has no 'action'; use one of {known}")
        raise UnknownAction(f"unknown action {json.dumps(action)[:100]}; use one of {known}")
    except TokenExpired as exc:
        return _close_expired(caller, exc, None)
    except ParleyError as exc:
        return respond(error_frame(exc, request_id, None))


def handle_connect(event: dict[str, Any]) -> Response:
    """Register a connection the authorizer admitted. Anything but 200 refuses the handshake."""
    try:
        parsed = ConnectEvent.model_validate(event)
        ctx = parsed.request_context
        caller = caller_of(ctx.connection_id, ctx.request_id, ctx.authorizer)
        logger.append_keys(connection_id=caller.connection_id, user_id=caller.user.id)
        deps.services().chat.connect(caller, int(ctx.connected_at.timestamp() * 1000))
    except Exception:
        logger.exception("connect failed")
        return {"statusCode": 500}
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}


def handle_disconnect(event: dict[str, Any]) -> Response:
    parsed = DisconnectEvent.model_validate(event)
    ctx = parsed.request_context
    logger.append_keys(connection_id=ctx.connection_id)
    logger.info("disconnect", extra={"status": ctx.disconnect_status_code, "reason": ctx.disconnect_reason})
    deps.services().chat.disconnect(ctx.connection_id)
    return {"statusCode": 200}


def handle_authorize(event: dict[str, Any]) -> Response:
    """REQUEST authorizer: verify the token fully; any doubt raises Unauthorized (API Gateway answers 401)."""
    from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
        APIGatewayAuthorizerResponseWebSocket,
    )

    from parley.errors import InvalidToken

    query = event.get("queryStringParameters") or {}
    try:
        identity = deps.verifier().verify(query.get("token"))
    except InvalidToken as exc:
        # the reason only: the token itself is never logged
        logger.info("token refused", extra={"reason": exc.reason})
        metrics.add_metric(name="TokensRefused", unit=MetricUnit.Count, value=1)
        raise Exception("Unauthorized") from None
    policy = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        event["methodArn"], principal_id=identity.user_id, context=identity.authorizer_context()
    )
    policy.allow_route("$connect")
    return policy.asdict()
