"""Render docs/benchmarks.md and docs/img/bench-*.png from bench/results/latest.json (never edited by hand)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import cost
from bench.templates import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
WORKLOAD = {"connections": 10_000, "messages_per_user_day": 50, "channel_size": 100}


def _f(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and digits == 0 and abs(x) < 10:
        digits = 1
    return f"{x:,.{digits}f}"


def _s(stat: dict[str, Any] | None, digits: int = 0) -> str:
    """median [min–max] over rounds."""
    if not stat or not stat.get("n"):
        return "–"
    if stat["n"] == 1:
        return _f(stat["median"], digits)
    return f"{_f(stat['median'], digits)} [{_f(stat['min'], digits)}–{_f(stat['max'], digits)}]"


def _latency_plot(results: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = 0
    for run in results["latency"]:
        samples = sorted(x for r in run["rounds"] for x in r["latencies_sample"])
        if not samples:
            continue
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        label = f"{run['strategy']} · {run['channel_size']} conns · {run['rate_msgs_per_s']:g} msg/s"
        if run["strategy"] == "parley":
            label += f" · window {run['window_s']:g} s"
        if run.get("dynamodb") == "own process":
            label += " · DynamoDB own process"
        ax.plot(samples, ys, label=label, linestyle="-" if run["strategy"] == "parley" else "--")
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xscale("log")
    ax.set_xlabel("send → receive on every other socket (ms, log scale)")
    ax.set_ylabel("share of deliveries")
    ax.set_title("End-to-end latency through the emulator (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / "bench-latency-cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _throughput_plot(results: dict[str, Any]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for run in results["work"]:
        key = run["strategy"] + (f" · window {run['window_s']:g} s" if run["strategy"] == "parley" else "")
        series.setdefault(key + " (saturating burst)", []).append(
            (run["channel_size"], run["deliveries_per_s"])
        )
    for run in results["latency"]:
        key = run["strategy"] + (f" · window {run['window_s']:g} s" if run["strategy"] == "parley" else "")
        key += f" ({run['rate_msgs_per_s']:g} msg/s offered)"
        if run.get("dynamodb") == "own process":
            continue
        series.setdefault(key, []).append((run["channel_size"], run["summary"]["deliveries_per_s"]["median"]))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, points in sorted(series.items()):
        points.sort()
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            label=key,
            linestyle="-" if key.startswith("parley") else "--",
        )
    ax.set_xscale("log")
    ax.set_xlabel("connections in the channel (log scale)")
    ax.set_ylabel("delivered events / s (event × recipient)")
    ax.set_title("Fan-out throughput against channel size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6.5)
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / "bench-deliveries-vs-channel-size.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _find(runs: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for r in runs:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("met" if ok else "**missed**")

    embedded = [r for r in results["latency"] if r.get("dynamodb", "embedded") == "embedded"]
    lat = _find(embedded, strategy="parley", channel_size=100, rate_msgs_per_s=20, window_s=0)
    base = _find(embedded, strategy="baseline", channel_size=100, rate_msgs_per_s=20)
    if lat and base:
        p, b = lat["summary"]["deliveries_per_s"]["median"], base["summary"]["deliveries_per_s"]["median"]
        rows.append(
            (
                "fan-out ≥ 10× the baseline's delivered events/s (100 conns, 20 msg/s offered)",
                f"{_f(p)} vs {_f(b)} events/s = {_f(p / b if b else float('nan'), 2)}×",
                verdict(b > 0 and p / b >= 10),
            )
        )
    wp = _find(results["work"], strategy="parley", channel_size=100, window_s=1) or _find(
        results["work"], strategy="parley", channel_size=100
    )
    wb = _find(results["work"], strategy="baseline", channel_size=100)
    if wp and wb:
        dp, db = wp["delivered_to_others"] + wp["messages"], wb["delivered_to_others"] + wb["messages"]
        ip = sum(wp["counted"]["items_read"].values()) / dp
        ib = sum(wb["counted"]["items_read"].values()) / db
        rows.append(
            (
                "fan-out ≥ 10× the baseline's delivered events/s at saturation (100 conns, burst)",
                f"{_f(wp['deliveries_per_s'])} vs {_f(wb['deliveries_per_s'])} events/s = "
                f"{_f(wp['deliveries_per_s'] / wb['deliveries_per_s'], 2)}×",
                verdict(wp["deliveries_per_s"] / wb["deliveries_per_s"] >= 10),
            )
        )
        rows.append(
            (
                "DynamoDB items read per delivered event ≥ 10× lower (100 conns)",
                f"{_f(ip, 3)} vs {_f(ib, 3)} = {_f(ib / ip if ip else float('nan'), 1)}× lower",
                verdict(ip > 0 and ib / ip >= 10),
            )
        )
    if lat:
        p50, p99 = lat["summary"]["p50_ms"]["median"], lat["summary"]["p99_ms"]["median"]
        rows.append(
            ("latency p50 ≤ 50 ms (100 conns, 20 msg/s, window 0)", f"{_f(p50)} ms", verdict(p50 <= 50))
        )
        rows.append(("latency p99 ≤ 250 ms (same)", f"{_f(p99)} ms", verdict(p99 <= 250)))
    c = results.get("connections")
    if c:
        rows.append(
            (
                "≥ 5,000 concurrent connections held",
                f"{c['held_by_server']:,}",
                verdict(c["held_by_server"] >= 5000),
            )
        )
        rows.append(
            (
                "≤ 32 KB server memory per connection",
                f"{_f(c['kb_per_connection'], 1)} KB",
                verdict(c["kb_per_connection"] <= 32),
            )
        )
        rows.append(
            (
                "≥ 200 connects/s through authorizer + $connect",
                f"{_f(c['connects_per_s'])}/s",
                verdict(c["connects_per_s"] >= 200),
            )
        )
    s = results.get("join_storm")
    if s:
        rows.append(
            (
                f"join storm ({s['connections']:,}): quiet ≤ 5 s after the last join",
                f"{_f(s['quiet_after_last_join_s'], 1)} s",
                verdict(s["quiet_after_last_join_s"] <= 5),
            )
        )
        rows.append(
            (
                "join storm: ≤ 20 frames per connection",
                f"{_f(s['frames_per_connection_mean'], 1)} mean, {s['frames_per_connection_max']} max",
                verdict(s["frames_per_connection_max"] <= 20),
            )
        )
    rows.extend(_limit_targets(results, verdict))
    cs = results.get("coldstart")
    if cs:
        worst = max(cs.items(), key=lambda kv: (kv[1]["init_ms"] or kv[1]["import_ms"])["median"])
        w = (worst[1]["init_ms"] or worst[1]["import_ms"])["median"]
        traced = [v["traced_init_ms"]["median"] for v in cs.values() if v.get("traced_init_ms")]
        also = f" (tracing on, as deployed: worst {_f(max(traced))} ms)" if traced else ""
        rows.append(
            (
                "cold start of every function ≤ 300 ms",
                f"worst {worst[0]}: {_f(w)} ms{also}",
                verdict(w <= 300),
            )
        )
    return rows


def _limit_targets(
    results: dict[str, Any], verdict: Callable[[bool | None], str]
) -> list[tuple[str, str, str]]:
    """Issue #14's targets: real time on make run's defaults, the poster's CPU, Parley / reference."""
    rows: list[tuple[str, str, str]] = []
    defaults = next((r for r in results.get("realtime") or [] if r and not r["args"]), None)
    if defaults:
        m, t = defaults["message_ms"]["p50"], defaults["typing_ms"]["p50"]
        rows.append(
            ("two users, `make run` defaults: message p50 ≤ 100 ms (§8)", f"{_f(m)} ms", verdict(m <= 100))
        )
        rows.append(("two users: typing indicator p50 ≤ 300 ms (§8)", f"{_f(t)} ms", verdict(t <= 300)))
    poster = results.get("poster")
    if poster:
        ratio = poster["ratio_boto3_over_signed"]
        rows.append(
            (
                "`@connections` client CPU per post ≥ 3× below boto3's (§9)",
                f"{_f(ratio, 2)}×",
                verdict(ratio >= 3),
            )
        )
    sbs = results.get("side_by_side")
    if sbs and "20" in sbs["parley"]:
        par, ref, q = sbs["parley"]["20"], sbs["reference"]["20"], sbs["parley_over_reference"]["20"]
        rows.append(
            (
                f"{sbs['size']} × 20 msg/s: p50 ≤ 100 ms, p99 ≤ 400 ms, none later than 5 s (§10)",
                f"p50 {_f(par['p50_ms'])} ms, p99 {_f(par['p99_ms'])} ms, {_f(par['late_over_5s'])} late",
                verdict(par["p50_ms"] <= 100 and par["p99_ms"] <= 400 and par["late_over_5s"] == 0),
            )
        )
        rows.append(
            (
                "Parley's p50 within 5× of the reference server's (100 × 20 msg/s, §10)",
                f"{_f(par['p50_ms'])} / {_f(ref['p50_ms'], 1)} ms = {_f(q['p50'])}×",
                verdict(q["p50"] <= 5),
            )
        )
        best = max(sbs["parley"].values(), key=lambda r: r["deliveries_per_s"])["deliveries_per_s"]
        best_ref = max(sbs["reference"].values(), key=lambda r: r["deliveries_per_s"])["deliveries_per_s"]
        rows.append(
            (
                "Parley's delivered events/s within 2× of the reference's (best offered rate, §10)",
                f"{_f(best)} / {_f(best_ref)} events/s = {_f(best_ref / best if best else float('nan'), 1)}× fewer",
                verdict(best > 0 and best_ref / best <= 2),
            )
        )
    two_level = next((r for r in results.get("wide_channel") or [] if r and r["mode"] == "two-level"), None)
    if two_level:
        n, ok = two_level["channel_size"], two_level["lost_or_late"] == 0 and two_level["delivered"] > 0
        rows.append(
            (
                "a 2,000-member channel through the two-level fan-out: every delivery arrives (§11)",
                f"{_f(n)} members, {_f(two_level['delivered'])} of {_f(two_level['expected_deliveries'])} "
                f"delivered, p50 {_f(two_level['p50_ms'])} ms",
                verdict(ok and n >= 2000),
            )
        )
    return rows


def _limit_plot(results: dict[str, Any]) -> str | None:
    """p50 and p99 of Parley and the reference server, per offered rate (log scale)."""
    sbs = results.get("side_by_side")
    if not sbs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = list(sbs["reference"])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    width = 0.2
    for i, (server, stat) in enumerate(
        (("reference", "p50_ms"), ("reference", "p99_ms"), ("parley", "p50_ms"), ("parley", "p99_ms"))
    ):
        xs = [k + (i - 1.5) * width for k in range(len(rates))]
        ax.bar(xs, [sbs[server][r][stat] for r in rates], width, label=f"{server} {stat[:3]}")
    ax.set_xticks(range(len(rates)), [f"{sbs['size']} members × {r} msg/s" for r in rates])
    ax.set_yscale("log")
    ax.set_ylabel("send → receive (ms, log scale)")
    ax.set_title("Parley through the emulator against the in-memory reference server")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / "bench-reference.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _limit_sections(w: Callable[[str], None], results: dict[str, Any]) -> None:
    """Real time on make run's defaults, the @connections client, and Parley / reference (#14)."""
    realtime = [r for r in results.get("realtime") or [] if r]
    if realtime:
        _section(
            w,
            "8. Two users on `make run`'s defaults",
            "alice sends, bob receives, warm functions, template defaults (window 0), the emulator woken by "
            "DynamoDB writes, or polling each shard at Lambda's cadence (`python -m bench.realtime`). "
            "Targets: message p50 ≤ 100 ms, typing ≤ 300 ms.",
            "emulator options | message p50 ms | p90 | max | typing p50 ms | p90 | max | load average",
        )
        for r in realtime:
            m, t = r["message_ms"], r["typing_ms"]
            w(
                f"| {r['args'] or '(defaults)'} | {_f(m['p50'])} | {_f(m['p90'])} | {_f(m['max'])} | "
                f"{_f(t['p50'])} | {_f(t['p90'])} | {_f(t['max'])} | {r['load'][0]:.2f} |"
            )
        w("")
    poster = results.get("poster")
    if poster:
        cpu = poster["cpu_ms_per_post"]
        _section(
            w,
            "9. `@connections` client CPU per post",
            "Client CPU (process time) per `PostToConnection` through Parley's notifier, against a keep-alive "
            "HTTP server in another process; rounds alternate between the clients in one run "
            f"(`python -m bench.poster`, {poster['rounds']} rounds of {poster['posts_per_round']}). Target: "
            "boto3 / signed ≥ 3.",
            "client | CPU ms per post",
        )
        w(f"| boto3 `post_to_connection` | {_f(cpu['boto3'], 3)} |")
        w(f"| `SignedConnectionsClient` (SigV4Auth, kept-alive connection) | {_f(cpu['signed'], 3)} |")
        w(f"| boto3 / signed | {_f(poster['ratio_boto3_over_signed'], 2)}× (load {poster['load'][0]:.2f}) |")
        w("")
    sbs = results.get("side_by_side")
    if sbs:
        plot = _limit_plot(results)
        _section(
            w,
            "10. Parley against the limit",
            "The same clients and scenario as §1 against the in-memory reference server (bench/reference.py: "
            "protocol v1's hot path in one process on `websockets`, no AWS) and against Parley in the emulator, "
            f"one after the other in one run; {sbs['rounds']} rounds of {sbs['round_s']:g} s, medians. Aims: "
            f"Parley's p50 within 5× of the reference's at 100 × 20 msg/s, delivered events/s within 2×. Load "
            f"average {sbs['load_before'][0]:.2f} before, {sbs['load_after'][0]:.2f} after.",
            "offered | server | p50 ms | p99 ms | max ms | late > 5 s | lost | delivered events/s",
        )
        for rate in sbs["reference"]:
            for server in ("reference", "parley"):
                r = sbs[server][rate]
                w(
                    f"| {sbs['size']} × {rate} msg/s | {server} | {_f(r['p50_ms'], 1)} | {_f(r['p99_ms'], 1)} | "
                    f"{_f(r['max_ms'], 1)} | {_f(r['late_over_5s'])} | {_f(r['lost_or_late'])} | "
                    f"{_f(r['deliveries_per_s'])} |"
                )
            q = sbs["parley_over_reference"][rate]
            w(
                f"| {sbs['size']} × {rate} msg/s | Parley / reference | {_f(q['p50'], 1)}× | {_f(q['p99'], 1)}× | | "
                f"| | {_f(q['deliveries_per_s'], 2)}× |"
            )
        w("")
        if plot:
            w(f"![Parley against the reference server](img/{plot})")
            w("")
    wide = [r for r in results.get("wide_channel") or [] if r]
    if wide:
        _section(
            w,
            "11. A wide channel: the two-level fan-out",
            "One channel, every member a real WebSocket connection through the authorizer and `join`, steady "
            "sends; *delivered* counts each (message, member) once, *repeats* the copies beyond it (at least "
            "once: clients drop them by event id) (`python -m bench run --only wide`; `BENCH_WIDE_SIZE` sets the size). *two-level*: "
            "WideFanoutThreshold below the channel's size, so FanoutFunction hands chunks of recipients to "
            "WideFanoutQueue (SQS FIFO) and FanoutChunkFunction posts them; *direct*: WideFanoutThreshold 0, "
            "FanoutFunction posts every frame itself. The emulator runs a FIFO queue's batches one at a time and "
            "shares 2 cores with the clients, so this shows the path's work and correctness, not AWS's speed: "
            "[scaling.md](scaling.md) turns the per-post CPU into delivery times for 10,000 and 100,000 members.",
            "mode | members | chunk size × groups | messages | deliveries expected | delivered | lost or late | "
            "repeats | p50 ms | p99 ms | posts | fan-out / chunk invocations",
        )
        for r in wide:
            w(
                f"| {r['mode']} | {_f(r['channel_size'])} | {r['chunk_size']} × {r['groups']} | {_f(r['messages'])} | "
                f"{_f(r['expected_deliveries'])} | {_f(r['delivered'])} | {_f(r['lost_or_late'])} | "
                f"{_f(r.get('duplicates'))} | {_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {_f(r['posts'])} | "
                f"{_f(r['fanout_invocations'])} / {_f(r['chunk_invocations'])} |"
            )
        w("")


def _section(w: Callable[[str], None], title: str, intro: str, columns: str) -> None:
    """A section's heading and paragraph, then the head of its table (`columns`: "a | b | c")."""
    for line in (f"## {title}", "", intro, "", f"| {columns} |", "|---" * (columns.count(" | ") + 1) + "|"):
        w(line)


def render(results: dict[str, Any]) -> Path:
    cdf = _latency_plot(results)
    thr = _throughput_plot(results)
    m = results["machine"]
    out: list[str] = []
    w = out.append
    w("# Benchmarks")
    w("")
    w("<!-- GENERATED by `python -m bench render` from bench/results/latest.json: do not edit by hand. -->")
    w("")
    duration = results.get("duration_s")
    w(
        f"Measured with `{results['command']}` (`{results['argv']}`) on {results['date']}, commit "
        f"`{results['git']['commit'][:12]}`"
        f"{' (with uncommitted changes)' if results['git']['dirty_paths'] else ''}"
        + (f", in {_f(duration / 60)} min." if duration else ".")
    )
    if results.get("updated_steps"):
        w(
            f"Steps run again afterwards with `python -m bench run --only …`, last on {results['updated_date']}: "
            + ", ".join(results["updated_steps"])
            + (
                f" (join storm with `BENCH_STORM_SIZE={results['join_storm']['connections']}`)"
                if "storm" in results["updated_steps"]
                and results.get("join_storm")
                and results["join_storm"]["connections"] != results.get("settings", {}).get("storm")
                else ""
            )
            + "."
        )
    w(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, {m['os']}, "
        f"`ulimit -n` {m['open_files_limit']}. Everything (clients, emulator, moto, function workers) shares these "
        "cores over 127.0.0.1, so the absolute figures are those of a laptop-class box, not of AWS."
    )
    w("")
    w(
        "How it runs: `bench/` starts the emulator (`ws-emulator serve`) as its own process on a template derived "
        "from template.yaml at bench time (bench/.work/), drives it with real WebSocket clients from the bench "
        "process, and repeats each measurement in rounds on one server; figures are *median [min–max] over the "
        "rounds*. The baseline is aws-samples/simple-websockets-chat-app's fan-out (bench/baseline/app.py: Scan every "
        "connection, one post per connection per message, no channels, no coalescing), swapped in for MessageFunction "
        "by the derived template and served by the same emulator. AWS calls are counted by an opt-in wrapper "
        "(bench/hook/bench_hook.py: botocore `before-call`/`after-call` hooks on every session in every function "
        "worker), not estimated. `make bench-quick` runs a smaller profile in a few minutes."
    )
    w("")
    w("## Targets")
    w("")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for t, v, ok in _targets(results):
        w(f"| {t} | {v} | {ok} |")
    w("")
    if results.get("errors"):
        w(
            "Steps that failed in this run: "
            + "; ".join(f"{e['step']} ({e['error'][:120]})" for e in results["errors"])
        )
        w("")
    _section(
        w,
        "1. End-to-end latency",
        "Send on one socket → received on every other socket of the channel, senders rotating over the members "
        "(each member is a distinct user, so the per-user rate limit of 5 msg/s is never hit). Window = "
        "`FanoutBatchingWindowSeconds` (the baseline posts from the message route itself and has none). "
        "*lost/late* = deliveries not seen within max(15 s, round length) of the round's last send.",
        "strategy | window s | conns | offered msg/s | p50 ms | p95 ms | p99 ms | delivered events/s | lost/late per round",
    )
    for r in results["latency"]:
        s = r["summary"]
        name = r["strategy"] + (
            " (DynamoDB in its own process)" if r.get("dynamodb") == "own process" else ""
        )
        w(
            f"| {name} | {r['window_s'] if r['strategy'] == 'parley' else '–'} | {r['channel_size']:,} | "
            f"{r['rate_msgs_per_s']:g} | {_s(s['p50_ms'])} | {_s(s['p95_ms'])} | {_s(s['p99_ms'])} | "
            f"{_s(s['deliveries_per_s'])} | {_s(s['lost_or_late'])} |"
        )
    w("")
    if cdf:
        w(f"![latency CDF](img/{cdf})")
        w("")
    _section(
        w,
        "2. Fan-out throughput and coalescing",
        "A burst: every member sends in turn, as fast as the connections take it, until the messages are out; "
        "throughput = deliveries to the other members / (last delivery − first send). *coalescing* = events "
        "delivered (echo to the sender included) per `PostToConnection`; *events per batch* = stream records per "
        "FanoutFunction invocation.",
        "strategy | window s | conns | messages | delivered events/s | messages/s | posts/s | coalescing | events per batch | fan-out invocations",
    )
    for r in results["work"]:
        w(
            f"| {r['strategy']} | {r['window_s'] if r['strategy'] == 'parley' else '–'} | {r['channel_size']:,} | "
            f"{r['messages']} | {_f(r['deliveries_per_s'])} | {_f(r['messages_per_s'], 1)} | {_f(r['posts_per_s'])} | "
            f"{_f(r['coalescing_ratio'], 1)} | {_f(r['events_per_batch'], 1)} | {r['fanout_invocations']} |"
        )
    w("")
    if thr:
        w(f"![deliveries against channel size](img/{thr})")
        w("")
    w("## 3. Connections")
    w("")
    c = results.get("connections")
    if c:
        w(
            "Idle connections opened through the REQUEST authorizer and `$connect` (100 handshakes in flight, the "
            "emulator's default connect quota of 500/s), held, then counted by the emulator's health endpoint. Memory "
            "is the emulator process's RSS growth (gateway, `@connections` and embedded DynamoDB — the connection "
            "items live there too) divided by the connections; function workers are separate processes."
        )
        w("")
        w(
            "| opened | failed | held | connects/s | handshake p50 / p99 ms | RSS before → after | KB per connection | function workers' RSS |"
        )
        w("|---|---|---|---|---|---|---|---|")
        w(
            f"| {c['opened']:,} | {c['failed']} | {c['held_by_server']:,} | {_f(c['connects_per_s'])} | "
            f"{_f(c['handshake_p50_ms'])} / {_f(c['handshake_p99_ms'])} | {c['rss_before_kb'] / 1024:,.0f} → "
            f"{c['rss_after_kb'] / 1024:,.0f} MiB | {_f(c['kb_per_connection'], 1)} | {c['worker_rss_kb'] / 1024:,.0f} MiB |"
        )
        w("")
    s = results.get("join_storm")
    w("## 4. Join storm")
    w("")
    if s:
        w(
            f"{s['connections']:,} connected clients send `join` for one channel at the same moment (window "
            f"{s['window_s']:g} s"
            + (f", presence window {s['presence_window_s']:g} s" if "presence_window_s" in s else "")
            + "). A naive design sends one presence diff per join to every member: "
            + f"{s['connections']:,} frames per connection, {s['connections'] ** 2:,} in all."
        )
        w("")
        w(
            "| joins took | quiet after the last join | posts | frames per connection (mean / max) | presence frames per connection | fan-out invocations |"
        )
        w("|---|---|---|---|---|---|")
        w(
            f"| {_f(s['joins_span_s'], 1)} s | {_f(s['quiet_after_last_join_s'], 1)} s | {s['posts']:,} | "
            f"{_f(s['frames_per_connection_mean'], 1)} / {s['frames_per_connection_max']} | "
            f"{_f(s['presence_frames_per_connection_mean'], 1)} | {s['fanout_invocations']} |"
        )
        w("")
    _section(
        w,
        "5. Work per message (counted)",
        "Every AWS call made by the functions during the burst of section 2, divided by the messages sent and by "
        "the events delivered (echo included). *items read* = `Count` of a Query, `ScannedCount` of a Scan, 1 per "
        "GetItem that found an item. Stream records are what FanoutFunction received after the filters.",
        "strategy | window s | conns | DynamoDB reads / msg | items read / msg | writes / msg | items read / delivered event | stream records / msg | posts / msg | posts / delivered event | calls by operation (per message)",
    )
    for r in results["work"]:
        cc = r["counted"]
        n = r["messages"]
        delivered = r["delivered_to_others"] + n  # the sender gets its own message back in both designs
        reads = sum(
            v
            for k, v in cc["calls"].items()
            if k.split(".")[1] in ("GetItem", "Query", "Scan", "BatchGetItem")
        )
        writes = sum(
            v
            for k, v in cc["calls"].items()
            if k.split(".")[1]
            in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
        )
        items = sum(cc["items_read"].values())
        records = sum(v for k, v in cc["records_in"].items() if "Fanout" in k)
        posts = cc["calls"].get("apigatewaymanagementapi.PostToConnection", 0)
        ops = ", ".join(f"{k.split('.')[1]} {v / n:.2f}" for k, v in sorted(cc["calls"].items()))
        w(
            f"| {r['strategy']} | {r['window_s'] if r['strategy'] == 'parley' else '–'} | {r['channel_size']:,} | "
            f"{reads / n:.2f} | {items / n:.1f} | {writes / n:.2f} | {items / delivered:.3f} | {records / n:.2f} | "
            f"{posts / n:.2f} | {posts / delivered:.3f} | {ops} |"
        )
    w("")
    cs = results.get("coldstart")
    w("## 6. Cold start")
    w("")
    if cs:
        w(
            "A fresh interpreter per sample (`python -I`): *import* = importing the handler module with the layer on "
            "`sys.path`; *init* = import plus what the first invocation builds (`deps.services()`: settings, boto3 "
            "clients, Powertools; the authorizer's `deps.verifier()`: pyjwt and its key source). Median [min–max]. Both with tracing off, as under `sam local` and the "
            "emulator. *init, tracing on* is the same init where Powertools' Tracer traces (on Lambda with the "
            "template's `Tracing: Active`): it then imports and patches the X-Ray SDK, which costs that much more "
            "on AWS too."
        )
        w("")
        w("| function | import ms | init ms | init ms, tracing on |")
        w("|---|---|---|---|")
        for name, v in cs.items():
            traced = v.get("traced_init_ms")
            w(
                f"| {name} | {_s(v['import_ms'] | {'n': v['n']})} | {_s((v['init_ms'] or {}) | {'n': v['n']} if v['init_ms'] else None)} | "
                f"{_s(traced | {'n': v['n']}) if traced else '–'} |"
            )
        w("")
    w("## 7. Cost")
    w("")
    model = cost.model(
        results, WORKLOAD["connections"], WORKLOAD["messages_per_user_day"], WORKLOAD["channel_size"]
    )
    w(
        f"`python -m bench cost --connections {WORKLOAD['connections']} --messages-per-user-day "
        f"{WORKLOAD['messages_per_user_day']} --channel-size {WORKLOAD['channel_size']}` (us-east-1 list prices "
        f"checked {cost.PRICES_CHECKED}, no free tier). Parley's per-message work is the counted work of the burst at "
        "the nearest measured channel size, recipients' share scaled to the channel; the naive design's Scan and posts "
        "go to *every* connection, so they are scaled to the connection count. Lambda compute uses the handler time "
        "measured here against moto (an estimate of AWS's). Connection minutes are the same for both designs."
    )
    w("")
    w("| per million messages | " + " | ".join(k for k in ("parley", "baseline") if k in model) + " |")
    w("|---|" + "---|" * sum(1 for k in ("parley", "baseline") if k in model))
    keys = [
        "lambda_requests",
        "lambda_compute",
        "apigw_messages",
        "dynamodb_reads",
        "dynamodb_writes",
        "total",
    ]
    for k in keys:
        w(
            f"| {k.replace('_', ' ')} | "
            + " | ".join(
                f"${model[s]['dollars_per_million_messages'][k]:,.2f}"
                for s in ("parley", "baseline")
                if s in model
            )
            + " |"
        )
    for label, key in (
        ("messages per month", "messages_per_month"),
        ("$ per month, messages", "dollars_per_month_messages"),
        ("$ per month, connection minutes", "dollars_per_month_connection_minutes"),
        ("**$ per month**", "dollars_per_month"),
    ):
        w(
            f"| {label} | "
            + " | ".join(
                (f"{model[s][key]:,.0f}" if key == "messages_per_month" else f"${model[s][key]:,.0f}")
                for s in ("parley", "baseline")
                if s in model
            )
            + " |"
        )
    if "baseline_over_parley_per_message" in model:
        w("")
        w(
            f"The naive design costs {model['baseline_over_parley_per_message']:,.0f}× Parley's per message for this "
            "workload: it posts every message to every connection instead of the channel's."
        )
    w("")
    w(
        "Prices (us-east-1, on demand): Lambda $0.20 per million requests and $0.0000166667 per GB-second (x86) — "
        "aws.amazon.com/lambda/pricing; API Gateway WebSocket $1.00 per million messages (first billion, 32 KB "
        "increments) and $0.25 per million connection minutes — aws.amazon.com/api-gateway/pricing; DynamoDB on-demand "
        "$0.625 per million write request units and $0.125 per million read request units (since the November 2024 "
        "price cut), stream reads by Lambda triggers free — aws.amazon.com/dynamodb/pricing/on-demand; SQS standard "
        f"$0.40 per million requests — aws.amazon.com/sqs/pricing. Checked {cost.PRICES_CHECKED} through pages "
        "quoting them (amnic.com/blogs/aws-api-gateway-pricing, airbyte.com/data-engineering-resources/dynamodb-pricing); "
        "confirm on the AWS pages before relying on them."
    )
    w("")
    _limit_sections(w, results)
    prof = results.get("profile_samples")
    if prof:
        w("## Where the time goes (py-spy)")
        w("")
        w(
            f"Every process of the emulator sampled with py-spy at {prof['sample_hz']} Hz for {prof['seconds']} s while a "
            f"channel of {prof['channel_size']} received {prof['rate_msgs_per_s']:g} msg/s (window 0, "
            "`python -m bench run --only profile`; raw samples in bench/.work/profile/). Threads known to be "
            "idle (child watchers, idle pool threads, workers between invocations) are left out; threads blocked "
            "on a socket still count, so *thread-seconds per second* can exceed the 2 cores."
        )
        w("")
        w("| process | thread-seconds per second | where (share of the process's samples) |")
        w("|---|---|---|")
        total_per_core = prof["seconds"] * prof["sample_hz"]
        for role, n in prof["samples_by_role"].items():
            cats = prof["categories_by_role"].get(role, {})
            tot = sum(cats.values()) or 1
            where = "; ".join(f"{c} {100 * v / tot:.0f}%" for c, v in list(cats.items())[:4])
            w(f"| {role} | {n / total_per_core:.2f} | {where} |")
        w("")
    notes = ROOT / "bench" / "NOTES.md"
    if notes.is_file():
        w(notes.read_text().strip())
        w("")
    DOC.write_text("\n".join(out) + "\n")
    return DOC
