"""Start the emulator as a separate process (its own GIL, its own RSS) on a derived template."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.templates import ROOT, WORK, derive
from tests.support.proc import rss_kb, stop
from tests.support.ws_client import token_url

SECRET = "parley-bench-local-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


POST = "apigatewaymanagementapi.PostToConnection"


@dataclass
class Served:
    ws_url: str
    management_url: str
    pid: int
    counts_dir: Path | None
    log: Path

    def url(self, user: str, workspace: str) -> str:
        return token_url(self.ws_url, SECRET, user, workspace)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.management_url}/_emulator/health", timeout=5) as r:
            return dict(json.loads(r.read()))

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def counts(self) -> list[dict[str, Any]]:
        """The counting hook's per-process totals (each file: one function execution environment), and
        the `@connections` posts as the emulator counted them.

        Posts are counted where they arrive: Parley's fan-out posts through its own signed client, not
        a botocore client, so the hook in the functions does not see them."""
        if self.counts_dir is None:
            return []
        out = []
        for f in sorted(self.counts_dir.glob("*.json")):
            data = json.loads(f.read_text())
            # <stack>-<LogicalId>-<pid>.json: logical ids have no dashes (CloudFormation allows A-Za-z0-9)
            data["function"] = f.stem.split("-")[-2]
            data["calls"].pop(POST, None)
            out.append(data)
        posts = sum(self.health().get("posts", {}).values())
        out.append(
            {"function": "@connections", "invocations": 0, "handler_ms": 0.0, "records_in": 0,
             "calls": {POST: posts} if posts else {}, "items_read": {}, "bytes_read": {},
             "bytes_written": {}, "eventually_consistent_reads": 0, "batches": []}
        )  # fmt: skip
        return out


@contextmanager
def serve(
    strategy: str = "parley",
    *,
    window_s: float = 0,
    batch_size: int = 100,
    counting: bool = False,
    connect_rate: float = 500,
    overrides: Mapping[str, str] | None = None,
    tag: str = "run",
    separate_dynamodb: bool = False,
) -> Iterator[Served]:
    counts_dir = None
    if counting:
        counts_dir = WORK / "counts" / f"{tag}-{os.getpid()}-{time.time_ns()}"
    template = derive(strategy, counting_dir=counts_dir)
    port, mport = free_port(), free_port()
    params = {
        "FanoutBatchingWindowSeconds": str(window_s),
        "FanoutBatchSize": str(batch_size),
        # the bench drives many users from one machine; limits stay at their defaults otherwise
        **(overrides or {}),
    }
    log = WORK / f"emulator-{tag}.log"
    cmd = [
        sys.executable,
        "-m",
        "ws_emulator",
        "serve",
        "--template",
        str(template),
        "--port",
        str(port),
        "--management-port",
        str(mport),
        "--ssm-parameter",
        f"/parley/jwt-secret={SECRET}",
        "--connect-rate",
        str(connect_rate),
        *([] if os.environ.get("BENCH_VERBOSE") else ["--quiet"]),
        # The baseline's Scan and posts from the message route are the sample app's design, which
        # MessageFunction's least-privilege role rightly refuses: it runs with IAM off.
        *(["--no-iam"] if strategy == "baseline" else []),
        "--log-level",
        os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "--parameter-overrides",
        *[f"{k}={v}" for k, v in params.items()],
    ]
    fh = log.open("w")
    moto = None
    if separate_dynamodb:
        moto = subprocess.Popen(
            [sys.executable, "-m", "bench.moto_proc"], cwd=ROOT, stdout=subprocess.PIPE, stderr=fh, text=True
        )
        assert moto.stdout is not None
        cmd += ["--dynamodb-endpoint", f"http://127.0.0.1:{moto.stdout.readline().strip()}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    served = Served(
        ws_url=f"ws://127.0.0.1:{port}/",
        management_url=f"http://127.0.0.1:{mport}",
        pid=proc.pid,
        counts_dir=counts_dir,
        log=log,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"emulator exited {proc.returncode}: see {log}")
            try:
                served.health()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"emulator did not start: see {log}") from None
                time.sleep(0.2)
        yield served
    finally:
        stop(proc)
        if moto is not None:
            stop(moto, timeout=30)
        fh.close()
