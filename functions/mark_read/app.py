"""`mark_read` route: move the caller's read mark in a channel forward, and tell their other connections."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps
from parley.api import handle_route
from parley.chat import Chat, Reply
from parley.models import Caller
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.protocol import MarkReadFrame


def _mark_read(chat: Chat, caller: Caller, frame: MarkReadFrame) -> Reply:
    return deps.services().conversations.mark_read(caller, frame)


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_route(event, context, MarkReadFrame, _mark_read)
