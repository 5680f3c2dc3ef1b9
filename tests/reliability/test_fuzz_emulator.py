"""Hostile frames through the emulator: text, binary, non-JSON, fragmented, over the 32 KB / 128 KB limits.

Each frame gets the action's reply, a documented error frame, or (over a limit) the close code 1009,
as API Gateway gives; never `internal`, never API Gateway's "Internal server error", nothing stored
by a refused frame. The connection is a blocking client in this thread (the emulator has its own), so
hypothesis drives it directly. A sentinel frame after each case marks where that case's replies end
(the emulator dispatches one connection's frames in order).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.reliability.conftest import Running, report, scale
from tests.reliability.frames import ACTIONS, check_error, encode, mutated_frame, raw_bodies, route_of
from tests.support.ws_client import REPLY

COUNTS: Counter[str] = Counter()
_sentinels = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def counts() -> Iterator[None]:
    yield
    report(
        "fuzz-emulator",
        cases=COUNTS["cases"],
        replies=COUNTS["accepted"],
        errors=COUNTS["refused"],
        closed_1009=COUNTS["1009"],
        by_code={k[5:]: v for k, v in COUNTS.items() if k.startswith("code:")},
    )


class Session:
    """alice of a fresh workspace, joined to general; reconnects after a 1009 close."""

    def __init__(self, emu: Running, workspace: str) -> None:
        self.emu = emu
        self.workspace = workspace
        self.ws = self._open()

    def _open(self) -> ClientConnection:
        ws = connect(self.emu.url("alice", self.workspace), open_timeout=30, max_size=2**20).__enter__()
        ws.send(json.dumps({"action": "join", "channel": "general"}))
        while json.loads(ws.recv(30)).get("type") != "joined":
            pass
        return ws

    def exchange(self, data: str | bytes | list[str]) -> list[dict[str, Any]] | int:
        """Send one case; the replies it got (pushed events left out), or the close code."""
        marker = f"sentinel-{next(_sentinels)}"
        try:
            self.ws.send(data)
            self.ws.send(json.dumps({"action": marker}))
            replies: list[dict[str, Any]] = []
            while True:
                frame = json.loads(self.ws.recv(60))
                if frame.get("type") == "error" and marker in frame.get("message", ""):
                    return replies
                if frame.get("type") in ("message", "typing", "presence_diff", "batch"):
                    continue
                replies.append(frame)
        except ConnectionClosed:
            code = self.ws.close_code
            self.ws = self._open()
            return code if code is not None else -1

    def messages_stored(self) -> int:
        prefix = f"WS#{self.workspace}#CHAN#"
        return sum(
            1
            for item in self.emu.table_items("MessagesTable")
            if item["PK"]["S"].startswith(prefix) and item["SK"]["S"].startswith("MSG#")
        )


@pytest.fixture(scope="module")
def session(emu: Running) -> Iterator[Session]:
    s = Session(emu, "fuzz-emulator")
    yield s
    s.ws.close()


def check(session: Session, data: str | bytes | list[str], route: str) -> None:
    before = session.messages_stored()
    outcome = session.exchange(data)
    COUNTS["cases"] += 1
    if isinstance(outcome, int):
        assert outcome == 1009, outcome
        COUNTS["1009"] += 1
        assert session.messages_stored() == before
        return
    assert all(r.get("message") != "Internal server error" for r in outcome), outcome
    assert all(r.get("message") != "Forbidden" for r in outcome), outcome  # $default catches every frame
    if route == "typing":
        assert len(outcome) <= 1, outcome
    else:
        assert len(outcome) == 1, outcome
    for reply in outcome:
        if reply.get("type") == "error":
            check_error(reply)
            COUNTS["refused"] += 1
            COUNTS[f"code:{reply['code']}"] += 1
            assert session.messages_stored() == before
        else:
            assert route != "$default" and reply["type"] == REPLY[route], (route, reply)
            COUNTS["accepted"] += 1


FUZZ = settings(
    max_examples=scale(4, 60),  # per action (10 actions) and for raw bodies
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.mark.parametrize("action", ACTIONS)
def test_mutated_frames_through_the_gateway(session: Session, action: str) -> None:
    @FUZZ
    @given(frame=mutated_frame(action))
    def run(frame: dict[str, Any]) -> None:
        body = encode(frame)
        if len(body.encode()) > 32 * 1024:
            body = body[: 30 * 1024]  # over-limit frames have their own cases below
        check(session, body, route_of(body))

    run()


def test_raw_and_binary_bodies_through_the_gateway(session: Session) -> None:
    @FUZZ
    @given(body=raw_bodies, binary=st.booleans())
    def run(body: str, binary: bool) -> None:
        if binary:
            # binary frames reach $default base64-encoded, whatever they hold
            check(session, body.encode("utf-8", "surrogatepass")[: 30 * 1024], "$default")
        else:
            check(session, body[: 30 * 1024], route_of(body[: 30 * 1024]))

    run()


def _message(text: str) -> str:
    return encode({"action": "message", "channel": "general", "text": text})


@pytest.mark.parametrize(
    ("name", "data", "route"),
    [
        ("binary JSON frame", json.dumps({"action": "heartbeat"}).encode(), "$default"),
        ("binary garbage", bytes(range(256)) * 8, "$default"),
        ("empty text frame", "", "$default"),
        ("empty binary frame", b"", "$default"),
        ("text of 4,000 emoji", _message("😀" * 4000), "message"),
        ("text of 4,001 emoji", _message("😀" * 4001), "message"),
        ("NUL in the channel", encode({"action": "join", "channel": "gen\x00eral"}), "join"),
        ("lone surrogate text", _message("\ud800"), "message"),
        ("RTL override channel", encode({"action": "join", "channel": "\u202egeneral"}), "join"),
        ("deeply nested", "[" * 3000 + "]" * 3000, "$default"),
        ("deeply nested field", '{"action": "join", "channel": ' + "[" * 3000 + "]" * 3000 + "}", "join"),
        ("frame just under 32 KB", _message("a" * 32_000), "message"),
        ("frame over 32 KB", _message("a" * 33_000), "close"),
        ("binary frame over 32 KB", b"\x00" * (33 * 1024), "close"),
        ("fragmented message over 128 KB", ["a" * (30 * 1024)] * 5, "close"),
        (
            "fragmented message under 128 KB",
            ['{"action": "heartbeat", "pad": "', "a" * 20_000, '"}'],
            "heartbeat",
        ),
    ],
)
def test_edge_frames_through_the_gateway(session: Session, name: str, data: Any, route: str) -> None:
    outcome_route = route if route != "close" else "$default"
    if route == "close":
        before = session.messages_stored()
        assert session.exchange(data) == 1009  # as API Gateway closes on an oversized frame or message
        COUNTS["cases"] += 1
        COUNTS["1009"] += 1
        assert session.messages_stored() == before
        return
    check(session, data, outcome_route)
