"""The environment a function's worker sees: Lambda's variables, the template's, local endpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ws_emulator.template.specs import FunctionSpec, Template

# The script each execution environment runs (Lambda calls its runtime's entry point `bootstrap`).
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")


def rewrite_urls(environment: Mapping[str, str], url_rewrites: Mapping[str, str]) -> dict[str, str]:
    """Point environment values naming the emulated API's AWS URL at the local one (prefixes too)."""
    return {key: _rewrite(value, url_rewrites) for key, value in environment.items()}


def _rewrite(value: str, url_rewrites: Mapping[str, str]) -> str:
    for remote, local in url_rewrites.items():
        bare = remote.rstrip("/")
        if value.rstrip("/") == bare:
            return local
        if value.startswith(bare + "/"):
            return local.rstrip("/") + value[len(bare) :]
    return value


def function_environment(
    spec: FunctionSpec,
    template: Template,
    env_overrides: Mapping[str, str],
    url_rewrites: Mapping[str, str],
    log_stream_name: str,
) -> dict[str, str]:
    """The os.environ a worker of `spec` sees: Lambda's variables, the template's, then overrides."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_REGION": template.region,
        "AWS_DEFAULT_REGION": template.region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        # As `sam local` does: Powertools Tracer and friends switch themselves off.
        "AWS_SAM_LOCAL": "true",
    }
    # Set last: Lambda does not let a template override these.
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
        "_HANDLER": spec.handler,
    }
    return base | rewrite_urls(spec.environment, url_rewrites) | dict(env_overrides) | reserved
