"""Two users on `make run`'s defaults: warm message delivery and typing-indicator latency.

`python -m bench.realtime [--messages N] [--typing N] [--args '--stream-poll-interval 0.25']` starts
the emulator exactly as `make run` does (template.yaml's own parameter defaults, the development
secret), on free ports, and prints one JSON line: p50/p90/max of alice -> bob for messages (sent to
pushed to bob) and typing indicators, after a warm-up that starts every function involved.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from bench.harness import free_port
from bench.scenarios import pct
from bench.templates import ROOT, WORK
from tests.support.proc import stop
from tests.support.ws_client import Peer, token_url

# The Makefile's DEV_SECRET and WORKSPACE (`make run`).
DEV_SECRET = "ws-emulator-development-secret-not-for-production"
WORKSPACE = "demo"
TYPING_GAP_S = 2.1  # typing writes are conditional: one event per user and channel every 2 s


def _start(extra: list[str]) -> tuple[subprocess.Popen[bytes], str, Any]:
    port, mport = free_port(), free_port()
    WORK.mkdir(parents=True, exist_ok=True)
    log = (WORK / "emulator-realtime.log").open("w")
    cmd = [
        sys.executable,
        "-m",
        "ws_emulator",
        "serve",
        "--template",
        "template.yaml",
        "--port",
        str(port),
        "--management-port",
        str(mport),
        "--static-dir",
        "web",
        "--ssm-parameter",
        f"/parley/jwt-secret={DEV_SECRET}",
        "--quiet",
        *extra,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited {proc.returncode}: see {log.name}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/_emulator/health", timeout=5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("emulator did not start") from None
            time.sleep(0.2)
    return proc, f"ws://127.0.0.1:{port}/", log


def _text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("text") == text


def _typing_after(peer: Peer, seen: int) -> Callable[[dict[str, Any]], bool]:
    """A typing event beyond the first `seen` the peer has had."""
    return lambda event: event["type"] == "typing" and len(peer.of("typing")) > seen


async def _measure(ws_url: str, messages: int, typing: int) -> dict[str, Any]:
    alice = await Peer.open(token_url(ws_url, DEV_SECRET, "alice", WORKSPACE))
    bob = await Peer.open(token_url(ws_url, DEV_SECRET, "bob", WORKSPACE))
    try:
        for peer in (alice, bob):
            joined = await peer.request({"action": "join", "channel": "general"}, timeout=60)
            assert joined["type"] == "joined", joined
        # warm-up: the message route, the fan-out and the typing route have each run once
        for i in range(3):
            await alice.request({"action": "message", "channel": "general", "text": f"warm-{i}"}, timeout=60)
            await bob.wait_for(_text(f"warm-{i}"), 60)
        await alice.send({"action": "typing", "channel": "general"})
        await bob.wait_for(lambda e: e["type"] == "typing", 60)
        await asyncio.sleep(TYPING_GAP_S)
        message_ms: list[float] = []
        for i in range(messages):
            text = f"m-{i}"
            sent = time.perf_counter()
            await alice.send({"action": "message", "channel": "general", "text": text, "clientMsgId": text})
            await bob.wait_for(_text(text), 30)
            message_ms.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(0.05)
        typing_ms: list[float] = []
        for _ in range(typing):
            seen = len(bob.of("typing"))
            sent = time.perf_counter()
            await alice.send({"action": "typing", "channel": "general"})
            await bob.wait_for(_typing_after(bob, seen), 30)
            typing_ms.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(TYPING_GAP_S)
    finally:
        await alice.close()
        await bob.close()

    def stats(values: list[float]) -> dict[str, float]:
        return {"n": len(values), "p50": pct(values, 50), "p90": pct(values, 90), "max": max(values)}

    return {"message_ms": stats(message_ms), "typing_ms": stats(typing_ms)}


def measure(messages: int, typing: int, args: str = "") -> dict[str, Any]:
    """One emulator started as `make run ARGS=...` starts it; latencies in ms."""
    proc, ws_url, log = _start(shlex.split(args))
    try:
        result = asyncio.run(_measure(ws_url, messages, typing))
    finally:
        stop(proc)
        log.close()
    return result | {"args": args, "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--typing", type=int, default=8)
    parser.add_argument("--args", default="", help="extra `ws-emulator serve` options (make run's ARGS)")
    opts = parser.parse_args()
    print(json.dumps(measure(opts.messages, opts.typing, opts.args)))


if __name__ == "__main__":
    main()
