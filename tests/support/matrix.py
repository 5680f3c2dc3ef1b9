"""Helpers for the refusal matrices: table snapshots, raw sends that expose the request id, a shared world."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import events
from tests.support.handlers import LambdaContext, load
from tests.support.template import action_routes
from tests.support.world import all_pages, clear_cached_clients, moto_world, set_lambda_env

TABLES = ("StateTable", "MessagesTable", "IdempotencyTable")
ROUTES = set(action_routes())
ERROR_KEYS = {"type", "code", "message", "requestId"}


def snapshot(dynamodb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of the three tables, in key order. A Scan is fine here: tests look at the whole world."""
    world: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        items = all_pages(dynamodb.Table(name).scan, ConsistentRead=True)
        world[name] = sorted(items, key=lambda i: (str(i.get("PK", i.get("id"))), str(i.get("SK", ""))))
    return world


def send(
    client: Any, body: str | dict[str, Any], route: str | None = None
) -> tuple[str, dict[str, Any] | None]:
    """Send one frame as API Gateway would route it; (the event's requestId, the route response frame).

    `route` overrides route selection, for bodies the test cannot parse itself (e.g. nested too deep).
    """
    harness = client.harness
    event = events.route_event(client.connection_id, client.auth, body, harness.clock.now_ms(), route)
    route = event["requestContext"]["routeKey"]
    name = route if route in ROUTES else "default"
    if route not in ROUTES:
        event["requestContext"]["routeKey"] = "$default"
    response = load(name).handler(event, LambdaContext(function_name=f"parley-{name}"))
    assert response["statusCode"] == 200
    frame = json.loads(response["body"]) if "body" in response else None
    return event["requestContext"]["requestId"], frame


def assert_error_frame(
    frame: dict[str, Any] | None, *, code: str, request_id: str, action: str | None
) -> None:
    """The one shape of an error frame: stable code, a human message, the request id, the action if routed."""
    assert frame is not None, "expected an error frame, got no response"
    assert frame.get("code") != "internal", frame
    expected_keys = ERROR_KEYS | ({"action"} if action is not None else set())
    assert set(frame) == expected_keys, frame
    assert frame["type"] == "error"
    assert frame["code"] == code, frame
    assert isinstance(frame["message"], str) and frame["message"].strip(), frame
    assert frame["requestId"] == request_id
    if action is not None:
        assert frame["action"] == action


@contextmanager
def shared_parley(env: dict[str, str] | None = None) -> Iterator[Any]:
    """The `parley` fixture's world, built once for a whole module (for long matrices of refusals).

    The same world as conftest's lambda_env + moto_aws + parley, with a MonkeyPatch of its own so the
    module's environment and the patched `deps.services` are undone when the module ends. `env`
    overrides the functions' environment (a module that pages a crowd lifts the rate limits).
    """
    from parley import deps
    from tests.integration.harness import Harness

    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(max_workers=8) as pool:
        set_lambda_env(mp)
        for key, value in (env or {}).items():
            mp.setenv(key, value)
        try:
            with moto_world(mp) as world:
                clear_cached_clients()  # built with the queue URL moto_world set
                harness = Harness(world, pool)
                mp.setattr(deps, "services", lambda: harness.services)
                yield harness
        finally:
            clear_cached_clients()
