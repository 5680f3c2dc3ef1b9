"""The live dashboard's socket: a snapshot, then every invocation as it happens and the state each second.

Server to page (JSON text frames): `hello` (recent invocations, whether development tokens are on, the
API's path), `invocation` (one record's summary), `state` (connections, chart series, dead letters),
`detail` (one record with its truncated, redacted event and response), `error`. Page to server:
`{"op": "detail", "seq": N}` and `{"op": "close", "connectionId": "..."}` (as `DELETE @connections`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed

from ws_emulator.errors import ConnectionGoneError
from ws_emulator.gateway.live import LIVE_PATH, origin_refusal
from ws_emulator.gateway.static_site import PlainReply
from ws_emulator.observe.recorder import InvocationRecorder
from ws_emulator.observe.records import InvocationRecord, redact, truncated_json

STATE_INTERVAL_S = 0.25  # connections are cheap to list: a new one shows within a quarter second
SERIES_INTERVAL_S = 1.0  # the charts move in 10 s bins; once a second is plenty
DEAD_LETTER_INTERVAL_S = 5.0
SNAPSHOT_RECORDS = 200
QUEUE_LIMIT = 500  # records waiting for a slow page; beyond it the page misses some and is told so
COMMAND_LIMIT_BYTES = 4096


def parse_command(text: str | bytes) -> tuple[str, Any]:
    """(op, argument) of a page's command; ValueError with a message for anything else."""
    if isinstance(text, bytes) or len(text) > COMMAND_LIMIT_BYTES:
        raise ValueError("commands are JSON text frames of at most 4096 bytes")
    try:
        command = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(command, dict):
        raise ValueError("a command is a JSON object with an 'op'")
    op = command.get("op")
    if op == "detail":
        seq = command.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("detail needs an integer 'seq'")
        return op, seq
    if op == "close":
        cid = command.get("connectionId")
        if not isinstance(cid, str) or not cid:
            raise ValueError("close needs a 'connectionId' string")
        return op, cid
    raise ValueError(f"unknown op {op!r}: expected detail or close")


def dead_letter_view(letters: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Dead letters with their bodies truncated and redacted, as the page lists them."""
    view: dict[str, list[dict[str, Any]]] = {}
    for queue, messages in letters.items():
        view[str(queue)] = [
            {
                "messageId": m.get("messageId"),
                "sent": (m.get("attributes") or {}).get("SentTimestamp"),
                "receiveCount": (m.get("attributes") or {}).get("ApproximateReceiveCount"),
                "body": truncated_json(m.get("body"), 600),
            }
            for m in messages
        ]
    return view


class Dashboard:
    """Serves `/_emulator/live` for the page in `observe/static/` (the gateway's LiveEndpoint)."""

    path = LIVE_PATH

    def __init__(
        self,
        recorder: InvocationRecorder,
        *,
        connections: Callable[[], list[dict[str, Any]]],
        close: Callable[[str], None],
        dead_letters: Callable[[], Mapping[str, Any]] | None = None,
        dev_tokens: bool = False,
        api_path: str = "/",
        token_query: str | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.recorder = recorder
        self._connections = connections
        self._close = close
        self._dead_letters = dead_letters
        self.dev_tokens = dev_tokens
        self.api_path = api_path
        # The query parameter the `$connect` authorizer reads its token from (None: no token needed).
        self.token_query = token_query
        self.log = log or logging.getLogger("ws_emulator.dashboard")
        self._letters: dict[str, list[dict[str, Any]]] = {}
        self._letters_at = 0.0
        self._series: dict[str, Any] = {}
        self._series_at = 0.0

    def refusal(self, headers: Headers, bound_host: str, port: int) -> PlainReply | None:
        return origin_refusal(headers.get("Origin"), bound_host, port)

    async def serve(self, ws: ServerConnection) -> None:
        queue: asyncio.Queue[InvocationRecord] = asyncio.Queue(QUEUE_LIMIT)
        missed = 0

        def push(record: InvocationRecord) -> None:
            nonlocal missed
            try:
                queue.put_nowait(record)
            except asyncio.QueueFull:
                missed += 1

        unsubscribe = self.recorder.subscribe(push)
        hello = {
            "type": "hello",
            "devTokens": self.dev_tokens,
            "apiPath": self.api_path,
            "tokenQuery": self.token_query,
            "invocations": [r.summary() for r in self.recorder.recent(SNAPSHOT_RECORDS)],
        }
        tasks: list[asyncio.Task[None]] = []
        try:
            await ws.send(json.dumps(hello))
            await self._send_state(ws)
            tasks = [
                asyncio.create_task(self._forward(ws, queue, lambda: missed)),
                asyncio.create_task(self._tick(ws)),
            ]
            async for message in ws:
                await self._command(ws, message)
        except ConnectionClosed:
            pass
        finally:
            unsubscribe()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _forward(
        self, ws: ServerConnection, queue: asyncio.Queue[InvocationRecord], missed: Callable[[], int]
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                record = await queue.get()
                await ws.send(
                    json.dumps({"type": "invocation", "record": record.summary(), "missed": missed()})
                )

    async def _tick(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(STATE_INTERVAL_S)
                await self._send_state(ws)

    async def _send_state(self, ws: ServerConnection) -> None:
        if self._dead_letters is not None and time.monotonic() - self._letters_at > DEAD_LETTER_INTERVAL_S:
            self._letters_at = time.monotonic()
            try:
                self._letters = dead_letter_view(await asyncio.to_thread(self._dead_letters))
            except Exception as exc:  # the queues may be gone at shutdown; the page keeps the last view
                self.log.debug("dead letters not readable: %s", exc)
        if time.monotonic() - self._series_at >= SERIES_INTERVAL_S:
            self._series_at = time.monotonic()
            self._series = self.recorder.series()
        state = {
            "type": "state",
            "now": int(time.time() * 1000),
            "connections": redact(self._connections()),
            "series": self._series,
            "deadLetters": self._letters,
        }
        await ws.send(json.dumps(state))

    async def _command(self, ws: ServerConnection, message: str | bytes) -> None:
        try:
            op, argument = parse_command(message)
        except ValueError as exc:
            await ws.send(json.dumps({"type": "error", "message": str(exc)}))
            return
        if op == "detail":
            record = self.recorder.find(argument)
            if record is None:
                await ws.send(
                    json.dumps({"type": "error", "message": f"invocation {argument} is no longer kept"})
                )
            else:
                await ws.send(json.dumps({"type": "detail", "record": record.as_dict()}))
            return
        try:
            self._close(argument)
        except ConnectionGoneError:
            await ws.send(json.dumps({"type": "error", "message": f"connection {argument} is not open"}))
            return
        await ws.send(json.dumps({"type": "closing", "connectionId": argument}))
