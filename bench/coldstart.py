"""Cold start of each function: a fresh interpreter imports the handler module (the layer included),
then builds what the first invocation builds (deps.services(): boto3 clients, settings; the
authorizer's deps.verifier(): the token verifier)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

from bench.templates import ROOT
from tests.support.world import PARLEY_ENV

_PROBE = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import importlib
module = importlib.import_module("app")
t1 = time.perf_counter()
init_ms = None
try:
    from parley import deps
    if os.path.basename(sys.argv[1]) == "authorizer":
        deps.verifier()  # what its first invocation builds: the token verifier (pyjwt, cryptography)
    else:
        deps.services()
    init_ms = (time.perf_counter() - t0) * 1000
except Exception as exc:  # functions that build no services (the authorizer) still count their import
    init_ms = None
print(json.dumps({"import_ms": (t1 - t0) * 1000, "import_and_services_ms": init_ms}))
"""

_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    **PARLEY_ENV,
    # nothing listens on port 9: building clients must not need an answer
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "STATE_TABLE": "state",
    "MESSAGES_TABLE": "messages",
    "IDEMPOTENCY_TABLE": "idem",
    "CONNECTIONS_ENDPOINT": "http://127.0.0.1:9/prod",
    "PRESENCE_QUEUE_URL": "http://127.0.0.1:9/000000000000/q",
    "POWERTOOLS_SERVICE_NAME": "parley",
    "POWERTOOLS_METRICS_NAMESPACE": "Parley",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "AWS_SAM_LOCAL": "true",
    "PATH": "/usr/bin:/bin",
}
# As on Lambda: Powertools' Tracer traces (LAMBDA_TASK_ROOT set, not sam local).
_TRACED_ENV = {k: v for k, v in _ENV.items() if k != "AWS_SAM_LOCAL"} | {"LAMBDA_TASK_ROOT": "/var/task"}


def _samples(fn_dir: Any, env: dict[str, str], repeats: int) -> list[dict[str, Any]]:
    samples = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _PROBE, str(fn_dir), str(ROOT / "layers" / "parley")],
            capture_output=True,
            text=True,
            env=env | {"AWS_LAMBDA_FUNCTION_NAME": fn_dir.name},
            timeout=60,
            check=False,
        )
        if proc.returncode == 0:
            samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return samples


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _init(sample: dict[str, Any]) -> float:
    value = sample["import_and_services_ms"]
    return float(value if value is not None else sample["import_ms"])


def measure(repeats: int) -> dict[str, Any]:
    """Per function: import and init here (tracing off, as under sam local and the emulator), and init
    with tracing on as on Lambda with `Tracing: Active` (Powertools then loads and patches the X-Ray SDK)."""
    out: dict[str, Any] = {}
    for fn_dir in sorted((ROOT / "functions").iterdir()):
        if not (fn_dir / "app.py").is_file():
            continue
        samples = _samples(fn_dir, _ENV, repeats)
        traced = _samples(fn_dir, _TRACED_ENV, repeats)
        inits = [s["import_and_services_ms"] for s in samples if s["import_and_services_ms"] is not None]
        out[fn_dir.name] = {
            "import_ms": _summary([s["import_ms"] for s in samples]),
            "init_ms": _summary(inits),
            "traced_init_ms": _summary([_init(s) for s in traced]),
            "n": len(samples),
        }
    return out
