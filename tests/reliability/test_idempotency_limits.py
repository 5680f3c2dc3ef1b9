"""Idempotent sends and limits through the emulator: a resent clientMsgId is stored and broadcast once,
the message rate limit holds across a user's connections, and new connections over 500/s get HTTP 429."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from parley_client import Connection, HandshakeRefused
from tests.reliability.conftest import Running, report, scale
from tests.support.ws_client import Peer


async def joined(emu: Running, user: str, workspace: str, channel: str = "general", **join: Any) -> Peer:
    peer = await Peer.open(emu.url(user, workspace))
    reply = await peer.request({"action": "join", "channel": channel, **join}, timeout=30)
    assert reply["type"] == "joined", reply
    return peer


def stored_messages(emu: Running, workspace: str) -> list[dict[str, Any]]:
    prefix = f"WS#{workspace}#CHAN#"
    return [
        item
        for item in emu.table_items("MessagesTable")
        if item["PK"]["S"].startswith(prefix) and item["SK"]["S"].startswith("MSG#")
    ]


async def request_until_ack(peer: Peer, frame: dict[str, Any]) -> dict[str, Any]:
    """Send, and resend the same frame on `conflict` (first copy still in progress) or `rate_limited`."""
    for _ in range(50):
        reply = await peer.request(frame, timeout=30)
        if reply["type"] == "ack":
            return reply
        assert reply["code"] in ("conflict", "rate_limited"), reply
        await asyncio.sleep(reply.get("retryAfterMs", 100) / 1000)
    raise AssertionError("never acknowledged")


async def test_resend_after_a_lost_ack_and_a_reconnect_stores_and_broadcasts_once(
    emu: Running, workspace: str
) -> None:
    # GIVEN bob listening, and alice who sends a message but drops the connection before reading the ack
    bob = await joined(emu, "bob", workspace)
    alice = await joined(emu, "alice", workspace)
    frame = {"action": "message", "channel": "general", "text": "exactly once", "clientMsgId": "c-lost-ack"}
    await alice.send(frame)
    await alice.ws.close()  # the ack is lost with the connection
    # WHEN she reconnects, re-joins and resends the same clientMsgId, twice, from two tabs
    tab1 = await joined(emu, "alice", workspace)
    tab2 = await joined(emu, "alice", workspace)
    acks = [await request_until_ack(tab1, frame), await request_until_ack(tab2, frame)]
    # THEN the same id both times, one stored message, and bob sees it once
    assert acks[0]["id"] == acks[1]["id"]
    await bob.wait_for(lambda e: e["type"] == "message" and e["clientMsgId"] == "c-lost-ack", 30)
    await emu.drain()
    await asyncio.sleep(0.5)
    assert [e["id"] for e in bob.of("message")] == [acks[0]["id"]]
    assert len(stored_messages(emu, workspace)) == 1
    # and a different text under the same clientMsgId is a conflict, storing nothing
    clash = await tab1.request({**frame, "text": "another text"}, timeout=30)
    assert clash["type"] == "error" and clash["code"] == "conflict", clash
    assert len(stored_messages(emu, workspace)) == 1
    # (a later message reaches bob: a second copy would have come before it)
    marker = await bob.control()
    assert [e["id"] for e in bob.of("message") if e["text"] != marker] == [acks[0]["id"]]
    for peer in (bob, tab1, tab2):
        await peer.close()


async def test_concurrent_resends_from_several_connections_store_once(emu: Running, workspace: str) -> None:
    # GIVEN one user on four connections, and bob
    bob = await joined(emu, "bob", workspace)
    tabs = [await joined(emu, "alice", workspace) for _ in range(4)]
    n = scale(5, 40)
    # WHEN every tab sends the same n clientMsgIds at once
    frames = [
        {"action": "message", "channel": "general", "text": f"m{i}", "clientMsgId": f"dup-{i}"}
        for i in range(n)
    ]

    async def send_all(tab: Peer) -> list[str]:
        return [(await request_until_ack(tab, f))["id"] for f in frames]

    ids = await asyncio.gather(*(send_all(t) for t in tabs))
    # THEN every tab got the same ids, n messages are stored and bob sees each once
    assert all(tab_ids == ids[0] for tab_ids in ids)
    await bob.wait_for(lambda e: e["type"] == "message" and e["clientMsgId"] == f"dup-{n - 1}", 30)
    await emu.drain()
    await asyncio.sleep(0.5)
    assert sorted(e["id"] for e in bob.of("message")) == sorted(ids[0])
    assert len(stored_messages(emu, workspace)) == n
    # (a later message reaches bob: a duplicate would have come before it)
    marker = await bob.control()
    assert sorted(e["id"] for e in bob.of("message") if e["text"] != marker) == sorted(ids[0])
    report("idempotency", clients=len(tabs), client_msg_ids=n, sends=n * len(tabs), stored=n)
    for peer in (bob, *tabs):
        await peer.close()


async def test_rate_limit_holds_across_a_users_connections(emu: Running, workspace: str) -> None:
    # GIVEN alice on three connections (burst 20, then 5 per second, per user)
    bob = await joined(emu, "bob", workspace)
    tabs = [await joined(emu, "alice", workspace) for _ in range(3)]
    attempts = 45
    started = time.monotonic()

    async def burst(tab: Peer, k: int) -> list[dict[str, Any]]:
        out = []
        for i in range(attempts // len(tabs)):
            frame = {
                "action": "message",
                "channel": "general",
                "text": f"t{k}-{i}",
                "clientMsgId": f"r{k}-{i}",
            }
            out.append(await tab.request(frame, timeout=30))
        return out

    # WHEN they send 45 messages as fast as they can
    replies = [r for group in await asyncio.gather(*(burst(t, k) for k, t in enumerate(tabs))) for r in group]
    elapsed = time.monotonic() - started
    acked = [r for r in replies if r["type"] == "ack"]
    limited = [r for r in replies if r["type"] == "error"]
    # THEN at most burst + rate * elapsed went through, the rest was refused with a retry hint
    unexpected = [r for r in limited if not (r["code"] == "rate_limited" and r["retryAfterMs"] > 0)]
    assert not unexpected, unexpected
    assert len(acked) <= 20 + 5 * elapsed + 1
    assert limited, "45 messages from one user in a burst must hit the per-user limit"
    # and only what was acknowledged is stored and broadcast
    await emu.drain()
    await asyncio.sleep(0.5)
    assert len(stored_messages(emu, workspace)) == len(acked)
    assert sorted(e["id"] for e in bob.of("message")) == sorted(a["id"] for a in acked)
    # (a later message reaches bob: a refused one broadcast anyway would have come before it)
    marker = await bob.control()
    assert sorted(e["id"] for e in bob.of("message") if e["text"] != marker) == sorted(a["id"] for a in acked)
    report(
        "rate-limit",
        connections=len(tabs),
        attempts=attempts,
        acked=len(acked),
        limited=len(limited),
        seconds=round(elapsed, 2),
    )
    for peer in (bob, *tabs):
        await peer.close()


async def _handshake_status(url: str) -> int:
    try:
        async with await Connection.open(url, open_timeout=60):
            return 101
    except HandshakeRefused as exc:
        return exc.status


async def _raw_handshakes(ws_url: str, n: int) -> tuple[list[int], float]:
    """Open n TCP connections first, then send every upgrade request at once: a real burst of handshakes."""
    host, port = ws_url.split("//", 1)[1].split("/", 1)[0].split(":")
    conns = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(n)))
    request = (
        f"GET /prod HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    started = time.monotonic()
    for _, writer in conns:
        writer.write(request)
    await asyncio.gather(*(writer.drain() for _, writer in conns))
    lines = await asyncio.gather(*(asyncio.wait_for(reader.readline(), 60) for reader, _ in conns))
    elapsed = time.monotonic() - started
    for _, writer in conns:
        writer.close()
    return [int(line.split()[1]) for line in lines], elapsed


async def test_new_connections_over_500_per_second_get_429(emu: Running) -> None:
    # GIVEN the emulator's default connection rate (AWS: 500 new connections per second per account)
    assert emu.emulator.config.connect_rate == 500
    # WHEN 1,500 handshakes arrive at once (without a token: cheap, but each still counts against the rate);
    # that many exceed a 500 burst + 500/s unless the machine takes over 2 s to answer them
    statuses, burst_s = await _raw_handshakes(emu.ws_url, 1500)
    # and a valid one right after
    late = await _handshake_status(emu.url("alice", "rate-ws"))
    # THEN the excess got 429 Too Many Requests (as API Gateway answers), the rest 401 (no token)
    counts = {s: statuses.count(s) for s in set(statuses)}
    assert set(counts) <= {401, 429}, counts
    assert counts.get(401, 0) <= 500 + 500 * burst_s + 1, (counts, burst_s)
    assert counts.get(429, 0) > 0, (counts, burst_s)
    assert late in (101, 429)
    # and once the bucket refills, connections open again
    await asyncio.sleep(1.2)
    assert await _handshake_status(emu.url("alice", "rate-ws")) == 101
    report("connect-rate", attempts=1500, by_status=counts, burst_seconds=round(burst_s, 2))
