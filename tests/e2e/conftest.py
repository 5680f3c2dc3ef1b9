"""End-to-end target: Parley's template served by the local emulator over 127.0.0.1.

Set PARLEY_E2E_URL (wss://… of a deployed stack) and PARLEY_E2E_SECRET (its HS256 secret) to run the
same protocol tests against a deployed stack instead; tests that need the emulator's own knobs
(shortened timeouts, its storage) then do not run, because they are only collected for the emulator.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from tests.support.emulator_thread import emulator_in_thread
from tests.support.template import ROOT

LOCAL_SECRET = "parley-e2e-local-secret-0123456789abcdef"
IDLE_TIMEOUT_S = 3.0


@dataclass
class Target:
    ws_url: str
    secret: str
    emulator: Any = None  # ws_emulator.app.Emulator when local

    def token(self, user: str, workspace: str, *, name: str | None = None, expires_in_s: int = 3600) -> str:
        claims: dict[str, Any] = {"sub": user, "workspace": workspace, "exp": int(time.time()) + expires_in_s}
        if name:
            claims["name"] = name
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def url(self, user: str, workspace: str, **kwargs: Any) -> str:
        return f"{self.ws_url}?token={self.token(user, workspace, **kwargs)}"


def _serve_in_thread(**overrides: Any) -> Iterator[Target]:
    from ws_emulator.config import Config

    settings: dict[str, Any] = {
        "template": ROOT / "template.yaml",
        "host": "127.0.0.1",
        "port": 0,
        "management_port": 0,
        "ssm_parameters": {"/parley/jwt-secret": LOCAL_SECRET},
        # a short grace and window keep the presence tests quick
        "parameter_overrides": {"PresenceGraceSeconds": "1", "FanoutBatchingWindowSeconds": "0"},
        "ttl_sweep_interval_s": 0.5,
        "quiet": True,
        "log_level": "WARNING",
    }
    with emulator_in_thread(Config(**(settings | overrides))) as (emulator, _loop):
        yield Target(ws_url=emulator.ws_url, secret=LOCAL_SECRET, emulator=emulator)


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    url = os.environ.get("PARLEY_E2E_URL")
    if url:
        yield Target(ws_url=url, secret=os.environ["PARLEY_E2E_SECRET"])
        return
    yield from _serve_in_thread()


@pytest.fixture(scope="module")
def short_idle_emulator() -> Iterator[Target]:
    """An emulator of its own with a shortened idle timeout: on the shared one, a slow machine would
    close the connections of tests that merely wait a few seconds between frames."""
    yield from _serve_in_thread(idle_timeout_s=IDLE_TIMEOUT_S)


@pytest.fixture(scope="session")
def emulator(target: Target) -> Any:
    """Only for tests of emulator behaviour; collected only when the target is the local emulator."""
    assert target.emulator is not None
    return target.emulator


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Against a deployed stack, leave out tests that need the emulator's knobs (no skip: not collected).
    if os.environ.get("PARLEY_E2E_URL"):
        local_only = {"emulator", "short_idle_emulator"}
        items[:] = [item for item in items if not local_only & set(getattr(item, "fixturenames", ()))]


@pytest.fixture
def workspace() -> str:
    """A fresh workspace per test, so tests sharing one emulator never see each other."""
    return f"ws-{uuid.uuid4().hex[:10]}"
