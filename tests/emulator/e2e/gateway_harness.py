"""A gateway + management API on loopback with in-process fake functions, for protocol-level tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ws_emulator.faults import Faults
from ws_emulator.gateway.events import ApiInfo
from ws_emulator.gateway.management import ManagementApi
from ws_emulator.gateway.model import AuthorizerDef, GatewayApi, GatewaySettings, RouteDef
from ws_emulator.gateway.routing import parse_expression
from ws_emulator.gateway.server import Gateway

API = ApiInfo(api_id="testapi", stage="test", region="us-east-1", account_id="123456789012")


@dataclass(frozen=True)
class FakeResult:
    ok: bool
    payload: Any
    error: dict[str, Any] | None
    duration_ms: float
    function_id: str = ""
    request_id: str = ""


@dataclass
class FakeInvoker:
    """Calls plain Python functions in a thread, recording every event, like the runtime would."""

    functions: dict[str, Callable[[dict[str, Any]], Any]]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def invoke(self, function_id: str, event: dict[str, Any]) -> FakeResult:
        self.calls.append((function_id, event))
        started = time.perf_counter()
        try:
            payload = await asyncio.to_thread(self.functions[function_id], event)
        except Exception as exc:
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}
            return FakeResult(False, None, error, (time.perf_counter() - started) * 1000, function_id)
        return FakeResult(True, payload, None, (time.perf_counter() - started) * 1000, function_id)

    def events_for(self, function_id: str) -> list[dict[str, Any]]:
        return [event for fid, event in self.calls if fid == function_id]


def allow(principal: str, **context: Any) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
        },
        "context": context,
    }


def api_with(routes: dict[str, RouteDef], expression: str = "$request.body.action") -> GatewayApi:
    return GatewayApi(info=API, selection=parse_expression(expression), routes=routes)


def bound() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


@dataclass
class Running:
    gateway: Gateway
    management: ManagementApi
    invoker: FakeInvoker

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}/{API.stage}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management.port}/{API.stage}"


@contextlib.asynccontextmanager
async def running_gateway(
    api: GatewayApi,
    invoker: FakeInvoker,
    settings: GatewaySettings | None = None,
    faults: Faults | None = None,
) -> AsyncIterator[Running]:
    log = logging.getLogger("ws_emulator.test")
    gateway = Gateway(api, invoker, settings or GatewaySettings(), log=log, event_log=log)
    management = ManagementApi(gateway, stage=API.stage, log=log, faults=faults)
    await gateway.start(bound())
    await management.start(bound())
    try:
        yield Running(gateway, management, invoker)
    finally:
        await gateway.shutdown()
        await management.stop()


AUTHORIZER = AuthorizerDef("Auth", "auth", ("route.request.querystring.token",))
