"""Read template.yaml (CloudFormation short tags included) so tests build exactly the tables it declares."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def read_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """A CloudFormation/SAM template with its short tags (!Ref, !GetAtt, !Sub...) in their long forms:
    the one YAML loader of tests/ and bench/ (the emulator's own lives in ws_emulator)."""
    with path.open() as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # a SafeLoader subclass


# Read once, shared: callers must not change what it returns (read_template gives a copy of one's own).
load_template = cache(read_template)


def resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in load_template()["Resources"].items() if v["Type"] == kind}


def action_routes() -> tuple[str, ...]:
    """The routes a client selects with `action` (all but $connect, $disconnect and $default), in
    template order. tests/unit/test_template.py pins the full route set; other tests use this list."""
    keys = (r["Properties"]["RouteKey"] for r in resources_of_type("AWS::ApiGatewayV2::Route").values())
    return tuple(key for key in keys if not key.startswith("$"))


def route_functions() -> dict[str, str]:
    """Route key -> the logical id of the function its integration invokes, read through the template's
    Route -> Integration -> IntegrationUri chain."""
    resources = load_template()["Resources"]
    found = {}
    for route in resources_of_type("AWS::ApiGatewayV2::Route").values():
        target = route["Properties"]["Target"]["Fn::Sub"]  # integrations/${XIntegration}
        integration = resources[re.fullmatch(r"integrations/\$\{(\w+)\}", target).group(1)]
        uri = integration["Properties"]["IntegrationUri"]["Fn::Sub"]
        function = re.search(r"/functions/\$\{(\w+)\.Arn\}/invocations$", uri).group(1)
        found[route["Properties"]["RouteKey"]] = function
    return found


def table_definitions() -> dict[str, tuple[dict[str, Any], str | None]]:
    """Logical id -> (create_table kwargs named after the logical id, TTL attribute or None)."""
    tables = {}
    for logical_id, resource in resources_of_type("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        kwargs: dict[str, Any] = {
            "TableName": logical_id,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        ttl = props.get("TimeToLiveSpecification") or {}
        tables[logical_id] = (kwargs, ttl.get("AttributeName") if ttl.get("Enabled") else None)
    return tables


def stream_filters(table_logical_id: str) -> list[dict[str, Any]]:
    """The FilterCriteria patterns of FanoutFunction's events on the given table's stream: of every
    mapping on it (the StateTable has two, typing and presence), since together they are what the
    function receives from that stream."""
    import json

    events = load_template()["Resources"]["FanoutFunction"]["Properties"]["Events"]
    patterns = [
        json.loads(f["Pattern"])
        for event in events.values()
        if event["Properties"].get("Stream") == {"Fn::GetAtt": [table_logical_id, "StreamArn"]}
        for f in event["Properties"]["FilterCriteria"]["Filters"]
    ]
    if not patterns:
        raise KeyError(table_logical_id)
    return patterns


def function_stream_filters(function: str, table_logical_id: str) -> list[dict[str, Any]]:
    """The FilterCriteria patterns of one function's mappings on a table's stream (e.g. CountersFunction)."""
    import json

    events = load_template()["Resources"][function]["Properties"]["Events"]
    return [
        json.loads(f["Pattern"])
        for event in events.values()
        if event["Properties"].get("Stream") == {"Fn::GetAtt": [table_logical_id, "StreamArn"]}
        for f in event["Properties"]["FilterCriteria"]["Filters"]
    ]
