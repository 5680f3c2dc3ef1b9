"""`open_dm` route: the direct message between the caller and 1 to 8 other users of the workspace."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import deps
from parley.api import handle_route
from parley.chat import Chat, Reply
from parley.models import Caller
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.protocol import OpenDmFrame


def _open_dm(chat: Chat, caller: Caller, frame: OpenDmFrame) -> Reply:
    return deps.services().conversations.open_dm(caller, frame)


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_route(event, context, OpenDmFrame, _open_dm)
