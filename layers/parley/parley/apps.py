"""The server-side way in: what a backend or bot asks of Parley through the `publish` function.

The caller is authorized by IAM (`lambda:InvokeFunction` on the function), so there is no token and no
connection: the request names its workspace and its app. An app's messages go through the same send
path as a user's (`Chat.send`: the protocol's limits, idempotency per clientMsgId, the stream fan-out)
and carry `app`. An app posts as the user `app#<name>`: '#' is in no user id (parley.names), so an app's
rate limiter and idempotency keys are never shared with, nor claimed by, a user.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from parley import deps, protocol
from parley.api import INTERNAL_MESSAGE, THROTTLED_MESSAGE, THROTTLED_RETRY_AFTER_MS, error_frame
from parley.chat import Chat
from parley.errors import BadRequest, ErrorCode, NotFound, ParleyError, StoreThrottled
from parley.idempotency import PostCommand
from parley.names import WORKSPACE_MAX
from parley.observability import MetricUnit, logger, metrics

APP_USER_PREFIX = "app#"
AppName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Workspace = Annotated[str, StringConstraints(pattern=rf"^[A-Za-z0-9_.-]{{1,{WORKSPACE_MAX}}}$")]


def app_user_id(app: str) -> str:
    return f"{APP_USER_PREFIX}{app}"


class AppRequest(BaseModel):
    """A request to the publish function. Strict like client frames; unknown fields are refused, since
    a typo in a field a bot meant to set would otherwise pass silently."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=False)
    op: str
    app: AppName
    workspace: Workspace
    channel: protocol.ChannelId


class PublishRequest(AppRequest):
    """Post a message. clientMsgId is required: an SDK retries an Invoke that timed out, and only the
    key makes that retry the same message (the answer is then the first one's id and ts)."""

    op: Literal["publish"]
    text: protocol.Text
    client_msg_id: protocol.ClientMsgId = Field(alias="clientMsgId")
    thread_id: protocol.MessageId | None = Field(default=None, alias="threadId")


class HistoryRequest(AppRequest):
    """A page of a channel's messages, newest last, as the `history` frame answers a user."""

    op: Literal["history"]
    before: protocol.MessageId | None = None
    limit: Annotated[int, Field(ge=1, le=protocol.HISTORY_MAX)] = protocol.HISTORY_DEFAULT


Request = Annotated[PublishRequest | HistoryRequest, Field(discriminator="op")]
OPS = ("publish", "history")
_REQUEST: TypeAdapter[PublishRequest | HistoryRequest] = TypeAdapter(Request)


def parse_request(payload: Any) -> PublishRequest | HistoryRequest:
    """The Invoke payload as a request, or BadRequest naming the field (as parse_frame does)."""
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object with an 'op'")
    if payload.get("op") not in OPS:
        raise BadRequest(f"op: must be one of {', '.join(OPS)}")
    try:
        return _REQUEST.validate_python(payload)
    except ValidationError as exc:
        raise BadRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        # the first element of a tagged union's location is the tag ("publish"): not a field
        loc = [str(p) for p in err["loc"][1:]] or ["payload"]
        parts.append(f"{'.'.join(loc)}: {err['msg']}")
    return "; ".join(parts)


class Apps:
    """The publish function's use cases, on the same Chat (store, idempotency, limits) as the routes."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def handle(self, request: PublishRequest | HistoryRequest) -> dict[str, Any]:
        if isinstance(request, PublishRequest):
            return self.publish(request)
        return self.history(request)

    def publish(self, request: PublishRequest) -> dict[str, Any]:
        """Post into an existing channel (public or private: the IAM permission is the authority)."""
        self._require_channel(request.workspace, request.channel)
        message = self.chat.send(
            PostCommand(
                workspace=request.workspace,
                user_id=app_user_id(request.app),
                user_name=request.app,
                channel=request.channel,
                text=request.text,
                client_msg_id=request.client_msg_id,
                thread_id=request.thread_id,
                app=request.app,
            )
        )
        return protocol.ack(message) | {"channel": message.channel}

    def history(self, request: HistoryRequest) -> dict[str, Any]:
        self._require_channel(request.workspace, request.channel)
        frame = protocol.HistoryFrame(
            action="history", channel=request.channel, before=request.before, limit=request.limit
        )
        reply = self.chat.read_history(request.workspace, app_user_id(request.app), frame)
        assert reply.frame is not None
        return reply.frame

    def _require_channel(self, workspace: str, channel: str) -> None:
        if self.chat.store.get_channel(workspace, channel) is None:
            raise NotFound(f"no channel '{channel}' in workspace '{workspace}'")


def handle_invoke(payload: Any, request_id: str) -> dict[str, Any]:
    """The publish function's one entry: every outcome is a payload (an `ack`, a `history` or an
    `error` frame, as on the WebSocket), so a caller checks `type` and never parses a stack trace."""
    op = payload.get("op") if isinstance(payload, dict) else None
    action = op if op in OPS else None
    try:
        request = parse_request(payload)
        logger.append_keys(app=request.app, op=request.op)
        reply = Apps(deps.services().chat).handle(request)
    except ParleyError as exc:
        return error_frame(exc, request_id, action)
    except StoreThrottled:
        logger.warning("store throttled", extra={"op": action})
        metrics.add_metric(name="StoreThrottled", unit=MetricUnit.Count, value=1)
        return protocol.error(
            ErrorCode.INTERNAL,
            THROTTLED_MESSAGE,
            request_id=request_id,
            action=action,
            retry_after_ms=THROTTLED_RETRY_AFTER_MS,
        )
    except Exception:
        logger.exception("publish failed", extra={"op": action})
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        return protocol.error(ErrorCode.INTERNAL, INTERNAL_MESSAGE, request_id=request_id, action=action)
    if isinstance(request, PublishRequest):
        metrics.add_metric(name="AppMessagesSent", unit=MetricUnit.Count, value=1)
    return reply
