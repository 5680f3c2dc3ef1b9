"""The measurements. Each returns plain dicts (JSON-ready); bench/__main__.py assembles them."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from typing import Any

from bench.clients import Client, open_clients
from bench.harness import Served, serve
from bench.templates import template_default
from parley_client import ConnectionLost
from tests.support.proc import children_rss_kb

WORKSPACE = "bench"
CHANNEL = "general"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def spread(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max) over repeated rounds."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


async def _join_all(
    clients: list[Client], concurrency: int = 1000, *, tolerate: bool = False
) -> tuple[float, float, int]:
    """Every client joins CHANNEL; (first join sent, last joined reply, joins that failed)."""
    sem = asyncio.Semaphore(concurrency)
    first = time.perf_counter()
    last = first
    failed = 0

    async def one(c: Client) -> None:
        nonlocal last, failed
        async with sem:
            reply: dict[str, Any] = {}
            try:
                for _attempt in range(3):  # a client retries a join answered "Internal server error"
                    reply = await c.request({"action": "join", "channel": CHANNEL}, timeout=120)
                    if reply.get("type") == "joined":
                        last = max(last, time.perf_counter())
                        return
                    await asyncio.sleep(1)
            except (TimeoutError, ConnectionLost) as exc:
                reply = {"error": repr(exc)}
            if not tolerate:
                raise RuntimeError(f"join failed: {reply}")
            failed += 1

    await asyncio.gather(*(one(c) for c in clients))
    return first, last, failed


async def _quiet(clients: list[Client], quiet_s: float, limit_s: float) -> float:
    """Wait until no client got a frame for quiet_s; the time of the last frame."""
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        last = max((c.last_frame for c in clients), default=0.0)
        if time.perf_counter() - last >= quiet_s:
            return last
        await asyncio.sleep(0.1)
    return max((c.last_frame for c in clients), default=0.0)


async def _round(
    clients: list[Client], sink: dict[int, list[tuple[int, float]]], rate: float, duration_s: float, base: int
) -> dict[str, Any]:
    """Send at a steady rate from rotating senders; latency of every (message, other recipient)."""
    n = int(rate * duration_s)
    sent: dict[int, tuple[int, float]] = {}
    start = time.perf_counter()
    for k in range(n):
        due = start + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = base + k
        sender = clients[k % len(clients)]
        sent[seq] = (sender.index, time.perf_counter())
        await sender.send_raw(
            f'{{"action":"message","channel":"{CHANNEL}","text":"bench#{seq}# payload",'
            f'"clientMsgId":"b{seq}"}}'
        )
    send_end = time.perf_counter()
    expected = n * (len(clients) - 1)
    deadline = send_end + max(15.0, duration_s)
    progress, progress_at = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        got = sum(len(sink.get(s, ())) for s in sent) - n  # the sender's own echo is not counted
        if got >= expected:
            break
        if got != progress:
            progress, progress_at = got, time.perf_counter()
        elif time.perf_counter() - progress_at > 10:
            break  # nothing more is coming (a message was refused or lost): count the rest as lost
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    last_delivery = start
    duplicates = 0  # at-least-once: a repeat (same message, same member) counts once, at its first arrival
    for seq, (sender_index, t_send) in sent.items():
        seen: set[int] = set()
        for index, t_recv in sink.get(seq, ()):
            if index in seen:
                duplicates += 1
            elif index != sender_index:
                seen.add(index)
                latencies.append((t_recv - t_send) * 1000)
                last_delivery = max(last_delivery, t_recv)
    delivered = len(latencies)
    elapsed = max(last_delivery, send_end) - start
    return {
        "messages": n,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost_or_late": expected - delivered,
        "duplicates": duplicates,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "p99_ms": pct(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "late_over_5s": sum(1 for v in latencies if v > 5000),
        "deliveries_per_s": delivered / elapsed if elapsed > 0 else 0.0,
        "posts_per_s_offered": n / (send_end - start),
        "elapsed_s": elapsed,
        "latencies_sample": sorted(latencies)[:: max(1, len(latencies) // 400)],
    }


async def _setup(served: Served, size: int, sink: dict[int, list[tuple[int, float]]]) -> list[Client]:
    clients, _, failures = await open_clients(
        lambda i: served.url(f"u{i}", WORKSPACE), size, sink, concurrency=50
    )
    if failures:
        raise RuntimeError(f"{failures} connections failed")
    await _join_all(clients, concurrency=100)
    await _quiet(clients, 2.0, 120)
    return clients


def latency(
    strategy: str,
    size: int,
    rate: float,
    window_s: float,
    rounds: int,
    duration_s: float,
    separate_dynamodb: bool = False,
) -> dict[str, Any]:
    """Steady sends into one channel of `size` connections; rounds are repeated on one server.

    separate_dynamodb: DynamoDB in a moto process of its own (`--dynamodb-endpoint`) instead of embedded.
    """
    with serve(
        strategy,
        window_s=window_s,
        tag=f"lat-{strategy}-{size}-{window_s}",
        separate_dynamodb=separate_dynamodb,
    ) as served:

        async def main() -> list[dict[str, Any]]:
            sink: dict[int, list[tuple[int, float]]] = {}
            clients = await _setup(served, size, sink)
            results = []
            for r in range(rounds):
                results.append(await _round(clients, sink, rate, duration_s, base=r * 1_000_000))
                await _quiet(clients, 1.0, 30)
            await asyncio.gather(*(c.close() for c in clients))
            return results

        rs = asyncio.run(main())
    summary = {
        key: spread([r[key] for r in rs])
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "deliveries_per_s", "lost_or_late")
    }
    return {
        "strategy": strategy,
        "channel_size": size,
        "rate_msgs_per_s": rate,
        "window_s": window_s,
        "dynamodb": "own process" if separate_dynamodb else "embedded",
        "rounds": rs,
        "summary": summary,
    }


# ---------------------------------------------------------------- counted work, throughput, coalescing


def total_counts(snapshot: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the hook's per-process totals: calls, items read, bytes, invocations per function."""
    out: dict[str, Any] = {
        "calls": {},
        "items_read": {},
        "bytes_read": {},
        "bytes_written": {},
        "invocations": {},
        "handler_ms": {},
        "records_in": {},
        "eventually_consistent_reads": 0,
        "batches": [],
    }
    for proc in snapshot:
        fn = proc["function"]
        for key in ("calls", "items_read", "bytes_read", "bytes_written"):
            for op, n in proc[key].items():
                out[key][op] = out[key].get(op, 0) + n
        out["invocations"][fn] = out["invocations"].get(fn, 0) + proc["invocations"]
        out["handler_ms"][fn] = out["handler_ms"].get(fn, 0.0) + proc["handler_ms"]
        out["records_in"][fn] = out["records_in"].get(fn, 0) + proc["records_in"]
        out["eventually_consistent_reads"] += proc["eventually_consistent_reads"]
        out["batches"] += [[fn, *b] for b in proc["batches"]]
    return out


def diff_counts(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            out[key] = {k: v - before[key].get(k, 0) for k, v in value.items() if v - before[key].get(k, 0)}
        elif isinstance(value, list):
            out[key] = value[len(before[key]) :]
        else:
            out[key] = value - before[key]
    return out


async def _settle_counts(served: Served, quiet_s: float = 1.5, limit_s: float = 60) -> dict[str, Any]:
    """Counts once they stopped changing (stream batches still in flight are included)."""
    last = None
    stable_since = time.perf_counter()
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        now = total_counts(served.counts())
        if now != last:
            last, stable_since = now, time.perf_counter()
        elif time.perf_counter() - stable_since >= quiet_s:
            break
        await asyncio.sleep(0.25)
    return last or total_counts([])


def work(strategy: str, size: int, messages: int, window_s: float) -> dict[str, Any]:
    """Blast `messages` into a channel of `size` (as fast as the rate limits allow) with the counting
    hook on: delivered events/s, posts, coalescing, and every AWS call per message, counted."""
    with serve(
        strategy, window_s=window_s, counting=True, tag=f"work-{strategy}-{size}-{window_s}"
    ) as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            clients = await _setup(served, size, sink)
            # warm every worker the blast will use, then count only the blast
            await _round(clients, sink, 10, 1.0, base=9_000_000)
            await _quiet(clients, 1.5, 30)
            before = await _settle_counts(served)
            frames_before = sum(c.frames for c in clients)
            start = time.perf_counter()
            sent: dict[int, tuple[int, float]] = {}
            for k in range(messages):
                sender = clients[k % len(clients)]
                sent[k] = (sender.index, time.perf_counter())
                await sender.send_raw(
                    f'{{"action":"message","channel":"{CHANNEL}","text":"bench#{k}# payload",'
                    f'"clientMsgId":"w{k}"}}'
                )
                if k % len(clients) == len(clients) - 1:
                    await asyncio.sleep(0)  # let replies drain
            expected = messages * (len(clients) - 1)
            deadline = time.perf_counter() + 300
            progress, progress_at = -1, time.perf_counter()
            while time.perf_counter() < deadline:
                got = sum(1 for s in sent for (i, _) in sink.get(s, ()) if i != sent[s][0])
                if got >= expected:
                    break
                if got != progress:
                    progress, progress_at = got, time.perf_counter()
                elif time.perf_counter() - progress_at > 10:
                    break  # a refused or lost message: the rest never comes
                await asyncio.sleep(0.1)
            last = max((t for s in sent for (_, t) in sink.get(s, ())), default=start)
            after = await _settle_counts(served)
            frames = sum(c.frames for c in clients) - frames_before
            delivered = sum(1 for s in sent for (i, _) in sink.get(s, ()) if i != sent[s][0])
            await asyncio.gather(*(c.close() for c in clients))
            counted = diff_counts(after, before)
            elapsed = last - start
            posts = counted["calls"].get("apigatewaymanagementapi.PostToConnection", 0)
            fan = [b for b in counted["batches"] if "Fanout" in b[0]]
            return {
                "strategy": strategy,
                "channel_size": size,
                "window_s": window_s,
                "messages": messages,
                "delivered_to_others": delivered,
                "expected_to_others": expected,
                "elapsed_s": elapsed,
                "deliveries_per_s": delivered / elapsed if elapsed > 0 else 0.0,
                "messages_per_s": messages / elapsed if elapsed > 0 else 0.0,
                "posts": posts,
                "posts_per_s": posts / elapsed if elapsed > 0 else 0.0,
                "frames_received": frames,
                # events delivered (the sender's echo included, as Parley sends it) per post
                "coalescing_ratio": (delivered + messages) / posts if posts else float("nan"),
                "fanout_invocations": len(fan),
                "events_per_batch": (sum(b[1] for b in fan) / len(fan)) if fan else 0.0,
                "fanout_batches": [[b[1], b[2]] for b in fan],
                "counted": counted,
            }

        return asyncio.run(main())


# ---------------------------------------------------------------- connections


def connections(n: int, concurrency: int = 100) -> dict[str, Any]:
    """Open n idle connections through the authorizer and $connect; rate and server memory."""
    with serve("parley", tag=f"conn-{n}") as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            # warm the authorizer and $connect workers first (cold starts are measured elsewhere)
            warm, _, _ = await open_clients(lambda i: served.url(f"w{i}", WORKSPACE), 8, sink, concurrency=8)
            await asyncio.gather(*(c.close() for c in warm))
            await asyncio.sleep(2)
            rss0 = served.rss_kb()
            workers0 = children_rss_kb(served.pid)
            start = time.perf_counter()
            clients, durations, failures = await open_clients(
                lambda i: served.url(f"c{i % 500}", WORKSPACE), n, sink, concurrency=concurrency
            )
            elapsed = time.perf_counter() - start
            await asyncio.sleep(3)
            rss1 = served.rss_kb()
            held = int(served.health().get("connections", len(clients)))
            result = {
                "target": n,
                "opened": len(clients),
                "failed": failures,
                "held_by_server": held,
                "elapsed_s": elapsed,
                "connects_per_s": len(clients) / elapsed,
                "handshake_p50_ms": pct(durations, 50) * 1000,
                "handshake_p99_ms": pct(durations, 99) * 1000,
                "rss_before_kb": rss0,
                "rss_after_kb": rss1,
                "kb_per_connection": (rss1 - rss0) / max(1, len(clients)),
                "worker_rss_kb": children_rss_kb(served.pid),
                "worker_rss_before_kb": workers0,
            }
            await asyncio.gather(*(c.close() for c in clients))
            return result

        return asyncio.run(main())


# ---------------------------------------------------------------- join storm


def join_storm(
    n: int, window_s: float | None = None, overrides: dict[str, str] | None = None
) -> dict[str, Any]:
    """n connected clients all send `join` for one channel at once; presence traffic until quiet.
    The batching windows are the template's defaults unless given (`overrides`: template parameters)."""
    if window_s is None:
        window_s = template_default("FanoutBatchingWindowSeconds")
    presence_window_s = float(
        (overrides or {}).get(
            "PresenceBatchingWindowSeconds", template_default("PresenceBatchingWindowSeconds")
        )
    )
    with serve("parley", window_s=window_s, counting=True, overrides=overrides, tag=f"storm-{n}") as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            clients, _, failures = await open_clients(
                lambda i: served.url(f"s{i}", WORKSPACE), n, sink, concurrency=100
            )
            await asyncio.sleep(2)
            before = await _settle_counts(served)
            for c in clients:
                c.frames = 0
                c.presence_frames = 0
            first, last_join, join_failures = await _join_all(clients, concurrency=n, tolerate=True)
            last_frame = await _quiet(clients, 5.0, 180)
            after = await _settle_counts(served, quiet_s=2.0)
            counted = diff_counts(after, before)
            frames = [c.frames for c in clients]
            presence = [c.presence_frames for c in clients]
            last_presence = max(c.last_presence for c in clients)
            await asyncio.gather(*(c.close() for c in clients))
            return {
                "connections": len(clients),
                "failed_connects": failures,
                "failed_joins": join_failures,
                "window_s": window_s,
                "presence_window_s": presence_window_s,
                "joins_span_s": last_join - first,
                "quiet_after_last_join_s": max(0.0, max(last_frame, last_presence) - last_join),
                "posts": counted["calls"].get("apigatewaymanagementapi.PostToConnection", 0),
                "frames_per_connection_mean": statistics.mean(frames),
                "frames_per_connection_max": max(frames),
                "presence_frames_per_connection_mean": statistics.mean(presence),
                "naive_frames_per_connection": len(clients),
                "fanout_invocations": counted["invocations"].get("FanoutFunction", 0)
                + sum(
                    v for k, v in counted["invocations"].items() if "Fanout" in k and k != "FanoutFunction"
                ),
                "counted": counted,
            }

        return asyncio.run(main())


# ---------------------------------------------------------------- wide channel (two-level fan-out)


def wide_channel(
    n: int,
    rate: float = 1.0,
    duration_s: float = 10.0,
    *,
    wide: bool = True,
    chunk_size: int = 250,
    groups: int = 8,
) -> dict[str, Any]:
    """One channel of n members, steady sends; with `wide`, posted through the two-level fan-out
    (threshold below n, chunks of `chunk_size` in `groups` FIFO groups), else by FanoutFunction alone
    (WideFanoutThreshold 0). Presence is held back so the joins do not flood the channel.

    The emulator runs a FIFO queue's batches one at a time (parley's chunks are not posted in parallel
    here as they are on AWS), so this measures the work and correctness of the path, not AWS's speed:
    docs/scaling.md turns the measured per-post CPU into delivery times."""
    overrides = {
        "WideFanoutThreshold": str(max(1, n // 2)) if wide else "0",
        "WideFanoutChunkSize": str(chunk_size),
        "WideFanoutGroups": str(groups),
        "PresenceBatchingWindowSeconds": "300",
        "PresenceBatchSize": "10000",
    }
    tag = f"wide-{n}-{'wide' if wide else 'direct'}"
    with serve("parley", window_s=0, counting=True, overrides=overrides, tag=tag) as served:

        async def main() -> dict[str, Any]:
            sink: dict[int, list[tuple[int, float]]] = {}
            clients = await _setup(served, n, sink)
            before = await _settle_counts(served)
            result = await _round(clients, sink, rate, duration_s, base=0)
            await _quiet(clients, 2.0, 120)
            counted = diff_counts(await _settle_counts(served), before)
            await asyncio.gather(*(c.close() for c in clients))
            return result | {"counted": counted}

        r = asyncio.run(main())
    invocations = r["counted"]["invocations"]
    return {
        "channel_size": n,
        "mode": "two-level" if wide else "direct",
        "rate_msgs_per_s": rate,
        "chunk_size": chunk_size,
        "groups": groups,
        "fanout_invocations": invocations.get("FanoutFunction", 0),
        "chunk_invocations": invocations.get("FanoutChunkFunction", 0),
        "posts": r["counted"]["calls"].get("apigatewaymanagementapi.PostToConnection", 0),
        **{k: r[k] for k in ("messages", "expected_deliveries", "delivered", "lost_or_late", "duplicates")},
        **{k: r[k] for k in ("p50_ms", "p99_ms", "max_ms", "deliveries_per_s", "elapsed_s")},
    }
