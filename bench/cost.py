"""AWS cost of a workload from the counted work per message (bench/results/latest.json), for Parley
and for the naive design.

`python -m bench cost --connections 10000 --messages-per-user-day 50 --channel-size 100`
"""

from __future__ import annotations

import math
from typing import Any

# us-east-1, on-demand, list prices as published on the AWS pricing pages below; checked 2026-11-28
# (the AWS pages cannot be fetched from this machine: the figures were read from secondary sources quoting
# them, named in docs/benchmarks.md). Free tiers are ignored.
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per invocation — aws.amazon.com/lambda/pricing
    "lambda_gb_second": 0.0000166667,  # x86 — aws.amazon.com/lambda/pricing
    "apigw_ws_message": 1.00
    / 1e6,  # per message (32 KB increments), first 1 billion — aws.amazon.com/api-gateway/pricing
    "apigw_ws_connection_minute": 0.25 / 1e6,  # aws.amazon.com/api-gateway/pricing
    "ddb_write_request_unit": 0.625 / 1e6,  # on-demand WRU (1 KB) — aws.amazon.com/dynamodb/pricing/on-demand
    "ddb_read_request_unit": 0.125 / 1e6,  # on-demand RRU (4 KB strong, 2 eventual reads) — same page
    "ddb_stream_read_by_lambda": 0.0,  # GetRecords by Lambda triggers is free — same page
    "sqs_request": 0.40 / 1e6,  # standard queue — aws.amazon.com/sqs/pricing
    # checked 2026-12-01 through hykell.com/kb/platform-specific-guides/aws-cloudwatch-logs-pricing
    "cloudwatch_logs_ingested_gb": 0.50,  # standard log class — aws.amazon.com/cloudwatch/pricing
    # checked 2026-12-01 on aws.amazon.com/xray/pricing (localised copies) and awsnegotiations.com
    "xray_trace_recorded": 5.00 / 1e6,  # aws.amazon.com/xray/pricing
}
PRICES_CHECKED = "2026-11-28"
LAMBDA_MEMORY_GB = 256 / 1024  # template Globals MemorySize
SCANNED_ITEM_BYTES = 250  # a connection item; a Scan is charged for what it reads, not what it returns
MINUTES_PER_MONTH = 730 * 60
DAYS_PER_MONTH = 30

# Heartbeats: the web client sends one every 4 to 5 minutes (clients/js/src/index.js: 240 s + up to 60 s).
HEARTBEAT_INTERVAL_S = 270
# parley.chat.HEARTBEAT_WRITE_STEP_S: a heartbeat writes only when it moves dueAt this much or more
HEARTBEAT_WRITE_STEP_S = 120
# A written heartbeat: the item (1 WRU) and the Due index, whose sort key dueAt changes, so the index
# deletes the old entry and puts the new one (2 WRU; DynamoDB developer guide, GSI writes).
HEARTBEAT_WRITTEN_WRU = 3
HEARTBEAT_REFUSED_WRU = 1  # a conditional write whose condition fails still costs one unit
HEARTBEAT_HANDLER_MS = 10  # assumed warm billed duration: one UpdateItem and Powertools' wrappers
# Logs: SystemLogLevel WARN drops Lambda's START/END/REPORT lines, and a heartbeat or message logs
# nothing at INFO; what is ingested is the metrics (EMF) FanoutFunction prints per invocation, and
# the stage's access log line per inbound frame when AccessLogging=Enabled. Both sizes are estimates.
FANOUT_EMF_BYTES = 1_200
ACCESS_LOG_BYTES = 600
# X-Ray's default sampling rule: the first request each second, then 5 % of the rest.
XRAY_RESERVOIR_PER_S = 1.0
XRAY_FIXED_RATE = 0.05
SECONDS_PER_MONTH = MINUTES_PER_MONTH * 60


def heartbeat_writes_per_heartbeat(interval_s: float, step_s: float) -> float:
    """Share of heartbeats that write: one in ceil(step / interval), all of them once interval >= step."""
    return 1.0 / max(1, math.ceil(step_s / interval_s))


def heartbeats(connections: int, interval_s: float = HEARTBEAT_INTERVAL_S) -> dict[str, float]:
    """Monthly heartbeats of every connection and what they cost, line by line (no free tier)."""
    p = PRICES
    count = connections * SECONDS_PER_MONTH / interval_s
    written = heartbeat_writes_per_heartbeat(interval_s, HEARTBEAT_WRITE_STEP_S)
    wru = written * HEARTBEAT_WRITTEN_WRU + (1 - written) * HEARTBEAT_REFUSED_WRU
    lines = {
        "apigw_messages": count * 2 * p["apigw_ws_message"],  # the frame in and the reply
        "lambda_requests": count * p["lambda_request"],
        "lambda_compute": count * HEARTBEAT_HANDLER_MS / 1000 * LAMBDA_MEMORY_GB * p["lambda_gb_second"],
        "dynamodb_writes": count * wru * p["ddb_write_request_unit"],
    }
    return (
        {"heartbeats_per_month": count, "share_written": written, "wru_per_heartbeat": wru}
        | {f"dollars_{k}": v for k, v in lines.items()}
        | {"dollars": sum(lines.values())}
    )


def observability(
    *,
    invocations_per_s: float,
    fanout_invocations_per_month: float,
    frames_per_month: float,
    access_logs: bool,
) -> dict[str, float]:
    """CloudWatch Logs ingestion and X-Ray traces per month (every Lambda invocation is a trace root:
    API Gateway WebSocket APIs do not trace)."""
    p = PRICES
    log_bytes = fanout_invocations_per_month * FANOUT_EMF_BYTES
    if access_logs:
        log_bytes += frames_per_month * ACCESS_LOG_BYTES
    sampled_per_s = min(invocations_per_s, XRAY_RESERVOIR_PER_S) + XRAY_FIXED_RATE * max(
        0.0, invocations_per_s - XRAY_RESERVOIR_PER_S
    )
    traces = sampled_per_s * SECONDS_PER_MONTH
    return {
        "log_gb_per_month": log_bytes / 1e9,
        "dollars_logs": log_bytes / 1e9 * p["cloudwatch_logs_ingested_gb"],
        "traces_per_month": traces,
        "dollars_traces": traces * p["xray_trace_recorded"],
    }


def units_per_message(work_run: dict[str, Any]) -> dict[str, float]:
    """Read/write request units, invocations, GB-s and posts per message sent, from one counted run."""
    c = work_run["counted"]
    n = work_run["messages"]
    calls, items, rbytes = c["calls"], c["items_read"], c["bytes_read"]
    total_reads = sum(v for k, v in calls.items() if k.split(".")[1] in ("GetItem", "Query", "Scan"))
    eventual_share = min(1.0, c.get("eventually_consistent_reads", 0) / total_reads) if total_reads else 1.0
    read_factor = 0.5 * eventual_share + 1.0 * (1 - eventual_share)
    rru = 0.0
    for op in ("dynamodb.GetItem", "dynamodb.Query"):
        rru += max(calls.get(op, 0), math.ceil(rbytes.get(op, 0) / 4096)) * read_factor
    if calls.get("dynamodb.Scan"):
        rru += (
            max(calls["dynamodb.Scan"], math.ceil(items.get("dynamodb.Scan", 0) * SCANNED_ITEM_BYTES / 4096))
            * 0.5
        )
    # items are under 1 KB here (short messages): one unit per item written; a transaction writes two
    # items (message + channel head) at twice the unit price
    wru = sum(calls.get(op, 0) for op in ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem"))
    wru += 4 * calls.get("dynamodb.TransactWriteItems", 0)
    invocations = sum(v for k, v in c["invocations"].items() if "Message" in k or "Fanout" in k)
    fanout_invocations = sum(v for k, v in c["invocations"].items() if "Fanout" in k)
    ms = sum(v for k, v in c["handler_ms"].items() if "Message" in k or "Fanout" in k)
    posts = calls.get("apigatewaymanagementapi.PostToConnection", 0)
    return {
        "rru": rru / n,
        "wru": wru / n,
        "invocations": invocations / n,
        "fanout_invocations": fanout_invocations / n,
        "gb_seconds": ms / 1000 * LAMBDA_MEMORY_GB / n,
        "posts": posts / n,
        "ddb_reads": total_reads / n,
        "items_read": sum(items.values()) / n,
        "channel_size": work_run["channel_size"],
    }


def per_million(
    units: dict[str, float], *, scale_posts: float = 1.0, scale_reads: float = 1.0
) -> dict[str, float]:
    """Dollars per million messages; `scale_*` stretch the parts that grow with the recipients."""
    p = PRICES
    lines = {
        "lambda_requests": units["invocations"] * p["lambda_request"],
        "lambda_compute": units["gb_seconds"] * scale_posts * p["lambda_gb_second"],
        # one inbound message, one reply (ack) for Parley; posts are messages too
        "apigw_messages": (1 + units.get("replies", 1) + units["posts"] * scale_posts)
        * p["apigw_ws_message"],
        "dynamodb_reads": units["rru"] * scale_reads * p["ddb_read_request_unit"],
        "dynamodb_writes": units["wru"] * p["ddb_write_request_unit"],
    }
    return {k: v * 1e6 for k, v in lines.items()} | {"total": sum(lines.values()) * 1e6}


def model(
    results: dict[str, Any],
    connections: int,
    messages_per_user_day: float,
    channel_size: int,
    *,
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
    access_logs: bool = False,
) -> dict[str, Any]:
    """Parley scales with the channel (its recipients); the naive design with every connection."""
    runs = {
        (r["strategy"], r["channel_size"]): r
        for r in results["work"]
        if r.get("window_s", 1) == 1 or r["strategy"] == "baseline"
    }
    if not runs:
        runs = {(r["strategy"], r["channel_size"]): r for r in results["work"]}
    out: dict[str, Any] = {
        "connections": connections,
        "messages_per_user_day": messages_per_user_day,
        "channel_size": channel_size,
    }
    messages_month = connections * messages_per_user_day * DAYS_PER_MONTH
    for strategy, audience in (("parley", channel_size), ("baseline", connections)):
        candidates = sorted((size, r) for (s, size), r in runs.items() if s == strategy)
        if not candidates:
            continue
        size, run = min(candidates, key=lambda c: abs(c[0] - audience))
        units = units_per_message(run)
        units["replies"] = 1 if strategy == "parley" else 0
        scale = audience / size
        dollars = per_million(units, scale_posts=scale, scale_reads=scale)
        conn_minutes = connections * MINUTES_PER_MONTH * PRICES["apigw_ws_connection_minute"]
        out[strategy] = {
            "measured_at_channel_size": size,
            "scaled_to_recipients": audience,
            "units_per_message": units,
            "dollars_per_million_messages": dollars,
            "messages_per_month": messages_month,
            "dollars_per_month_messages": dollars["total"] * messages_month / 1e6,
            "dollars_per_month_connection_minutes": conn_minutes,
            "dollars_per_month": dollars["total"] * messages_month / 1e6 + conn_minutes,
        }
    if "parley" in out:
        parley = out["parley"]
        beats = heartbeats(connections, heartbeat_interval_s)
        units = parley["units_per_message"]
        invocations_month = beats["heartbeats_per_month"] + messages_month * units["invocations"]
        fanout_month = messages_month * units.get("fanout_invocations", units["invocations"] / 2)
        frames_month = beats["heartbeats_per_month"] + messages_month
        seen = observability(
            invocations_per_s=invocations_month / SECONDS_PER_MONTH,
            fanout_invocations_per_month=fanout_month,
            frames_per_month=frames_month,
            access_logs=access_logs,
        )
        parley["heartbeats"] = beats
        parley["observability"] = seen
        parley["dollars_per_month_heartbeats"] = beats["dollars"]
        parley["dollars_per_month_observability"] = seen["dollars_logs"] + seen["dollars_traces"]
        parley["dollars_per_month_total"] = (
            parley["dollars_per_month"]
            + parley["dollars_per_month_heartbeats"]
            + parley["dollars_per_month_observability"]
        )
        parley["heartbeats_over_messages"] = beats["dollars"] / parley["dollars_per_month_messages"]
    if "parley" in out and "baseline" in out:
        out["baseline_over_parley_per_message"] = (
            out["baseline"]["dollars_per_million_messages"]["total"]
            / out["parley"]["dollars_per_million_messages"]["total"]
        )
    return out
