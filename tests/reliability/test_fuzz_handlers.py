"""Property-based fuzzing of every action's frame through the real route handlers under moto.

Whatever arrives, a handler answers 200 with either the action's own reply or a documented error frame
(never `internal`, never an exception), and a refused frame writes nothing to any table.
tests/integration/test_bad_input.py lists the hand-picked cases; this suite draws them at random.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability.conftest import report, scale
from tests.reliability.frames import (
    ACTIONS,
    check_error,
    encode,
    mutated_frame,
    raw_bodies,
    route_of,
)
from tests.support import events
from tests.support.handlers import LambdaContext, load
from tests.support.matrix import shared_parley as shared_world
from tests.support.matrix import snapshot
from tests.support.ws_client import REPLY

EXAMPLES = scale(25, 600)  # per action; plus the raw-body property
COUNTS: Counter[str] = Counter()
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the fast run is the same every time; the full run explores more
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture(scope="module")
def world() -> Iterator[Any]:
    with shared_world() as harness:
        yield harness
    report(
        "fuzz-handlers",
        cases=COUNTS["refused"] + COUNTS["accepted"],
        refused=COUNTS["refused"],
        accepted=COUNTS["accepted"],
        by_code={k[5:]: v for k, v in COUNTS.items() if k.startswith("code:")},
    )


@pytest.fixture(scope="module")
def alice(world: Any) -> Any:
    client = world.connect("alice", name="Alice")
    assert client.send({"action": "join", "channel": "general"})["type"] == "joined"
    return client


def deliver(client: Any, body: str) -> dict[str, Any] | None:
    harness = client.harness
    route = route_of(body)
    event = events.route_event(client.connection_id, client.auth, body, harness.clock.now_ms(), route)
    name = route if route != "$default" else "default"
    response = load(name).handler(event, LambdaContext(function_name=f"parley-{name}"))
    assert response["statusCode"] == 200, response
    return json.loads(response["body"]) if "body" in response else None


def exercise(world: Any, client: Any, body: str) -> None:
    before = snapshot(world.aws.dynamodb)
    frame = deliver(client, body)
    if frame is not None and frame.get("type") == "error":
        check_error(frame)
        COUNTS["refused"] += 1
        COUNTS[f"code:{frame['code']}"] += 1
        assert snapshot(world.aws.dynamodb) == before, f"a refused frame wrote something: {body[:200]!r}"
        return
    COUNTS["accepted"] += 1
    route = route_of(body)
    assert route != "$default", frame  # $default only ever refuses
    assert (frame or {}).get("type") == REPLY[route], frame


@pytest.mark.parametrize("action", ACTIONS)
def test_mutated_frames_get_a_reply_or_a_documented_error(world: Any, alice: Any, action: str) -> None:
    @HYPOTHESIS
    @given(frame=mutated_frame(action))
    def run(frame: dict[str, Any]) -> None:
        exercise(world, alice, encode(frame))

    run()


def test_raw_bodies_get_a_documented_error(world: Any, alice: Any) -> None:
    @HYPOTHESIS
    @given(body=raw_bodies)
    def run(body: str) -> None:
        exercise(world, alice, body)

    run()


def test_text_length_boundary_counts_code_points(world: Any, alice: Any) -> None:
    # 4,000 emoji are 4,000 characters here (8,000 in JavaScript): accepted; 4,001 are refused
    world.clock.advance(60_000)  # a full rate bucket
    assert alice.send({"action": "join", "channel": "general"})["type"] == "joined"  # fuzzed leaves undone
    ok = deliver(alice, encode({"action": "message", "channel": "general", "text": "😀" * 4000}))
    assert ok is not None and ok["type"] == "ack", ok
    for text in ("😀" * 4001, "a" * 4001, "\ud83d" + "a" * 10, "a\x00" * 2001):
        before = snapshot(world.aws.dynamodb)
        refused = deliver(alice, encode({"action": "message", "channel": "general", "text": text}))
        assert refused is not None
        check_error(refused)
        assert refused["code"] == "bad_request"
        assert snapshot(world.aws.dynamodb) == before
