"""Counters on the MessagesTable stream: channel message counts and mention counts, for unread state."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.observability import logger, metrics, tracer
from parley.triggers import handle_counters


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return handle_counters(event, context)
