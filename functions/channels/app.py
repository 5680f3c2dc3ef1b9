"""`channels` route: the workspace's channels this user may see, with membership, DMs and unread counts."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps
from parley.api import handle_route
from parley.chat import Chat, Reply
from parley.models import Caller
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.protocol import ChannelsFrame


def _list_channels(chat: Chat, caller: Caller, frame: ChannelsFrame) -> Reply:
    # with the caller's DMs and unread state (parley.conversations); Chat.list_channels has neither
    return deps.services().conversations.list_channels(caller, frame)


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_route(event, context, ChannelsFrame, _list_channels)
