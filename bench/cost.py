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
}
PRICES_CHECKED = "2026-11-28"
LAMBDA_MEMORY_GB = 256 / 1024  # template Globals MemorySize
SCANNED_ITEM_BYTES = 250  # a connection item; a Scan is charged for what it reads, not what it returns
MINUTES_PER_MONTH = 730 * 60
DAYS_PER_MONTH = 30


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
    ms = sum(v for k, v in c["handler_ms"].items() if "Message" in k or "Fanout" in k)
    posts = calls.get("apigatewaymanagementapi.PostToConnection", 0)
    return {
        "rru": rru / n,
        "wru": wru / n,
        "invocations": invocations / n,
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
    results: dict[str, Any], connections: int, messages_per_user_day: float, channel_size: int
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
    if "parley" in out and "baseline" in out:
        out["baseline_over_parley_per_message"] = (
            out["baseline"]["dollars_per_million_messages"]["total"]
            / out["parley"]["dollars_per_million_messages"]["total"]
        )
    return out
