"""The one place route events become domain calls and domain results (or errors) become responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps, protocol
from parley.chat import Chat, Reply
from parley.errors import ErrorCode, ParleyError, RateLimited, StoreThrottled, TokenExpired, UnknownAction
from parley.lambda_events import ConnectEvent, DisconnectEvent, RouteEvent, caller_of
from parley.models import Caller
from parley.observability import MetricUnit, logger, metrics

F = TypeVar("F", bound=protocol.Frame)
Response = dict[str, Any]

INTERNAL_MESSAGE = "something went wrong on our side; try again"
THROTTLED_MESSAGE = "we are busy right now; nothing was saved, send it again shortly"
THROTTLED_RETRY_AFTER_MS = 1000


def respond(frame: dict[str, Any] | None) -> Response:
    if frame is None:
        return {"statusCode": 200}
    return {"statusCode": 200, "body": protocol.encode(frame)}


@dataclass(slots=True)
class _Request:
    """What the error mapping needs to know about the request it answers."""

    request_id: str
    action: str | None  # None on `$default`, `$connect`, `$disconnect`
    caller: Caller | None = None  # once the authorizer's context has been read


def _request_id(event: dict[str, Any]) -> str:
    return str(event.get("requestContext", {}).get("requestId", ""))


def _error_reply(request: _Request, exc: Exception) -> Response:
    """The one mapping from an error to what a client is told; call it from an `except` block."""
    if isinstance(exc, TokenExpired) and request.caller is not None:
        return _close_expired(request.caller, exc, request.action)
    if isinstance(exc, ParleyError):
        return respond(error_frame(exc, request.request_id, request.action))
    if isinstance(exc, StoreThrottled):
        # DynamoDB shed load (a hot partition, on-demand scaling behind a surge): nothing was written,
        # and the same frame will likely succeed in a moment, so say when to send it again.
        logger.warning("store throttled", extra={"action": request.action, "code": str(exc)})
        metrics.add_metric(name="StoreThrottled", unit=MetricUnit.Count, value=1)
        return respond(
            protocol.error(
                ErrorCode.INTERNAL,
                THROTTLED_MESSAGE,
                request_id=request.request_id,
                action=request.action,
                retry_after_ms=THROTTLED_RETRY_AFTER_MS,
            )
        )
    # store failures, a misconfigured event, bugs: details go to the log (with the request id),
    # never to the client
    logger.exception("route failed", extra={"action": request.action})
    metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
    return respond(
        protocol.error(
            ErrorCode.INTERNAL, INTERNAL_MESSAGE, request_id=request.request_id, action=request.action
        )
    )


def _error_status(route: str, exc: Exception) -> Response:
    """The same mapping where no frame can answer (`$connect`, `$disconnect`): a typed error is logged
    with its code, anything else as a failure; the status says which."""
    if isinstance(exc, ParleyError):
        logger.warning(f"{route} refused", extra={"code": exc.code.value})
        return {"statusCode": 403 if route == "connect" else 200}
    logger.exception(f"{route} failed")
    metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
    return {"statusCode": 500}


def handle_route(
    event: dict[str, Any],
    context: LambdaContext,
    frame_model: type[F],
    action: Callable[[Chat, Caller, F], Reply],
) -> Response:
    """Parse, authorise by the authorizer's context, run one use case, and map any error to an error frame."""
    request = _Request(_request_id(event), protocol.ACTION_OF[frame_model])
    try:
        parsed = RouteEvent.model_validate(event)
        ctx = parsed.request_context
        request.caller = caller = caller_of(ctx.connection_id, request.request_id, ctx.authorizer)
        logger.append_keys(connection_id=caller.connection_id, user_id=caller.user.id)
        chat = deps.services().chat
        chat.once.register(context)
        chat.check_token(caller)
        body = parsed.body if isinstance(parsed.body, str) else None
        reply = action(chat, caller, protocol.parse_frame(body, frame_model))
    except Exception as exc:
        return _error_reply(request, exc)
    if request.action == "message":
        # Messages accepted per minute, for the dashboard (a retried send is counted again).
        metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=1)
    return respond(reply.frame)


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
    request = _Request(_request_id(event), None)
    try:
        ctx = RouteEvent.model_validate(event).request_context
        request.caller = caller_of(ctx.connection_id, request.request_id, ctx.authorizer)
        logger.append_keys(connection_id=request.caller.connection_id, user_id=request.caller.user.id)
        deps.services().chat.check_token(request.caller)  # every frame, as on the named routes
        data = protocol.decode_json_object(event.get("body"))
        action = data.get("action")
        known = ", ".join(protocol.FRAMES)
        if not isinstance(action, str):
            raise UnknownAction(f"frame has no 'action'; use one of {known}")
        raise UnknownAction(f"unknown action {json.dumps(action)[:100]}; use one of {known}")
    except Exception as exc:
        return _error_reply(request, exc)


def handle_connect(event: dict[str, Any]) -> Response:
    """Register a connection the authorizer admitted. Anything but 200 refuses the handshake."""
    try:
        parsed = ConnectEvent.model_validate(event)
        ctx = parsed.request_context
        caller = caller_of(ctx.connection_id, ctx.request_id, ctx.authorizer)
        logger.append_keys(connection_id=caller.connection_id, user_id=caller.user.id)
        deps.services().chat.connect(caller, int(ctx.connected_at.timestamp() * 1000))
    except Exception as exc:
        return _error_status("connect", exc)
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}


def handle_disconnect(event: dict[str, Any]) -> Response:
    """Forget a connection that closed. Nobody is left to answer: failures are logged (and retried by
    nobody: the sweeper and TTL clean up what this misses)."""
    try:
        ctx = DisconnectEvent.model_validate(event).request_context
        logger.append_keys(connection_id=ctx.connection_id)
        # How long connections live; its sample count is the closes seen ($disconnect is best effort).
        lived_s = (ctx.request_time_epoch - ctx.connected_at).total_seconds()
        metrics.add_metric(name="ConnectionDuration", unit=MetricUnit.Seconds, value=max(0.0, lived_s))
        logger.info(
            "disconnect", extra={"status": ctx.disconnect_status_code, "reason": ctx.disconnect_reason}
        )
        deps.services().chat.disconnect(ctx.connection_id)
    except Exception as exc:
        return _error_status("disconnect", exc)
    return {"statusCode": 200}


def handle_authorize(event: dict[str, Any]) -> Response:
    """REQUEST authorizer: verify the token fully; any doubt about the token raises Unauthorized (API
    Gateway answers 401), a JWKS that cannot be read raises KeysUnavailable (500)."""
    from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
        APIGatewayAuthorizerResponseWebSocket,
    )

    from parley.errors import InvalidToken, KeysUnavailable

    query = event.get("queryStringParameters") or {}
    try:
        identity = deps.verifier().verify(query.get("token"))
    except InvalidToken as exc:
        # the reason only: the token itself is never logged
        logger.info("token refused", extra={"reason": exc.reason})
        metrics.add_metric(name="TokensRefused", unit=MetricUnit.Count, value=1)
        raise Exception("Unauthorized") from None
    except KeysUnavailable as exc:
        # An outage, not a bad token: re-raised (anything but "Unauthorized" is API Gateway's 500), not
        # counted as TokensRefused, so AuthorizerErrorsAlarm fires; JwksUnavailableAlarm names it.
        logger.error("JWKS unavailable", extra={"reason": exc.reason})
        metrics.add_metric(name="JwksUnavailable", unit=MetricUnit.Count, value=1)
        raise
    policy = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        event["methodArn"], principal_id=identity.user_id, context=identity.authorizer_context()
    )
    policy.allow_route("$connect")
    return policy.asdict()
