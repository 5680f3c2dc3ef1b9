"""Shared fixtures: a moto-backed AWS with template.yaml's own tables, and Parley wired to it with fakes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.world import MotoAws, isolate_process_env, moto_world, set_lambda_env

isolate_process_env()


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return set_lambda_env(monkeypatch)


@pytest.fixture
def moto_aws(lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAws]:
    with moto_world(monkeypatch) as world:
        yield world


@pytest.fixture
def fanout_pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


@pytest.fixture
def parley(moto_aws: MotoAws, fanout_pool: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parley's handlers against moto, with the @connections API, timers and clock faked."""
    from parley import deps
    from tests.integration.harness import Harness

    harness = Harness(moto_aws, fanout_pool)
    monkeypatch.setattr(deps, "services", lambda: harness.services)
    return harness
