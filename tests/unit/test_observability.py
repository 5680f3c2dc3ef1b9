"""Tracing: on where Powertools would trace, and where it is off the X-Ray SDK is never loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer

from parley.observability import Untraced, tracing_enabled

LAYER = Path(__file__).parents[2] / "layers" / "parley"

ENVIRONMENTS = [
    {},
    {"LAMBDA_TASK_ROOT": "/var/task"},
    {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
    {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
    {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"},
    {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
    {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
    {"AWS_SAM_LOCAL": "true"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tracing_is_on_exactly_where_powertools_would_trace(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled(env) is not bool(Tracer._is_tracer_disabled())


def test_an_untraced_handler_still_runs_and_raises_through_the_tracer() -> None:
    tracer = Tracer(provider=Untraced(), disabled=True)

    @tracer.capture_lambda_handler
    def handler(event: dict[str, int], context: object) -> int:
        if event["n"] < 0:
            raise ValueError("negative")
        return event["n"] * 2

    assert handler({"n": 21}, None) == 42
    with pytest.raises(ValueError, match="negative"):
        handler({"n": -1}, None)


def test_the_x_ray_sdk_is_not_imported_where_tracing_is_off() -> None:
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import parley.api; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_xray_sdk.core', 'jwt', 'cryptography'))))"
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "AWS_SAM_LOCAL": "true"}
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(LAYER)], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"  # nor pyjwt and cryptography: only the authorizer verifies tokens
