"""A small model of the deployed fan-out, for docs/scaling.md: `python -m bench.scaling_sim`.

One channel's messages share a partition key, so they reach one stream shard and are fanned out by one
FanoutFunction invocation at a time (per shard, per ParallelizationFactor slot; a channel's key always
lands in the same slot). The simulation runs that shard: records arrive at `rate`; an invocation takes
every record waiting (up to the batch size) after the batching window, posts one frame per member (all
its events coalesced into it) through `concurrency` threads at `post_ms` each, then the next starts.
"""

from __future__ import annotations

import argparse
import math
import statistics


def simulate(
    members: int,
    rate: float,
    *,
    window_s: float = 1.0,
    batch_size: int = 100,
    concurrency: int = 32,
    post_ms: float = 15.0,
    overhead_ms: float = 40.0,
    seconds: float = 120.0,
    poll_s: float = 0.25,
) -> dict[str, float]:
    arrivals = [i / rate for i in range(int(rate * seconds))]
    t = 0.0
    i = 0
    latencies: list[float] = []
    posts = 0
    invocations = 0
    while i < len(arrivals):
        t = max(t, arrivals[i])
        # Lambda polls ~4×/s and then waits up to the window for more records (or a full batch)
        t = math.ceil(t / poll_s) * poll_s
        t_fire = t + window_s
        j = i
        while j < len(arrivals) and arrivals[j] <= t_fire and j - i < batch_size:
            j += 1
        if j - i >= batch_size:
            t_fire = max(t, arrivals[j - 1])
        batch = arrivals[i:j]
        duration = overhead_ms / 1000 + math.ceil(members / concurrency) * post_ms / 1000
        done = t_fire + duration
        # recipients get the frame somewhere within the posting phase: take its middle
        delivered = t_fire + overhead_ms / 1000 + duration / 2
        latencies += [delivered - a for a in batch]
        posts += members
        invocations += 1
        i = j
        t = done
    n = len(arrivals)
    return {
        "members": members,
        "rate": rate,
        "window_s": window_s,
        "events_per_batch": n / invocations,
        "posts_per_message": posts / n,
        "posts_per_s": posts / seconds,
        "invocation_s": overhead_ms / 1000 + math.ceil(members / concurrency) * post_ms / 1000,
        "p50_s": statistics.median(latencies),
        "p99_s": sorted(latencies)[int(0.99 * (len(latencies) - 1))],
        "keeps_up": latencies[-1] < 10 * (window_s + 1 + members / concurrency * post_ms / 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaling_sim")
    parser.add_argument("--post-ms", type=float, default=15.0, help="one PostToConnection on AWS (assumed)")
    parser.add_argument("--concurrency", type=int, default=32, help="FANOUT_CONCURRENCY")
    args = parser.parse_args()
    print(
        "| members | msg/s in the channel | window s | events per batch | posts per message | posts/s "
        "| invocation s | p50 s | p99 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for members, rate in ((100, 1), (100, 20), (1000, 1), (1000, 20), (10_000, 1), (10_000, 5), (10_000, 20)):
        for window in (0.0, 1.0):
            r = simulate(members, rate, window_s=window, concurrency=args.concurrency, post_ms=args.post_ms)
            print(
                f"| {members:,} | {rate:g} | {window:g} | {r['events_per_batch']:.1f} "
                f"| {r['posts_per_message']:.1f} | "
                f"{r['posts_per_s']:,.0f} | {r['invocation_s']:.2f} | {r['p50_s']:.2f} | {r['p99_s']:.2f} |"
            )


if __name__ == "__main__":
    main()
