"""A bounded soak through the emulator, run as its own process (`python -m ws_emulator serve`) so its
memory and its function workers' can be measured: many connections, churn (reconnects with `since`,
leaves and re-joins, typing) and steady messages, for a fixed time; then every client must show every
acknowledged message of its channels exactly once, each channel in order, with no error frame other
than rate limits, and the emulator's memory must stay flat after warm-up.

Fast (make test): 100 connections for 30 s, so that the whole reliability set stays near 3 minutes.
Full (make reliability-full): 1,000 connections for 600 s. SOAK_CONNECTIONS, SOAK_SECONDS and
SOAK_RATE (messages a second) override either. Everything is on
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.chat_client import ChatClient
from tests.reliability.conftest import SECRET, report, scale, token
from tests.support.emulator_thread import SECRET_PARAM
from tests.support.proc import descendants, rss_kb, stop
from tests.support.template import ROOT

CONNECTIONS = int(os.environ.get("SOAK_CONNECTIONS", scale(100, 1000)))
SECONDS = float(os.environ.get("SOAK_SECONDS", scale(30, 600)))
CHANNELS = [f"c{i}" for i in range(max(4, CONNECTIONS // 25))]
MESSAGES_PER_S = float(os.environ.get("SOAK_RATE", scale(6, 10)))
SAMPLE_S = 5.0


class EmulatorProcess:
    def __init__(self, workdir: Path) -> None:
        self.out = workdir / "emulator.out"
        self.err = workdir / "emulator.err"
        args = [
            sys.executable,
            "-m",
            "ws_emulator",
            "serve",
            "--template",
            str(ROOT / "template.yaml"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--quiet",
            "--log-level",
            "WARNING",
            "--ssm-parameter",
            f"{SECRET_PARAM}={SECRET}",
            "--parameter-overrides",
            "PresenceGraceSeconds=1",
        ]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=self.out.open("w"), stderr=self.err.open("w"), start_new_session=True
        )
        self.ws_url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            match = re.search(r"WebSocket\s+(ws://127\.0\.0\.1:\d+/\S+)", self.out.read_text())
            if match:
                return match.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the emulator did not start:\n{self.err.read_text()[-3000:]}")

    def memory(self) -> dict[str, int]:
        workers = descendants(self.proc.pid)
        return {
            "emulator_kb": rss_kb(self.proc.pid),
            "workers_kb": sum(rss_kb(w) for w in workers),
            "workers": len(workers),
        }

    def stop(self) -> int:
        return stop(self.proc, signal.SIGTERM, group=True)


def progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} soak: {text}", file=sys.stderr, flush=True)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()


class Soak:
    """The clients, the traffic and the books of one soak."""

    def __init__(self, process: EmulatorProcess) -> None:
        self.process = process
        self.workspace = f"soak-{int(time.time())}"
        self.clients: list[ChatClient] = []
        self.memory: list[dict[str, Any]] = []
        self.acked: dict[str, str] = {}
        self.churn: Counter[str] = Counter()
        self.started = self.stop_at = 0.0

    def _url(self, user: str) -> str:
        return f"{self.process.ws_url}?token={token(user, self.workspace)}"

    async def open(self) -> None:
        """The channels, then CONNECTIONS clients (about two per user), each in 2 or 3 channels."""
        owner = ChatClient(lambda: self._url("owner"), "owner", [])
        await owner.open()
        for channel in CHANNELS:
            reply = await owner.request({"action": "create_channel", "name": channel})
            assert reply["type"] == "channel_created", reply
        await owner.close()
        rng = random.Random(42)
        users = [f"user{i}" for i in range(max(2, CONNECTIONS // 2))]
        for i in range(CONNECTIONS):
            user = users[i % len(users)]
            channels = rng.sample(CHANNELS, rng.choice([2, 3]))
            self.clients.append(ChatClient(partial(self._url, user), user, channels))
        for start in range(0, CONNECTIONS, 100):  # under the 500/s connection rate, and retried on 429
            await asyncio.gather(*(c.open() for c in self.clients[start : start + 100]))
            progress(f"{min(start + 100, CONNECTIONS)} connected")

    async def run(self, seconds: float, senders: int = 8) -> None:
        self.started = time.monotonic()
        self.stop_at = self.started + seconds
        await asyncio.gather(self._sample(), self._churn(), *(self._send(k, senders) for k in range(senders)))

    async def _sample(self) -> None:
        while time.monotonic() < self.stop_at + 5:
            self.memory.append({"t": round(time.monotonic() - self.started), **self.process.memory()})
            await asyncio.sleep(SAMPLE_S)

    async def _send(self, k: int, senders: int) -> None:
        local = random.Random(k)
        interval = senders / MESSAGES_PER_S
        await asyncio.sleep(local.random() * interval)
        while time.monotonic() < self.stop_at:
            client = local.choice(self.clients)
            channel = local.choice(client.channel_ids)
            ack = await client.say(channel, f"{client.user} says {local.random():.6f}")
            self.acked[ack["id"]] = channel
            await asyncio.sleep(interval)

    async def _churn(self) -> None:
        local = random.Random(7)
        while time.monotonic() < self.stop_at:
            await asyncio.sleep(local.uniform(0.1, 0.6))
            client = local.choice(self.clients)
            action = local.choice(["reconnect", "rejoin", "typing", "typing", "heartbeat"])
            try:
                await self._churn_one(client, action, local)
                self.churn[action] += 1
            except Exception as exc:  # a connection being replaced meanwhile; the final check decides
                self.churn[f"interrupted {type(exc).__name__}"] += 1

    @staticmethod
    async def _churn_one(client: ChatClient, action: str, local: random.Random) -> None:
        if action == "reconnect":
            await client.drop()  # the supervisor reconnects and re-joins with `since`
        elif action == "rejoin":
            channel = local.choice(client.channel_ids)
            async with client.channel_lock(channel):
                reply = await client.request({"action": "leave", "channel": channel})
                assert reply["type"] == "left", reply
                await asyncio.sleep(local.uniform(0, 1))
                await client.join(channel)  # with `since`: what was missed meanwhile comes back
        elif action == "typing":
            await client.send_only({"action": "typing", "channel": local.choice(client.channel_ids)})
        else:
            await client.request({"action": "heartbeat"})

    def figures(self, missing: dict[str, list[str]]) -> dict[str, Any]:
        clients = self.clients
        return {
            "connections": CONNECTIONS,
            "seconds": SECONDS,
            "channels": len(CHANNELS),
            "messages_acked": len(self.acked),
            "deliveries_expected": sum(
                len([m for m in self.acked.values() if m in c.channel_ids]) for c in clients
            ),
            "lost": sum(len(v) for v in missing.values()),
            "raw_duplicates_before_dedupe": sum(c.raw_duplicates for c in clients),
            "duplicates_after_dedupe": 0,  # ChatClient shows an id once by construction
            "order_violations": sum(len(c.order_violations) for c in clients),
            "reconnects": sum(c.reconnects for c in clients),
            "typing_events_seen": sum(c.typing_seen for c in clients),
            "churn": dict(self.churn),
            "error_frames": dict(sum((c.errors for c in clients), Counter())),
            "memory": self.memory,
        }


async def test_soak(emulator_process: EmulatorProcess) -> None:
    progress("emulator up")
    soak = Soak(emulator_process)
    # GIVEN CONNECTIONS clients that reconnect whenever the server closes them
    await soak.open()
    supervisors = [asyncio.create_task(c.supervise()) for c in soak.clients]
    progress(f"{CONNECTIONS} connections open")
    # WHEN they talk and churn for SECONDS
    await soak.run(SECONDS)
    # THEN, once the streams have caught up, every client shows everything of its channels
    progress(f"traffic done: {len(soak.acked)} messages acknowledged; waiting for delivery")
    waits = await asyncio.gather(*(c.wait_for_all(soak.acked, 120) for c in soak.clients))
    missing = {
        f"{c.user}#{i}": lost for i, (c, lost) in enumerate(zip(soak.clients, waits, strict=True)) if lost
    }
    figures = soak.figures(missing)
    await asyncio.gather(*(c.close() for c in soak.clients))
    await asyncio.gather(*supervisors, return_exceptions=True)
    progress("clients closed")
    report("soak", **figures)
    assert figures["lost"] == 0, {k: v[:5] for k, v in list(missing.items())[:5]}
    assert figures["order_violations"] == 0
    expected_errors = ("rate_limited", "handshake:429")
    unexpected = {k: v for k, v in figures["error_frames"].items() if k not in expected_errors}
    assert unexpected == {}, unexpected
    # memory: flat after warm-up (the first quarter), for the emulator process itself
    warm = [m for m in soak.memory if m["t"] >= SECONDS / 4]
    if len(warm) >= 2:
        first, last = warm[0]["emulator_kb"], warm[-1]["emulator_kb"]
        assert last <= first * 1.5 + 50_000, (first, last)
