"""Load a SAM template: read the YAML, then build every spec the emulator runs (raises TemplateError)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from ws_emulator.errors import TemplateError
from ws_emulator.template.context import (
    API,
    ESM,
    EVENT_BUS,
    FUNCTION,
    HANDLED,
    LAYER,
    QUEUE,
    RULE,
    SIMPLE_TABLE,
    TABLE,
    Names,
)
from ws_emulator.template.functions import FunctionParts
from ws_emulator.template.intrinsics import load_yaml
from ws_emulator.template.resources import ResourceParts
from ws_emulator.template.roles import RoleParts
from ws_emulator.template.sam import SERVERLESS_WEBSOCKET_API, expand, uses_sam
from ws_emulator.template.specs import DEFAULT_ACCOUNT_ID, FunctionSpec, Template
from ws_emulator.template.websocket import WebSocketParts


def load_template(
    path: Path,
    parameter_overrides: Mapping[str, str] | None = None,
    *,
    region: str = "us-east-1",
    stack_name: str = "local",
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> Template:
    """Read `path` and build the specs the emulator runs; raises TemplateError on anything unsupported."""
    path = Path(path).resolve()
    try:
        raw = load_yaml(path)
    except OSError as exc:
        raise TemplateError("<template>", f"cannot read: {exc}", path) from exc
    except yaml.YAMLError as exc:
        raise TemplateError("<template>", f"invalid YAML: {exc}", path) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("Resources"), dict):
        raise TemplateError("<template>", "no Resources section", path)
    names = Names(region=region, stack_name=stack_name, account_id=account_id)
    return _Builder(path, raw, parameter_overrides or {}, names).build()


class _Builder(FunctionParts, ResourceParts, WebSocketParts, RoleParts):
    """Every kind of resource, in the order their references need: layers, tables, queues, functions, APIs."""

    # -- build ---------------------------------------------------------------------------------
    def build(self) -> Template:
        self.expanded = self.resources
        if uses_sam(self.raw):
            self.expanded = expand(
                self.raw,
                self.params,
                region=self.region,
                account_id=self.account_id,
                stack_name=self.stack_name,
                path=self.path,
            )
            self._adopt_websocket_apis()
        active: dict[str, str] = {}
        ignored: list[str] = []
        for lid, res in self.resources.items():
            if not isinstance(res, dict) or "Type" not in res:
                raise self.error(lid, "resource has no Type")
            rtype = str(res["Type"])
            if not self.active(lid):
                ignored.append(f"{lid} ({rtype}; Condition {res.get('Condition')} is false)")
                continue
            active[lid] = rtype
            if rtype not in HANDLED:
                ignored.append(f"{lid} ({rtype})")

        layers = {lid: self._layer(lid) for lid, t in active.items() if t == LAYER}
        tables = {lid: self._table(lid, t) for lid, t in active.items() if t in (TABLE, SIMPLE_TABLE)}
        queues = {lid: self._queue(lid) for lid, t in active.items() if t == QUEUE}
        buses = {lid: self._event_bus(lid) for lid, t in active.items() if t == EVENT_BUS}
        globals_fn = (self.raw.get("Globals") or {}).get("Function") or {}
        functions: dict[str, FunctionSpec] = {}
        for lid, t in active.items():
            if t == FUNCTION:
                functions[lid] = replace(
                    self._function(lid, globals_fn, layers, ignored), role=self._role(lid)
                )
        for lid, t in active.items():
            if t == ESM:
                self._event_source_mapping(lid, functions)
            elif t == RULE:
                self._events_rule(lid, functions, ignored)
        apis = [self._websocket_api(lid, active, functions) for lid, t in active.items() if t == API]
        return Template(
            path=self.path,
            region=self.region,
            account_id=self.account_id,
            stack_name=self.stack_name,
            functions=functions,
            tables=tables,
            queues=queues,
            websocket_apis=[api for api in apis if api is not None],
            ignored=ignored,
            warnings=self.warnings,
            layers=layers,
            parameters=dict(self.params),
            event_buses=buses,
        )

    def _adopt_websocket_apis(self) -> None:
        """Serve an AWS::Serverless::WebSocketApi as the AWS::ApiGatewayV2::* resources SAM makes of it.

        The API keeps its logical id; its routes, integrations, authorizer and stage get SAM's ids
        (`{Api}{Key}Route`, `{Api}ConnectAuthorizer`, ...), which the template's own resources (a
        RouteResponse naming `{Api}EchoRoute`) refer to as they would on AWS.
        """
        if not any(res.get("Type") == SERVERLESS_WEBSOCKET_API for res in self.resources.values()):
            return
        for lid, res in self.expanded.items():
            if not str(res.get("Type", "")).startswith("AWS::ApiGatewayV2::"):
                continue
            current = self.resources.get(lid)
            if current is None or current.get("Type") == SERVERLESS_WEBSOCKET_API:
                self.resources[lid] = res
