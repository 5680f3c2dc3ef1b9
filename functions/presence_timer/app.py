"""Presence timer (SQS, delayed by the grace period): broadcast a leave unless the user came back."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.observability import logger, metrics, tracer
from parley.triggers import handle_presence_timers


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return handle_presence_timers(event, context)
