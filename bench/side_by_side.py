"""Parley (through the emulator) and the in-memory reference server, same clients, same run.

`python -m bench.side_by_side [--size 100] [--rates 20] [--rounds 2] [--duration 4]` runs the
latency scenario of `bench.scenarios` (steady sends into one channel, every member receiving) on
each server in turn and prints one JSON object: per server and rate the p50/p99/max latency,
deliveries later than 5 s, delivered events/s, and Parley / reference ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.harness import SECRET, serve
from bench.scenarios import _quiet, _round, _setup, spread
from bench.templates import ROOT
from tests.support.proc import stop
from tests.support.ws_client import token_url


@dataclass
class ReferenceServed:
    ws_url: str

    def url(self, user: str, workspace: str) -> str:
        return token_url(self.ws_url, SECRET, user, workspace)


@contextmanager
def serve_reference() -> Iterator[ReferenceServed]:
    """The reference server in its own process (its own interpreter lock, as the emulator has)."""
    cmd = [sys.executable, "-m", "bench.reference", "--secret", SECRET]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield ReferenceServed(f"ws://127.0.0.1:{proc.stdout.readline().strip()}/")
    finally:
        stop(proc)


def _measure(served: Any, size: int, rates: list[float], rounds: int, duration_s: float) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        sink: dict[int, list[tuple[int, float]]] = {}
        clients = await _setup(served, size, sink)
        out: dict[str, Any] = {}
        base = 0
        for rate in rates:
            results = []
            for _ in range(rounds):
                results.append(await _round(clients, sink, rate, duration_s, base=base))
                base += 1_000_000
                await _quiet(clients, 1.0, 30)
            out[f"{rate:g}"] = {
                key: spread([r[key] for r in results])["median"]
                for key in ("p50_ms", "p99_ms", "max_ms", "deliveries_per_s", "lost_or_late", "late_over_5s")
            } | {"rounds": len(results)}
        await asyncio.gather(*(c.close() for c in clients))
        return out

    return asyncio.run(main())


def measure(size: int, rates: list[float], rounds: int, duration_s: float) -> dict[str, Any]:
    """Both servers, reference first, each with fresh clients; figures are medians over the rounds."""
    load_before = os.getloadavg()
    with serve_reference() as reference:
        ref = _measure(reference, size, rates, rounds, duration_s)
    with serve("parley", window_s=0, tag="side-by-side") as parley:
        par = _measure(parley, size, rates, rounds, duration_s)
    ratios = {
        rate: {
            "p50": par[rate]["p50_ms"] / ref[rate]["p50_ms"],
            "p99": par[rate]["p99_ms"] / ref[rate]["p99_ms"],
            "deliveries_per_s": par[rate]["deliveries_per_s"] / ref[rate]["deliveries_per_s"],
        }
        for rate in ref
    }
    return {
        "size": size,
        "rounds": rounds,
        "round_s": duration_s,
        "parley": par,
        "reference": ref,
        "parley_over_reference": ratios,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=4.0)
    opts = parser.parse_args()
    print(json.dumps(measure(opts.size, opts.rates, opts.rounds, opts.duration)))


if __name__ == "__main__":
    main()
