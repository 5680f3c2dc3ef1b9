"""Scheduled sweeper: forget connections without heartbeats and finish presence leaves the timer missed."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer
from parley.triggers import handle_sweep


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_sweep(context)
