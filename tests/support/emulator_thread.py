"""Run the emulator serving Parley on its own event loop in a background thread, for suites that drive
it with clients (tests/e2e, tests/reliability, tests/browser): one configuration, one handle."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.template import ROOT
from tests.support.ws_client import token_url

SECRET_PARAM = "/parley/jwt-secret"


def parley_config(secret: str, *, parameter_overrides: dict[str, str] | None = None, **settings: Any) -> Any:
    """A `ws_emulator.config.Config` for template.yaml on 127.0.0.1 (ports chosen by the OS), with
    `secret` as Parley's JWT secret in the embedded SSM. A 1 s presence grace, no batching windows and
    a TTL sweep every 0.5 s keep the suites quick; `settings` override any of it."""
    from ws_emulator.config import Config

    params = {
        "PresenceGraceSeconds": "1",
        "FanoutBatchingWindowSeconds": "0",
        "PresenceBatchingWindowSeconds": "0",
        **(parameter_overrides or {}),
    }
    defaults: dict[str, Any] = {
        "template": ROOT / "template.yaml",
        "host": "127.0.0.1",
        "port": 0,
        "management_port": 0,
        "ssm_parameters": {SECRET_PARAM: secret},
        "ttl_sweep_interval_s": 0.5,
        "quiet": True,
        "log_level": "WARNING",
    }
    return Config(**(defaults | settings), parameter_overrides=params)


@dataclass
class Served:
    """An emulator of this process serving Parley: the addresses tests use, and tokens it accepts."""

    emulator: Any  # ws_emulator.app.Emulator
    secret: str

    @property
    def ws_url(self) -> str:
        return str(self.emulator.ws_url)

    @property
    def admin_url(self) -> str:
        return str(self.emulator.admin_url)

    @property
    def page_url(self) -> str:
        return str(self.emulator.page_url)

    def url(self, user: str, workspace: str, **claims: Any) -> str:
        return token_url(self.ws_url, self.secret, user, workspace, **claims)


@contextlib.contextmanager
def emulator_in_thread(
    config: Any, *, name: str = "emulator"
) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    """Start `ws_emulator` with `config`, yield (emulator, its event loop), stop it on exit."""
    from ws_emulator.app import run_emulator

    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        async with run_emulator(config) as emulator:
            holder["emulator"] = emulator
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the caller below
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(120) or "error" in holder:
        raise RuntimeError(f"the emulator did not start: {holder.get('error')!r}")
    try:
        yield holder["emulator"], holder["loop"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(60)
