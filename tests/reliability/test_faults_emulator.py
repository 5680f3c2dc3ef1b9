"""Faults through the emulator: @connections posts answered 410/429 on purpose, DynamoDB requests
throttled, a fan-out that crashes midway or times out, a client that vanishes without `$disconnect`,
retries that run out.

The template is Parley's own with two functions swapped for test doubles (tests/reliability/faulty/):
FanoutFunction wrapped to crash, hang or fail on demand (Timeout lowered to 4 s), and a
DisconnectFunction that does nothing, because on AWS `$disconnect` is best effort and may never come.
For every fault: each acknowledged message reaches every client that stays connected or re-joins with
`since`, in order, once after dedupe; stale connections are cleaned up; nothing reaches the on-failure
destination unless retries ran out, and then it is there.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.chat_client import ChatClient
from tests.reliability.conftest import Running, report, scale, serve
from tests.support.template import ROOT

HERE = Path(__file__).resolve().parent


def faulty_template(tmp: Path) -> tuple[Path, Path]:
    """template.yaml with the faulty fan-out and the lost `$disconnect`; (template, control file)."""
    fanout = tmp / "fanout"
    shutil.copytree(HERE / "faulty" / "fanout", fanout)
    control = fanout / "control.json"
    control.write_text(json.dumps({"real": str(ROOT / "functions" / "fanout" / "app.py")}))
    disconnect = tmp / "disconnect_lost"
    shutil.copytree(HERE / "faulty" / "disconnect_lost", disconnect)
    text = (ROOT / "template.yaml").read_text()
    text = text.replace("CodeUri: functions/fanout/", f"CodeUri: {fanout}/")
    text = text.replace("CodeUri: functions/disconnect/", f"CodeUri: {disconnect}/")
    text = text.replace("CodeUri: functions/", f"CodeUri: {ROOT}/functions/")
    text = text.replace("ContentUri: layers/parley/", f"ContentUri: {ROOT}/layers/parley/")
    start = text.index("\n  FanoutFunction:\n")
    at = text.index("Timeout: 60", start)
    text = text[:at] + "Timeout: 4" + text[at + len("Timeout: 60") :]
    path = tmp / "template.yaml"
    path.write_text(text)
    return path, control


class Faulty:
    def __init__(self, running: Running, control: Path) -> None:
        self.running = running
        self.control = control

    def set(self, **faults: dict[str, int]) -> None:
        with self.control.open("r+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            data = json.load(fh)
            for kind in ("fail", "crash", "timeout"):
                data.pop(kind, None)
            data.update(faults)
            data["fired"] = []
            fh.seek(0)
            fh.truncate()
            json.dump(data, fh)

    def fired(self) -> list[str]:
        return list(json.loads(self.control.read_text()).get("fired", []))

    def posts(
        self, gone: float = 0.0, throttle: float = 0.0, seed: int = 7, *, dynamodb_throttle: float = 0.0
    ) -> None:
        settings = {
            "postGoneRate": gone,
            "postThrottleRate": throttle,
            "dynamodbThrottleRate": dynamodb_throttle,
            "seed": seed,
        }
        request = urllib.request.Request(
            f"{self.running.admin_url}/faults",
            data=json.dumps(settings).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def injected(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.running.admin_url}/faults", timeout=10) as response:
            return dict(json.loads(response.read()))

    def dead_letters(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.running.admin_url}/dead-letters", timeout=30) as response:
            queues = json.loads(response.read())["deadLetters"]
        return [m for messages in queues.values() for m in messages]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    template, control = faulty_template(tmp_path_factory.mktemp("faulty"))
    with serve(template=template) as running:
        yield Faulty(running, control)


async def crowd(emu: Running, workspace: str, n: int, channels: list[str] | None = None) -> list[ChatClient]:
    clients = []
    for i in range(n):
        user = f"u{i}"
        client = ChatClient(partial(emu.url, user, workspace), user, channels or ["general"])
        await client.open()
        clients.append(client)
    return clients


async def converse(senders: list[ChatClient], per_sender: int, channel: str = "general") -> dict[str, str]:
    async def talk(client: ChatClient) -> list[str]:
        return [(await client.say(channel, f"{client.user} #{i}"))["id"] for i in range(per_sender)]

    ids = await asyncio.gather(*(talk(s) for s in senders))
    return {mid: channel for group in ids for mid in group}


def subscriptions(emu: Running, workspace: str, channel: str = "general") -> set[str]:
    key = f"CHAN#{workspace}#{channel}"
    return {
        item["SK"]["S"][4:]
        for item in emu.table_items("StateTable")
        if item["PK"]["S"] == key and item["SK"]["S"].startswith("SUB#")
    }


async def settle(clients: list[ChatClient], acked: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    missing = {c.user: await c.wait_for_all(acked, timeout) for c in clients}
    figures = {
        "acked": len(acked),
        "missing": sum(len(m) for m in missing.values()),
        "raw_duplicates": sum(c.raw_duplicates for c in clients),
        "order_violations": sum(len(c.order_violations) for c in clients),
        "reconnects": sum(c.reconnects for c in clients),
    }
    assert figures["missing"] == 0, missing
    assert figures["order_violations"] == 0, [c.order_violations for c in clients]
    for client in clients:
        assert set(acked) <= set(client.shown)
    return figures


async def test_gone_and_throttled_posts_lose_nothing(faulty: Faulty, workspace: str) -> None:
    emu = faulty.running
    # GIVEN six clients that reconnect whenever the server closes them
    clients = await crowd(emu, workspace, 6)
    supervisors = [asyncio.create_task(c.supervise()) for c in clients]
    # WHEN 15% of posts answer 410 (GoneException) and 20% 429 (LimitExceededException) while three talk
    faulty.posts(gone=0.15, throttle=0.2)
    try:
        acked = await converse(clients[:3], scale(8, 40))
    finally:
        faulty.posts()
    # THEN everyone shows every acknowledged message, once, in order
    figures = await settle(clients, acked)
    assert faulty.dead_letters() == []
    # and once a message reaches everyone, no subscription is left of a connection that is gone
    acked.update(await converse(clients[:1], 1))
    await settle(clients, acked)
    await emu.drain()
    open_ids = set(emu.emulator.gateway.connections)
    assert subscriptions(emu, workspace) <= open_ids
    report("fault-gone-throttle", clients=len(clients), gone_rate=0.15, throttle_rate=0.2, **figures)
    for client in clients:
        await client.close()
    await asyncio.gather(*supervisors, return_exceptions=True)


async def test_throttled_dynamodb_loses_nothing(faulty: Faulty, workspace: str) -> None:
    emu = faulty.running
    # GIVEN six clients in one channel
    clients = await crowd(emu, workspace, 6)
    # WHEN 30% of the functions' DynamoDB requests are throttled (after the SDK's 3 attempts, about 3%
    # of calls fail: a send answers `internal` and is resent, a fan-out Query fails and is retried)
    faulty.posts(dynamodb_throttle=0.3)
    try:
        acked = await converse(clients[:3], scale(8, 40))
        throttled = faulty.injected()["dynamodbThrottled"]
    finally:
        faulty.posts()
    # THEN the throttling happened, and everyone shows every acknowledged message, once, in order
    assert throttled > 0
    figures = await settle(clients, acked)
    assert faulty.dead_letters() == []
    report("fault-dynamodb-throttle", clients=len(clients), throttle_rate=0.3, throttled=throttled, **figures)
    for client in clients:
        await client.close()


async def test_fanout_crash_midway_and_timeout_are_retried(faulty: Faulty, workspace: str) -> None:
    emu = faulty.running
    clients = await crowd(emu, workspace, 5)
    # GIVEN a fan-out that will exit its process after 2 posts once, and hang past its Timeout once
    faulty.set(crash={"left": 1, "after_posts": 2}, timeout={"left": 1, "after_posts": 1})
    # WHEN one client sends, one message after the other
    acked = await converse(clients[:1], 6)
    figures = await settle(clients, acked, timeout=90)
    # THEN both faults happened, everything arrived once and in order, and nothing was dead-lettered
    assert sorted(faulty.fired()) == ["crash", "timeout"]
    assert faulty.dead_letters() == []
    report("fault-crash-timeout", clients=len(clients), **figures)
    for client in clients:
        await client.close()


async def test_vanished_client_is_cleaned_up_by_the_next_fanout(faulty: Faulty, workspace: str) -> None:
    emu = faulty.running
    alice, bob = await crowd(emu, workspace, 2)
    gone_id = next(
        cid for cid, c in emu.emulator.gateway.connections.items() if "u0" in json.dumps(c.authorizer)
    )
    # GIVEN alice's network drops (no close frame) and her $disconnect never arrives
    alice.abort()
    await asyncio.sleep(0.5)
    # WHEN bob talks, THEN he gets his message, and the post to alice (410) removed her connection
    acked = await converse([bob], 1)
    await settle([bob], acked)

    def connection_known() -> bool:
        return any(i["PK"]["S"] == f"CONN#{gone_id}" for i in emu.table_items("StateTable"))

    # the clean-up removes the subscriptions first and the connection item last
    for _ in range(100):
        if gone_id not in subscriptions(emu, workspace) and not connection_known():
            break
        await asyncio.sleep(0.1)
    assert gone_id not in subscriptions(emu, workspace)
    assert not connection_known()
    assert faulty.dead_letters() == []
    await bob.close()
    await alice.close()


async def test_exhausted_retries_land_in_the_dead_letter_queue_and_rejoin_recovers(
    faulty: Faulty, workspace: str
) -> None:
    emu = faulty.running
    alice, bob = await crowd(emu, workspace, 2)
    # GIVEN a fan-out that fails every time
    faulty.set(fail={"left": 10_000})
    # WHEN alice's message is stored (acknowledged) but can never be fanned out
    acked = await converse([alice], 1)
    letters: list[dict[str, Any]] = []
    for _ in range(300):
        letters = faulty.dead_letters()
        if letters:
            break
        await asyncio.sleep(0.1)
    attempts = faulty.fired().count("fail")
    faulty.set()
    # THEN after the retries it is in the on-failure destination, naming the messages stream
    assert len(letters) == 1, letters
    assert "MessagesTable" in json.dumps(letters[0]) or "stream" in json.dumps(letters[0]).lower()
    assert attempts >= 6  # the first attempt and 5 retries
    assert bob.missing(acked) == list(acked)
    # and bob recovers it by re-joining with `since`
    await bob.drop()
    await bob.ensure_open()
    assert bob.missing(acked) == []
    report("fault-retries-exhausted", attempts=attempts, dead_letters=len(letters))
    await alice.close()
    await bob.close()
