"""Where the time goes: py-spy samples every process of the emulator (gateway + embedded moto, and each
function worker) during steady sends, and sums the samples by process role and by layer of code."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import serve
from bench.scenarios import _quiet, _round, _setup
from bench.templates import WORK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


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


def _role(frames: list[str], pid: int, emulator_pid: int) -> str:
    if pid == emulator_pid:
        return "emulator process"
    for f in frames:
        if "/functions/" in f:
            return "worker " + f.split("/functions/")[1].split("/")[0]
        if "/bench/baseline/" in f:
            return "worker baseline message"
    return "worker (idle or between invocations)"


def profile(strategy: str = "parley", size: int = 100, rate: float = 20, seconds: int = 8) -> dict[str, Any]:
    spy = shutil.which("py-spy")
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
            pids = [served.pid, *_children(served.pid)]
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
        emulator_pid = served.pid
    by_role: Counter[str] = Counter()
    by_cat: dict[str, Counter[str]] = {}
    hot: Counter[str] = Counter()
    for f in out_dir.glob("*.txt"):
        pid = int(f.stem)
        for line in f.read_text().splitlines():
            stack, _, n_text = line.rpartition(" ")
            frames = stack.split(";")[1:]
            n = int(n_text)
            role = _role(frames, pid, emulator_pid)
            by_role[role] += n
            by_cat.setdefault(role, Counter())[_category(frames)] += n
            for fr in frames:
                if "/parley/" in fr or "/ws_emulator/" in fr:
                    hot[fr.split(" (")[0] + " (" + fr.split("/")[-1]] += n
    return {
        "strategy": strategy,
        "channel_size": size,
        "rate_msgs_per_s": rate,
        "seconds": seconds,
        "sample_hz": 100,
        "round": {k: v for k, v in sent.items() if k != "latencies_sample"},
        "samples_by_role": dict(by_role.most_common()),
        "categories_by_role": {role: dict(c.most_common()) for role, c in by_cat.items()},
        "hot_frames_ours": dict(hot.most_common(15)),
    }
