"""`invite` route: make another user of the workspace a member of a channel."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.api import handle_route
from parley.chat import Chat
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.protocol import InviteFrame


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_route(event, context, InviteFrame, Chat.invite)
