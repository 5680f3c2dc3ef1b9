"""End-to-end target: Parley's template served by the local emulator over 127.0.0.1.

Set PARLEY_E2E_URL (wss://… of a deployed stack) and PARLEY_E2E_SECRET (its HS256 secret) to run the
same protocol tests against a deployed stack instead; tests that need the emulator's own knobs
(shortened timeouts, its storage) then do not run, because they are only collected for the emulator.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.emulator_thread import emulator_in_thread, parley_config
from tests.support.ws_client import Peer, token_url

LOCAL_SECRET = "parley-e2e-local-secret-0123456789abcdef"
IDLE_TIMEOUT_S = 3.0


@dataclass
class Target:
    ws_url: str
    secret: str
    emulator: Any = None  # ws_emulator.app.Emulator when local

    def url(self, user: str, workspace: str, **kwargs: Any) -> str:
        return token_url(self.ws_url, self.secret, user, workspace, **kwargs)


def _serve_in_thread(**overrides: Any) -> Iterator[Target]:
    with emulator_in_thread(parley_config(LOCAL_SECRET, **overrides)) as (emulator, _loop):
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


class Peers:
    """A test's clients: every one it opens is closed when the test ends, passed or failed."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._stack = contextlib.AsyncExitStack()

    async def open(self, url: str) -> Peer:
        return await self._stack.enter_async_context(await Peer.open(url))

    async def joined(
        self, user: str, workspace: str, channel: str = "general", *, target: Target | None = None
    ) -> Peer:
        """A user's connection (named after the user) that has joined `channel`."""
        peer = await self.open((target or self.target).url(user, workspace, name=user.title()))
        reply = await peer.request({"action": "join", "channel": channel})
        assert reply["type"] == "joined", reply
        return peer

    async def aclose(self) -> None:
        await self._stack.aclose()


@pytest.fixture
async def peers(target: Target) -> AsyncIterator[Peers]:
    opened = Peers(target)
    try:
        yield opened
    finally:
        await opened.aclose()
