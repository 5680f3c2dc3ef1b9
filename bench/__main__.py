"""`python -m bench run [--quick]` measures and writes bench/results/latest.json (then renders the docs);
`python -m bench render` regenerates docs/benchmarks.md and docs/img/*.png from it;
`python -m bench cost --connections N --messages-per-user-day M --channel-size S` prices a workload."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.templates import BENCH, ROOT

RESULTS = BENCH / "results" / "latest.json"
_OUT = {"path": RESULTS}  # where run() writes

PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "latency": [  # (channel size, messages/s, rounds, seconds per round)
            (10, 20, 3, 8),
            (100, 20, 3, 8),
            (100, 5, 3, 8),
            (1000, 2, 2, 6),
        ],
        "windows": [0, 1],
        "work": {"sizes": [10, 100], "messages": 100, "windows": [0, 1]},
        "connections": 5000,
        "storm": 1000,
        "coldstart_repeats": 3,
        "variants": True,
        # Parley / reference: (channel size, msg/s rates, rounds, seconds per round)
        "reference": (100, [20, 40], 3, 8),
        "realtime": (40, 8),  # two users on make run's defaults: messages, typing indicators
        "poster": (500, 5),  # @connections client CPU: posts per round, rounds
        "wide": (2000, 1.0, 10.0),  # two-level fan-out (issue #14: 2,000 members): size, msg/s, seconds
    },
    "quick": {
        "latency": [(100, 20, 2, 4)],
        "windows": [0],
        "work": {"sizes": [100], "messages": 60, "windows": [1]},
        "connections": 1000,
        "storm": 200,
        "coldstart_repeats": 1,
        "reference": (100, [20], 2, 4),
        "realtime": (20, 4),
        "poster": (300, 3),
        "wide": (500, 1.0, 5.0),
    },
}


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "open_files_limit": int(
            subprocess.run(["bash", "-c", "ulimit -n"], capture_output=True, text=True, check=False).stdout
        ),
    }


def git_commit() -> dict[str, Any]:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "status",
            "--porcelain",
            "--",
            "layers",
            "functions",
            "ws_emulator",
            "template.yaml",
            "bench",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {"commit": head, "dirty_paths": len(dirty.splitlines()) if dirty else 0}


def _save(results: dict[str, Any]) -> None:
    out = _OUT["path"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False, default=float) + "\n")
    tmp.replace(out)


def _step(results: dict[str, Any], name: str, fn: Any, *args: Any) -> Any:
    print(f"[bench] {time.strftime('%H:%M:%S')} {name} ...", flush=True)
    started = time.time()
    try:
        value = fn(*args)
    except Exception as exc:  # one failing scenario must not lose the others
        print(f"[bench]   {name} FAILED: {exc!r}", flush=True)
        results.setdefault("errors", []).append({"step": name, "error": repr(exc)})
        _save(results)
        return None
    print(f"[bench]   {name} done in {time.time() - started:.0f} s", flush=True)
    return value


def run(profile_name: str, only: set[str] | None) -> dict[str, Any]:
    from bench import coldstart, scenarios

    profile = dict(PROFILES[profile_name])
    if os.environ.get("BENCH_STORM_SIZE"):  # a smaller storm where a machine cannot take the profile's
        profile["storm"] = int(os.environ["BENCH_STORM_SIZE"])
    previous: dict[str, Any] = {}
    if only is not None and _OUT["path"].is_file():
        previous = json.loads(_OUT["path"].read_text())  # a partial run updates the steps it ran
    results: dict[str, Any] = {
        "profile": profile_name,
        "command": "make bench" if profile_name == "full" else "make bench-quick",
        "argv": " ".join(["python", "-m", "bench", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_commit(),
        "machine": machine(),
        "settings": {k: v for k, v in profile.items()},
        "latency": [],
        "work": [],
    }
    for key, value in previous.items():
        if key != "errors":
            results[key] = value
    if previous:
        results["updated_steps"] = sorted(only or ()) + [
            s for s in previous.get("updated_steps", []) if s not in (only or ())
        ]
        results["updated_date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for step in only or ():
        if step in ("latency", "work"):
            results[step] = []
    started = time.time()

    def want(name: str) -> bool:
        return only is None or name in only

    if want("coldstart"):
        results["coldstart"] = _step(results, "cold start", coldstart.measure, profile["coldstart_repeats"])
        _save(results)
    if want("work"):
        w = profile["work"]
        for size in w["sizes"]:
            for strategy, windows in (("parley", w["windows"]), ("baseline", [0])):
                for window in windows:
                    r = _step(
                        results,
                        f"work {strategy} size={size} window={window}",
                        scenarios.work,
                        strategy,
                        size,
                        w["messages"],
                        window,
                    )
                    if r:
                        results["work"].append(r)
                        _save(results)
    if want("latency") or want("latency-large"):
        large = not want("latency")
        if large:
            results["latency"] = [x for x in results["latency"] if x["channel_size"] < 1000]
        for size, rate, rounds, seconds in profile["latency"]:
            if large and size < 1000:
                continue
            parley_windows = profile["windows"][::-1] if large else profile["windows"]
            for strategy, windows in (("parley", parley_windows), ("baseline", [0])):
                for window in windows:
                    r = _step(
                        results,
                        f"latency {strategy} size={size} rate={rate} window={window}",
                        scenarios.latency,
                        strategy,
                        size,
                        rate,
                        window,
                        rounds,
                        seconds,
                    )
                    if r:
                        results["latency"].append(r)
                        _save(results)
    if want("storm"):
        results["join_storm"] = _step(results, "join storm", scenarios.join_storm, profile["storm"])
        _save(results)
    if want("connections"):
        results["connections"] = _step(results, "connections", scenarios.connections, profile["connections"])
        _save(results)
    if want("variants") and (profile.get("variants") or only):
        # the same 100-member workload with DynamoDB (moto) in a process of its own: how much of the
        # latency is the embedded moto sharing the emulator's interpreter lock
        for strategy in ("parley", "baseline"):
            r = _step(
                results,
                f"latency {strategy} size=100 rate=20 window=0, DynamoDB in its own process",
                scenarios.latency,
                strategy,
                100,
                20,
                0,
                3,
                8,
                True,
            )
            if r:
                results["latency"] = [
                    x
                    for x in results["latency"]
                    if not (x.get("dynamodb") == "own process" and x["strategy"] == strategy)
                ] + [r]
                _save(results)
    if want("realtime"):
        from bench import realtime

        messages, typing = profile["realtime"]
        results["realtime"] = [
            _step(
                results, f"two users, make run {args or 'defaults'}", realtime.measure, messages, typing, args
            )
            for args in ("", "--stream-poll-interval 0.25")
        ]
        _save(results)
    if want("poster"):
        from bench import poster

        results["poster"] = _step(
            results, "@connections client CPU per post", poster.measure, *profile["poster"]
        )
        _save(results)
    if want("wide"):
        size, rate, seconds = profile["wide"]
        if os.environ.get("BENCH_WIDE_SIZE"):
            size = int(os.environ["BENCH_WIDE_SIZE"])
        results["wide_channel"] = [
            _step(
                results,
                f"wide channel of {size}, {mode}",
                functools.partial(scenarios.wide_channel, wide=wide),
                size,
                rate,
                seconds,
            )
            for mode, wide in (("two-level", True), ("direct", False))
        ]
        _save(results)
    if want("reference"):
        from bench import side_by_side

        results["side_by_side"] = _step(
            results, "Parley / reference", side_by_side.measure, *profile["reference"]
        )
        _save(results)
    if want("profile"):
        from bench import profile as prof

        results["profile_samples"] = _step(results, "profile (py-spy)", prof.profile)
        _save(results)
    if not previous:
        results["duration_s"] = round(time.time() - started)
    _save(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure (minutes to tens of minutes) and render the docs")
    r.add_argument("--quick", action="store_true", help="the few-minutes variant (make bench-quick)")
    r.add_argument("--results", type=Path, help="write here instead of bench/results/latest.json (no docs)")
    r.add_argument(
        "--only",
        nargs="+",
        choices=[
            "coldstart",
            "work",
            "latency",
            "storm",
            "connections",
            "profile",
            "variants",
            "latency-large",
            "realtime",
            "poster",
            "wide",
            "reference",
        ],
    )
    sub.add_parser("render", help="regenerate docs/benchmarks.md and docs/img/*.png from latest.json")
    c = sub.add_parser("cost", help="AWS dollars for a workload, from the counted work in latest.json")
    c.add_argument("--connections", type=int, default=10_000)
    c.add_argument("--messages-per-user-day", type=float, default=50)
    c.add_argument("--channel-size", type=int, default=100)
    c.add_argument("--results", type=Path, default=RESULTS)
    c.add_argument("--heartbeat-interval-s", type=float, default=270, help="seconds between heartbeats")
    c.add_argument("--access-logs", action="store_true", help="price the stage's access logs too")
    args = parser.parse_args()

    if args.command == "run":
        if args.results:  # a trial run elsewhere leaves the published results alone
            _OUT["path"] = args.results
            run("quick" if args.quick else "full", set(args.only) if args.only else None)
            return
        run("quick" if args.quick else "full", set(args.only) if args.only else None)
        from bench import report

        report.render(json.loads(RESULTS.read_text()))
    elif args.command == "render":
        from bench import report

        report.render(json.loads(RESULTS.read_text()))
    else:
        from bench import cost

        result = cost.model(
            json.loads(args.results.read_text()),
            args.connections,
            args.messages_per_user_day,
            args.channel_size,
            heartbeat_interval_s=args.heartbeat_interval_s,
            access_logs=args.access_logs,
        )
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
