"""`thread` route: a page of a thread's replies."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley import message_changes
from parley.api import handle_route
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.protocol import ThreadFrame


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_route(event, context, ThreadFrame, message_changes.thread)
