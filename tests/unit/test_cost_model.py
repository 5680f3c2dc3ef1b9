"""bench/cost.py's heartbeat and observability lines, on the counted work in bench/results/latest.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import cost
from parley.chat import HEARTBEAT_WRITE_STEP_S

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json"


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text())


def test_the_model_uses_the_heartbeat_write_step_of_the_code() -> None:
    assert cost.HEARTBEAT_WRITE_STEP_S == HEARTBEAT_WRITE_STEP_S


def test_heartbeats_every_270_s_all_write_and_a_chattier_client_writes_every_other_time() -> None:
    assert cost.heartbeat_writes_per_heartbeat(270, 120) == 1.0
    assert cost.heartbeat_writes_per_heartbeat(60, 120) == 0.5
    beats = cost.heartbeats(100_000, 60)
    assert beats["wru_per_heartbeat"] == 2.0  # one 3-unit write, one refused 1-unit write


def test_at_100k_connections_heartbeats_cost_more_than_the_messages(results: dict[str, Any]) -> None:
    parley = cost.model(results, 100_000, 50, 100)["parley"]
    beats = parley["heartbeats"]
    # 2 API Gateway messages, one invocation and up to 3 write units, every 270 s per connection
    assert beats["heartbeats_per_month"] == pytest.approx(100_000 * 730 * 3600 / 270)
    assert parley["dollars_per_month_heartbeats"] > parley["dollars_per_month_messages"]
    assert parley["dollars_per_month_total"] == pytest.approx(
        parley["dollars_per_month"]
        + parley["dollars_per_month_heartbeats"]
        + parley["dollars_per_month_observability"]
    )


def test_access_logs_and_traces_are_priced(results: dict[str, Any]) -> None:
    without = cost.model(results, 100_000, 50, 100)["parley"]["observability"]
    with_logs = cost.model(results, 100_000, 50, 100, access_logs=True)["parley"]["observability"]
    assert with_logs["dollars_logs"] > without["dollars_logs"] > 0
    assert without["traces_per_month"] > 0 and without["dollars_traces"] > 0
