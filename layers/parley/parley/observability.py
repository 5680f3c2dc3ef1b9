"""One Logger, Tracer and Metrics per container, configured by POWERTOOLS_* variables (template Globals)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Routes such as heartbeat emit no metric of their own; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# API Gateway's request id: every log line of a route invocation carries it as correlation_id.
REQUEST_ID_PATH = "requestContext.requestId"

__all__ = ["REQUEST_ID_PATH", "MetricUnit", "logger", "metrics", "tracer"]
