"""What every resource builder shares: parameters, conditions, Ref/GetAtt and physical names of a template."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ws_emulator.errors import TemplateError
from ws_emulator.template.intrinsics import NO_VALUE, IntrinsicError, Resolver

FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
TABLE = "AWS::DynamoDB::Table"
SIMPLE_TABLE = "AWS::Serverless::SimpleTable"
QUEUE = "AWS::SQS::Queue"
API = "AWS::ApiGatewayV2::Api"
STAGE = "AWS::ApiGatewayV2::Stage"
ROUTE = "AWS::ApiGatewayV2::Route"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
AUTHORIZER = "AWS::ApiGatewayV2::Authorizer"
ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
DEPLOYMENT = "AWS::ApiGatewayV2::Deployment"
ESM = "AWS::Lambda::EventSourceMapping"
RULE = "AWS::Events::Rule"
EVENT_BUS = "AWS::Events::EventBus"
# Read for the functions' IAM checks (template/roles.py).
IAM_RESOURCES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
HANDLED = {
    *IAM_RESOURCES,
    ESM,
    RULE,
    EVENT_BUS,
    FUNCTION,
    LAYER,
    TABLE,
    SIMPLE_TABLE,
    QUEUE,
    API,
    STAGE,
    ROUTE,
    INTEGRATION,
    AUTHORIZER,
    ROUTE_RESPONSE,
    DEPLOYMENT,
}
FUNCTION_ARN = re.compile(r"arn:aws[\w-]*:lambda:[^:]+:\d+:function:([A-Za-z0-9_-]+)")


def fake_id(*parts: str, length: int) -> str:
    # Stable across runs so URLs and ids in logs stay the same between restarts.
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % 36] for i in range(0, length * 2, 2))


def to_env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise IntrinsicError(f"environment values must be scalars, got {value!r}")


def truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "enabled")
    return bool(value)


@dataclass(frozen=True)
class Names:
    region: str
    stack_name: str
    account_id: str


class TemplateContext:
    """One template being loaded: resolves values and names resources; builders for each kind extend it."""

    def __init__(self, path: Path, raw: dict[str, Any], overrides: Mapping[str, str], names: Names) -> None:
        self.path = path
        self.base_dir = path.parent
        self.raw = raw
        self.region = names.region
        self.stack_name = names.stack_name
        self.account_id = names.account_id
        self.resources: dict[str, dict[str, Any]] = raw["Resources"]
        self.warnings: list[str] = []
        self.params = self._parameters(overrides)
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self._physical: dict[str, Any] = {}
        self._naming: set[str] = set()
        self.resolver = Resolver(
            ref=self._ref,
            get_att=self._get_att,
            condition=self._condition,
            mappings=raw.get("Mappings") or {},
            region=self.region,
        )

    # -- errors ---------------------------------------------------------------------------------
    def error(self, logical_id: str, message: str) -> TemplateError:
        return TemplateError(logical_id, message, self.path)

    def resolve(self, logical_id: str, value: Any) -> Any:
        try:
            result = self.resolver.resolve(value)
        except IntrinsicError as exc:
            raise self.error(logical_id, str(exc)) from exc
        return None if result is NO_VALUE else result

    # -- parameters, pseudo parameters, conditions ---------------------------------------------
    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared: dict[str, Any] = self.raw.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            self.warnings.append(f"parameter overrides not declared in the template: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, declared_value in declared.items():
            decl = declared_value or {}
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in decl:
                value = decl["Default"]
            else:
                raise self.error(name, "parameter has no Default and no override (use --parameter-overrides)")
            value = to_env_str(value) if not isinstance(value, list) else ",".join(map(str, value))
            allowed = decl.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                raise self.error(name, f"value {value!r} is not one of AllowedValues {allowed}")
            ptype = str(decl.get("Type", "String"))
            if ptype.startswith("AWS::SSM::Parameter::Value"):
                self.warnings.append(f"{name}: SSM-typed parameter used as its literal value {value!r}")
            if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
                values[name] = [v.strip() for v in value.split(",")] if value else []
            else:
                values[name] = value
        return values

    def _condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        declared = self.raw.get("Conditions") or {}
        if name not in declared:
            raise IntrinsicError(f"unknown condition {name!r}")
        if name in self._evaluating:
            raise IntrinsicError(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            value = self.resolver.condition_value(declared[name])
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = value
        return value

    def active(self, logical_id: str) -> bool:
        cond = self.resources[logical_id].get("Condition")
        if cond is None:
            return True
        try:
            return self._condition(str(cond))
        except IntrinsicError as exc:
            raise self.error(logical_id, str(exc)) from exc

    def _ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/"
            f"{self.stack_name}/00000000-0000-0000-0000-000000000000",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name not in self.resources:
            raise IntrinsicError(f"Ref to unknown parameter or resource {name!r}")
        if not self.active(name):
            raise IntrinsicError(f"Ref to {name!r}, whose Condition is false")
        return self.physical(name)["Ref"]

    def _get_att(self, logical_id: str, attr: str) -> Any:
        if logical_id not in self.resources:
            raise IntrinsicError(f"Fn::GetAtt on unknown resource {logical_id!r}")
        if not self.active(logical_id):
            raise IntrinsicError(f"Fn::GetAtt on {logical_id!r}, whose Condition is false")
        attrs = self.physical(logical_id)
        if attr not in attrs:
            rtype = self.resources[logical_id].get("Type")
            raise IntrinsicError(f"Fn::GetAtt {logical_id}.{attr}: attribute not emulated for {rtype}")
        return attrs[attr]

    # -- physical names and attributes ---------------------------------------------------------
    def _name_prop(self, logical_id: str, prop: str) -> str | None:
        props = self.resources[logical_id].get("Properties") or {}
        if prop not in props:
            return None
        value = self.resolver.resolve(props[prop])
        return None if value is NO_VALUE else str(value)

    def physical(self, logical_id: str) -> dict[str, Any]:
        """Ref value and GetAtt attributes of a resource, computed once."""
        if logical_id in self._physical:
            return dict(self._physical[logical_id])
        if logical_id in self._naming:
            raise IntrinsicError(f"circular reference while naming {logical_id!r}")
        self._naming.add(logical_id)
        try:
            attrs = self._compute_physical(logical_id)
        finally:
            self._naming.discard(logical_id)
        self._physical[logical_id] = attrs
        return dict(attrs)

    def _compute_physical(self, lid: str) -> dict[str, Any]:  # noqa: PLR0911 - one branch per type
        rtype = str(self.resources[lid].get("Type", ""))
        r, a, default_name = self.region, self.account_id, f"{self.stack_name}-{lid}"
        if rtype in (TABLE, SIMPLE_TABLE):
            name = self._name_prop(lid, "TableName") or default_name
            arn = f"arn:aws:dynamodb:{r}:{a}:table/{name}"
            # The real stream label is only known once the table exists; sources match by table id.
            return {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"}
        if rtype == QUEUE:
            name = self._name_prop(lid, "QueueName") or default_name
            props = self.resources[lid].get("Properties") or {}
            if truthy(self.resolver.resolve(props.get("FifoQueue")), False) and not name.endswith(".fifo"):
                name += ".fifo"
            url = f"https://sqs.{r}.amazonaws.com/{a}/{name}"
            return {"Ref": url, "Arn": f"arn:aws:sqs:{r}:{a}:{name}", "QueueName": name, "QueueUrl": url}
        if rtype in (FUNCTION, "AWS::Lambda::Function"):
            name = self._name_prop(lid, "FunctionName") or default_name
            return {"Ref": name, "Arn": f"arn:aws:lambda:{r}:{a}:function:{name}"}
        if rtype in (LAYER, "AWS::Lambda::LayerVersion"):
            name = self._name_prop(lid, "LayerName") or lid
            return {"Ref": f"arn:aws:lambda:{r}:{a}:layer:{name}:1"}
        if rtype == API:
            api_id = fake_id(self.stack_name, lid, length=10)
            return {
                "Ref": api_id,
                "ApiId": api_id,
                "ApiEndpoint": f"wss://{api_id}.execute-api.{r}.amazonaws.com",
            }
        if rtype == STAGE:
            return {"Ref": self._name_prop(lid, "StageName") or lid}
        if rtype.startswith("AWS::ApiGatewayV2::"):
            ident = fake_id(self.stack_name, lid, length=7)
            return {"Ref": ident, f"{rtype.rsplit('::', 1)[1]}Id": ident}
        if rtype == EVENT_BUS:
            name = self._name_prop(lid, "Name") or default_name
            arn = f"arn:aws:events:{r}:{a}:event-bus/{name}"
            return {"Ref": name, "Arn": arn, "Name": name}
        if rtype == "AWS::SNS::Topic":
            name = self._name_prop(lid, "TopicName") or default_name
            arn = f"arn:aws:sns:{r}:{a}:{name}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}
        if rtype == "AWS::IAM::Role":
            name = self._name_prop(lid, "RoleName") or default_name
            return {"Ref": name, "Arn": f"arn:aws:iam::{a}:role/{name}", "RoleId": lid}
        # Ignored resources still get a plausible Ref/Arn so templates that mention them load.
        name = self._name_prop(lid, "Name") or default_name
        service = rtype.split("::")[1].lower() if rtype.count("::") >= 2 else "local"
        return {"Ref": name, "Arn": f"arn:aws:{service}:{r}:{a}:{lid}/{name}"}

    def _props(self, lid: str) -> dict[str, Any]:
        props = self.resolve(lid, self.resources[lid].get("Properties") or {})
        if not isinstance(props, dict):
            raise self.error(lid, "Properties must be a mapping")
        return props

    def _queue_by_arn(self, arn: str) -> str | None:
        for lid, res in self.resources.items():
            if res.get("Type") == QUEUE and self.active(lid) and self.physical(lid)["Arn"] == arn:
                return lid
        return None

    def _table_by_stream_arn(self, arn: str) -> str | None:
        for lid, res in self.resources.items():
            if res.get("Type") == TABLE and self.active(lid):
                table_arn = self.physical(lid)["Arn"]
                if arn.startswith(f"{table_arn}/stream/"):
                    return lid
        return None
