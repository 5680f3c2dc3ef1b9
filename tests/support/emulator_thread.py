"""Run the emulator on its own event loop in a background thread, for suites that drive it with clients."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any


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
