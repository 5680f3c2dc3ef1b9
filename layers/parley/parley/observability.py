"""One Logger, Tracer and Metrics per container, configured by POWERTOOLS_* variables (template Globals)."""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Powertools' documented rule: Tracer traces on Lambda, unless POWERTOOLS_TRACE_DISABLED is set,
    and never under `sam local` or Chalice's local mode (no X-Ray daemon listens there)."""
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "t", "true", "on", "y", "yes"):
        return False
    on_lambda = bool(env.get("LAMBDA_TASK_ROOT"))
    return on_lambda and not env.get("AWS_SAM_LOCAL") and not env.get("AWS_CHALICE_CLI_MODE")


class _NoSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class Untraced(BaseProvider):
    """The provider where tracing is off. A disabled Tracer still opens (dummy) subsegments through
    its provider, and its default provider imports the X-Ray SDK to do so: about a third of a cold
    start (docs/benchmarks.md). This one records nothing and imports nothing."""

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield _NoSegment()

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[BaseSegment, None]:
        yield _NoSegment()

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


logger = Logger()
tracer = Tracer() if tracing_enabled() else Tracer(provider=Untraced(), disabled=True)
metrics = Metrics()

# Routes such as heartbeat emit no metric of their own; that is expected, not worth a warning per call.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

# API Gateway's request id: every log line of a route invocation carries it as correlation_id.
REQUEST_ID_PATH = "requestContext.requestId"

__all__ = ["REQUEST_ID_PATH", "MetricUnit", "logger", "metrics", "tracer", "tracing_enabled"]
