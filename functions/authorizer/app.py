"""REQUEST authorizer on `$connect`: verify the JWT in `?token=`; its identity reaches every later event."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.api import handle_authorize
from parley.observability import REQUEST_ID_PATH, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=REQUEST_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_authorize(event)
