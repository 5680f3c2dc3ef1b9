"""Read IAM out of template.yaml: every statement, what it grants, and to which function, by resource name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

CONNECTIONS = "@connections"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def if_branches(value: Any) -> Iterator[Any]:
    """Both branches of an Fn::If (recursively), dropping AWS::NoValue; a plain value yields itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            yield from if_branches(branch)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def statements_by_owner(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every IAM statement in the template, keyed by the resource that carries it."""
    owners: dict[str, list[dict[str, Any]]] = {}
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        found: list[dict[str, Any]] = []
        if res["Type"] == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies", [])):
                for doc in if_branches(policy):
                    if isinstance(doc, dict) and "Statement" in doc:
                        found.extend(as_list(doc["Statement"]))
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for doc in if_branches(policy):
                    found.extend(as_list(doc["PolicyDocument"]["Statement"]))
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.extend(as_list(props["PolicyDocument"]["Statement"]))
        if found:
            owners[name] = found
    return owners


def all_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [st for sts in statements_by_owner(template).values() for st in sts]


def resource_owner(resource: Any) -> str:
    """Name what an IAM resource points at: a table/queue (or its index/stream), @connections, ssm, '*'."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        if attribute == "StreamArn":
            return f"{logical_id}/stream"
        return logical_id if attribute == "Arn" else f"{logical_id}.{attribute}"
    if "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        arn_of = re.fullmatch(r"\$\{(\w+)\.Arn\}(/.*)", text)
        if arn_of:
            return arn_of.group(1) + arn_of.group(2)
        if text.startswith("arn:${AWS::Partition}:execute-api:") and text.endswith("/@connections/*"):
            return CONNECTIONS
        ssm = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter\$\{(\w+)\}", text
        )
        if ssm:
            return f"ssm:{ssm.group(1)}"
        return text
    return json.dumps(resource)


def granted(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (resource_owner(resource), action)
        for st in statements
        if st["Effect"] == "Allow"
        for action in as_list(st["Action"])
        for resource in as_list(st["Resource"])
    }


def function_permissions(template: dict[str, Any], function: str) -> set[tuple[str, str]]:
    """What a function may do: its SAM Policies statements, or those of its explicit Role."""
    owners = statements_by_owner(template)
    role = template["Resources"][function]["Properties"].get("Role")
    if role is not None:
        return granted(owners.get(role["Fn::GetAtt"][0], []))
    return granted(owners.get(function, []))
