"""Parley's benchmark suite: latency, fan-out throughput, connections, work and cost per message.

Run with `make bench` (or `make bench-quick`); results land in bench/results/latest.json, from which
docs/benchmarks.md and the plots in docs/img/ are generated. Nothing here runs in the test suite.
"""
