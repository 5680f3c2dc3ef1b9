"""`publish`: the server-side way in for backends and bots, invoked with the Lambda Invoke API (IAM).

Payload `{"op": "publish" | "history", "app", "workspace", "channel", ...}` (docs/apps.md); the answer
is always a payload: an `ack`, a `history` or an `error` frame.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.apps import handle_invoke
from parley.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return handle_invoke(event, context.aws_request_id)
