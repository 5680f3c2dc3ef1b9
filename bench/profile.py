"""Where the time goes: py-spy samples every process of the emulator (gateway + embedded moto, and each
function worker) during steady sends, and sums the samples by process role and by layer of code."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.clients import open_clients
from bench.harness import serve
from bench.scenarios import WORKSPACE, _quiet, _round, _setup
from bench.templates import WORK
from tests.support.proc import children


def _category(frames: list[str]) -> str:
    text = ";".join(frames)
    if "/moto/" in text or "/werkzeug/" in text or "/flask/" in text:
        return "embedded moto (HTTP server + DynamoDB)"
    if "/botocore/" in text or "/urllib3/" in text or "/boto3/" in text:
        return "boto3/botocore clients (serialize, HTTP, parse)"
    if "/aws_lambda_powertools/" in text and "/parley/" not in text.split("aws_lambda_powertools")[-1]:
        if "/pydantic" in text:
            return "pydantic (event and frame models)"
        return "Powertools (logger, metrics, idempotency, batch)"
    if "/pydantic" in text:
        return "pydantic (event and frame models)"
    if "/websockets/" in text:
        return "websockets (frames to clients)"
    if "/parley/" in text or "/functions/" in text or "/bench/baseline/" in text:
        return "Parley's own code"
    if "/ws_emulator/" in text:
        return "emulator's own code (routing, events, workers' pipes)"
    return "interpreter, json, asyncio, other"


_IDLE_LEAVES = (
    "_do_waitpid",  # asyncio's child watcher, one thread per worker process
    "concurrent/futures/thread.py:81",  # an idle pool thread waiting for work
    "select (",
    "selectors.py",
    "Condition.wait",
    "Event.wait",
)


def _role(frames: list[str], emulator: bool) -> str:
    if emulator:
        return "emulator process (gateway, @connections, embedded moto)"
    text = ";".join(frames)
    for f in frames:
        if "/functions/" in f:
            return "worker " + f.split("/functions/")[1].split("/")[0]
        if "/bench/baseline/" in f:
            return "worker baseline message"
    if "/parley/fanout.py" in text or "/parley/notify.py" in text:
        return "worker fanout"  # its posting threads start outside the handler
    return "workers, between invocations"


def aggregate(out_dir: Path, seconds: int, hz: int) -> dict[str, Any]:
    """Sum py-spy's raw samples by process role and code layer (files named <pid>.txt)."""
    by_role: Counter[str] = Counter()
    by_cat: dict[str, Counter[str]] = {}
    hot: Counter[str] = Counter()
    for f in out_dir.glob("*.txt"):
        lines = f.read_text().splitlines()
        emulator = any("ws_emulator/cli.py" in line for line in lines)
        for line in lines:
            stack, _, n_text = line.rpartition(" ")
            frames = stack.split(";")[1:]
            n = int(n_text)
            leaf = frames[-1] if frames else ""
            # py-spy counts threads blocked in some syscalls as active: drop the known idle waits
            if any(w in leaf for w in _IDLE_LEAVES):
                continue
            role = _role(frames, emulator)
            if role == "workers, between invocations":
                continue
            by_role[role] += n
            by_cat.setdefault(role, Counter())[_category(frames)] += n
            for fr in frames:
                if "/parley/" in fr or "/ws_emulator/" in fr:
                    hot[fr.split(" (")[0] + " (" + fr.split("/")[-1]] += n
    return {
        "seconds": seconds,
        "sample_hz": hz,
        "samples_by_role": dict(by_role.most_common()),
        "categories_by_role": {role: dict(c.most_common()) for role, c in by_cat.items()},
        "hot_frames_ours": dict(hot.most_common(15)),
    }


def profile(strategy: str = "parley", size: int = 100, rate: float = 20, seconds: int = 8) -> dict[str, Any]:
    # make bench runs .venv/bin/python without activating the venv: look beside the interpreter too
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise RuntimeError("py-spy is not installed (make bench installs requirements-bench.txt)")
    out_dir = WORK / "profile"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    with serve(strategy, window_s=0, tag=f"profile-{strategy}") as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            clients = await _setup(served, size, sink)
            await _round(clients, sink, rate, 2, base=0)
            await _quiet(clients, 1.0, 30)
            pids = [served.pid, *children(served.pid)]
            spies = [
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "-p",
                        str(p),
                        "-d",
                        str(seconds),
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "--full-filenames",
                        "-o",
                        str(out_dir / f"{p}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for p in pids
            ]
            r = await _round(clients, sink, rate, seconds, base=1_000_000)
            for s in spies:
                s.wait()
            await asyncio.gather(*(c.close() for c in clients))
            return r

        sent = asyncio.run(main())
    return {
        "strategy": strategy,
        "channel_size": size,
        "rate_msgs_per_s": rate,
        "round": {k: v for k, v in sent.items() if k != "latencies_sample"},
        **aggregate(out_dir, seconds, 100),
    }


def profile_connects(n: int = 600, concurrency: int = 100, seconds: int = 6) -> dict[str, Any]:
    """py-spy over every emulator process while n clients connect through the authorizer and $connect."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise RuntimeError("py-spy is not installed (make bench installs requirements-bench.txt)")
    out_dir = WORK / "profile-connects"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    with serve("parley", tag="profile-connects") as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            warm, _, _ = await open_clients(lambda i: served.url(f"w{i}", WORKSPACE), 8, sink, concurrency=8)
            await asyncio.gather(*(c.close() for c in warm))
            await asyncio.sleep(2)
            pids = [served.pid, *children(served.pid)]
            spies = [
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "-p",
                        str(p),
                        "-d",
                        str(seconds),
                        "-r",
                        "100",
                        "-f",
                        "raw",
                        "--full-filenames",
                        "-o",
                        str(out_dir / f"{p}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for p in pids
            ]
            start = time.perf_counter()
            clients, _, failures = await open_clients(
                lambda i: served.url(f"c{i}", WORKSPACE), n, sink, concurrency=concurrency
            )
            elapsed = time.perf_counter() - start
            for s in spies:
                s.wait()
            await asyncio.gather(*(c.close() for c in clients))
            return {"opened": len(clients), "failed": failures, "connects_per_s": len(clients) / elapsed}

        opened = asyncio.run(main())
    return {"connections": opened, **aggregate(out_dir, seconds, 100)}
