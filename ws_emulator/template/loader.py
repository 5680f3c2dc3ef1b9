"""Load a SAM template, resolve parameters, conditions and intrinsics into emulator specs."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ws_emulator.errors import TemplateError
from ws_emulator.sources.filters import FilterError, validate_pattern
from ws_emulator.template.intrinsics import NO_VALUE, IntrinsicError, Resolver, load_yaml

DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class LayerSpec:
    logical_id: str
    path: Path


@dataclass(frozen=True)
class StreamSourceSpec:
    table_id: str
    batch_size: int
    batching_window_s: float
    filters: list[dict[str, Any]]
    report_batch_item_failures: bool
    bisect_on_error: bool
    max_retry_attempts: int
    max_record_age_s: int
    on_failure_queue_id: str | None
    starting_position: str
    event_id: str = ""  # the key under the function's Events (names the mapping in logs)


@dataclass(frozen=True)
class SqsSourceSpec:
    queue_id: str
    batch_size: int
    batching_window_s: float
    report_batch_item_failures: bool
    event_id: str = ""
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    filters: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ScheduleSpec:
    expression: str
    enabled: bool
    input: str | None
    event_id: str = ""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    environment: dict[str, str]  # resolved, before local substitutions
    layers: list[LayerSpec]
    stream_sources: list[StreamSourceSpec]
    sqs_sources: list[SqsSourceSpec]
    schedules: list[ScheduleSpec]
    reserved_concurrency: int | None
    arn: str = ""


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    create_args: dict[str, Any]  # kwargs for dynamodb.create_table
    ttl_attribute: str | None
    stream: bool


@dataclass(frozen=True)
class QueueSpec:
    logical_id: str
    name: str
    attributes: dict[str, str]  # create_queue Attributes, RedrivePolicy resolved to the DLQ arn
    arn: str = ""
    dead_letter_queue_id: str | None = None


@dataclass(frozen=True)
class RouteSpec:
    route_key: str
    function_id: str | None
    authorization_type: str
    authorizer_id: str | None
    has_route_response: bool


@dataclass(frozen=True)
class AuthorizerSpec:
    logical_id: str
    function_id: str
    identity_sources: list[str]


@dataclass(frozen=True)
class WebSocketApiSpec:
    logical_id: str
    api_id: str
    name: str
    route_selection_expression: str
    stage: str
    routes: dict[str, RouteSpec]
    authorizers: dict[str, AuthorizerSpec]


@dataclass
class Template:
    path: Path
    region: str
    account_id: str
    stack_name: str
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    websocket_apis: list[WebSocketApiSpec]
    ignored: list[str]  # "LogicalId (Type)"
    warnings: list[str] = field(default_factory=list)
    layers: dict[str, LayerSpec] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"
_TABLE = "AWS::DynamoDB::Table"
_SIMPLE_TABLE = "AWS::Serverless::SimpleTable"
_QUEUE = "AWS::SQS::Queue"
_API = "AWS::ApiGatewayV2::Api"
_STAGE = "AWS::ApiGatewayV2::Stage"
_ROUTE = "AWS::ApiGatewayV2::Route"
_INTEGRATION = "AWS::ApiGatewayV2::Integration"
_AUTHORIZER = "AWS::ApiGatewayV2::Authorizer"
_ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
_DEPLOYMENT = "AWS::ApiGatewayV2::Deployment"
_ESM = "AWS::Lambda::EventSourceMapping"
_RULE = "AWS::Events::Rule"
_HANDLED = {
    _ESM,
    _RULE,
    _FUNCTION,
    _LAYER,
    _TABLE,
    _SIMPLE_TABLE,
    _QUEUE,
    _API,
    _STAGE,
    _ROUTE,
    _INTEGRATION,
    _AUTHORIZER,
    _ROUTE_RESPONSE,
    _DEPLOYMENT,
}
_FUNCTION_ARN = re.compile(r"arn:aws[\w-]*:lambda:[^:]+:\d+:function:([A-Za-z0-9_-]+)")
_UNSUPPORTED_STREAM_PROPS = {
    "ParallelizationFactor": "one batch in flight per shard",
    "TumblingWindowInSeconds": "no window state is passed",
    "StartingPositionTimestamp": "AT_TIMESTAMP starts at LATEST",
    "MetricsConfig": "no event source mapping metrics",
}
_UNSUPPORTED_SQS_PROPS = {
    "MetricsConfig": "no event source mapping metrics",
}


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
    names = _Names(region=region, stack_name=stack_name, account_id=account_id)
    return _Builder(path, raw, parameter_overrides or {}, names).build()


def _fake_id(*parts: str, length: int) -> str:
    # Stable across runs so URLs and ids in logs stay the same between restarts.
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[int(digest[i : i + 2], 16) % 36] for i in range(0, length * 2, 2))


def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_props: Any, local_props: Any) -> Any:
    """SAM's Globals merge: maps merge (resource wins), lists concatenate, scalars are overridden."""
    if isinstance(global_props, dict) and isinstance(local_props, dict):
        if _is_intrinsic(global_props) or _is_intrinsic(local_props):
            return copy.deepcopy(local_props)
        merged = copy.deepcopy(global_props)
        for key, value in local_props.items():
            merged[key] = merge_globals(global_props[key], value) if key in global_props else value
        return merged
    if isinstance(global_props, list) and isinstance(local_props, list):
        return [*copy.deepcopy(global_props), *local_props]
    return copy.deepcopy(local_props)


def _to_env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise IntrinsicError(f"environment values must be scalars, got {value!r}")


def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "enabled")
    return bool(value)


@dataclass(frozen=True)
class _Names:
    region: str
    stack_name: str
    account_id: str


class _Builder:
    def __init__(self, path: Path, raw: dict[str, Any], overrides: Mapping[str, str], names: _Names) -> None:
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
            value = _to_env_str(value) if not isinstance(value, list) else ",".join(map(str, value))
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
        if rtype in (_TABLE, _SIMPLE_TABLE):
            name = self._name_prop(lid, "TableName") or default_name
            arn = f"arn:aws:dynamodb:{r}:{a}:table/{name}"
            # The real stream label is only known once the table exists; sources match by table id.
            return {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"}
        if rtype == _QUEUE:
            name = self._name_prop(lid, "QueueName") or default_name
            props = self.resources[lid].get("Properties") or {}
            if _truthy(self.resolver.resolve(props.get("FifoQueue")), False) and not name.endswith(".fifo"):
                name += ".fifo"
            url = f"https://sqs.{r}.amazonaws.com/{a}/{name}"
            return {"Ref": url, "Arn": f"arn:aws:sqs:{r}:{a}:{name}", "QueueName": name, "QueueUrl": url}
        if rtype in (_FUNCTION, "AWS::Lambda::Function"):
            name = self._name_prop(lid, "FunctionName") or default_name
            return {"Ref": name, "Arn": f"arn:aws:lambda:{r}:{a}:function:{name}"}
        if rtype in (_LAYER, "AWS::Lambda::LayerVersion"):
            name = self._name_prop(lid, "LayerName") or lid
            return {"Ref": f"arn:aws:lambda:{r}:{a}:layer:{name}:1"}
        if rtype == _API:
            api_id = _fake_id(self.stack_name, lid, length=10)
            return {
                "Ref": api_id,
                "ApiId": api_id,
                "ApiEndpoint": f"wss://{api_id}.execute-api.{r}.amazonaws.com",
            }
        if rtype == _STAGE:
            return {"Ref": self._name_prop(lid, "StageName") or lid}
        if rtype.startswith("AWS::ApiGatewayV2::"):
            ident = _fake_id(self.stack_name, lid, length=7)
            return {"Ref": ident, f"{rtype.rsplit('::', 1)[1]}Id": ident}
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

    # -- build ---------------------------------------------------------------------------------
    def build(self) -> Template:
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
            if rtype not in _HANDLED:
                ignored.append(f"{lid} ({rtype})")

        layers = {lid: self._layer(lid) for lid, t in active.items() if t == _LAYER}
        tables = {lid: self._table(lid, t) for lid, t in active.items() if t in (_TABLE, _SIMPLE_TABLE)}
        queues = {lid: self._queue(lid) for lid, t in active.items() if t == _QUEUE}
        globals_fn = (self.raw.get("Globals") or {}).get("Function") or {}
        functions: dict[str, FunctionSpec] = {}
        for lid, t in active.items():
            if t == _FUNCTION:
                functions[lid] = self._function(lid, globals_fn, layers, ignored)
        for lid, t in active.items():
            if t == _ESM:
                self._event_source_mapping(lid, functions)
            elif t == _RULE:
                self._events_rule(lid, functions, ignored)
        apis = [self._websocket_api(lid, active, functions) for lid, t in active.items() if t == _API]
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
        )

    def _function_by_ref(self, where: str, value: Any, functions: dict[str, FunctionSpec]) -> str:
        """A function of this template named by name, ARN (possibly qualified) or logical id."""
        text = str(value or "")
        match = _FUNCTION_ARN.search(text)
        name = match.group(1) if match else text
        for fid, spec in functions.items():
            if name in (spec.name, fid):
                return fid
        raise self.error(where, f"{text!r} is not a function of this template")

    def _event_source_mapping(self, lid: str, functions: dict[str, FunctionSpec]) -> None:
        """A plain CloudFormation event source mapping: the same as the SAM event it expands from."""
        props = self._props(lid)
        fid = self._function_by_ref(lid, props.get("FunctionName"), functions)
        spec = functions[fid]
        arn = str(props.get("EventSourceArn") or "")
        if not _truthy(props.get("Enabled"), True):
            return
        if ":dynamodb:" in arn:
            source = self._stream_source(lid, lid, props | {"Stream": arn})
            functions[fid] = replace(spec, stream_sources=[*spec.stream_sources, source])
        elif ":sqs:" in arn:
            sqs = self._sqs_source(lid, lid, props | {"Queue": arn})
            functions[fid] = replace(spec, sqs_sources=[*spec.sqs_sources, sqs])
        else:
            raise self.error(
                lid, f"EventSourceArn {arn!r}: only DynamoDB streams and SQS queues are emulated"
            )

    def _events_rule(self, lid: str, functions: dict[str, FunctionSpec], ignored: list[str]) -> None:
        """An EventBridge rule with a ScheduleExpression targeting functions of this template."""
        props = self._props(lid)
        expression = props.get("ScheduleExpression")
        if not expression:
            ignored.append(f"{lid} ({_RULE} without ScheduleExpression)")
            return
        enabled = str(props.get("State", "ENABLED")).upper() == "ENABLED"
        for target in props.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            if not _FUNCTION_ARN.search(arn):
                ignored.append(f"{lid} target {target.get('Id')} (not a Lambda function)")
                continue
            fid = self._function_by_ref(lid, arn, functions)
            payload = target.get("Input")
            if payload is not None and not isinstance(payload, str):
                payload = json.dumps(payload)
            schedule = ScheduleSpec(expression=str(expression), enabled=enabled, input=payload, event_id=lid)
            spec = functions[fid]
            functions[fid] = replace(spec, schedules=[*spec.schedules, schedule])

    def _props(self, lid: str) -> dict[str, Any]:
        props = self.resolve(lid, self.resources[lid].get("Properties") or {})
        if not isinstance(props, dict):
            raise self.error(lid, "Properties must be a mapping")
        return props

    def _layer(self, lid: str) -> LayerSpec:
        props = self._props(lid)
        uri = props.get("ContentUri")
        if not isinstance(uri, str):
            raise self.error(lid, "ContentUri must be a local directory")
        path = (self.base_dir / uri).resolve()
        if not path.is_dir():
            raise self.error(lid, f"ContentUri {uri!r} is not a directory ({path})")
        # `sam build` copies ContentUri into python/; a hand-made layer already has python/.
        python_dir = path / "python"
        return LayerSpec(lid, python_dir if python_dir.is_dir() else path)

    def _table(self, lid: str, rtype: str) -> TableSpec:
        props = self._props(lid)
        name = self.physical(lid)["Ref"]
        if rtype == _SIMPLE_TABLE:
            pk = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            attr_type = {"String": "S", "Number": "N", "Binary": "B"}.get(str(pk.get("Type")), "S")
            args: dict[str, Any] = {
                "TableName": name,
                "KeySchema": [{"AttributeName": pk["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": pk["Name"], "AttributeType": attr_type}],
                "BillingMode": "PAY_PER_REQUEST",
            }
            return TableSpec(lid, name, args, None, False)
        for required in ("KeySchema", "AttributeDefinitions"):
            if required not in props:
                raise self.error(lid, f"table has no {required}")
        billing = props.get("BillingMode") or (
            "PROVISIONED" if "ProvisionedThroughput" in props else "PAY_PER_REQUEST"
        )
        args = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            pt = props.get("ProvisionedThroughput") or {}
            args["ProvisionedThroughput"] = {
                "ReadCapacityUnits": int(pt.get("ReadCapacityUnits", 5)),
                "WriteCapacityUnits": int(pt.get("WriteCapacityUnits", 5)),
            }
        gsis = []
        for gsi in props.get("GlobalSecondaryIndexes") or []:
            index = {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection") if k in gsi}
            if billing == "PROVISIONED":
                pt = gsi.get("ProvisionedThroughput") or {}
                index["ProvisionedThroughput"] = {
                    "ReadCapacityUnits": int(pt.get("ReadCapacityUnits", 5)),
                    "WriteCapacityUnits": int(pt.get("WriteCapacityUnits", 5)),
                }
            gsis.append(index)
        if gsis:
            args["GlobalSecondaryIndexes"] = gsis
        lsis = [
            {k: lsi[k] for k in ("IndexName", "KeySchema", "Projection") if k in lsi}
            for lsi in props.get("LocalSecondaryIndexes") or []
        ]
        if lsis:
            args["LocalSecondaryIndexes"] = lsis
        stream_spec = props.get("StreamSpecification")
        view_type = stream_spec.get("StreamViewType") if isinstance(stream_spec, dict) else None
        if view_type:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attr = ttl.get("AttributeName") if _truthy(ttl.get("Enabled"), False) else None
        return TableSpec(lid, name, args, str(ttl_attr) if ttl_attr else None, bool(view_type))

    def _queue(self, lid: str) -> QueueSpec:
        props = self._props(lid)
        phys = self.physical(lid)
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in props:
                attributes[key] = _to_env_str(props[key])
        dlq_id = None
        redrive = props.get("RedrivePolicy")
        if redrive is not None:
            policy = json.loads(redrive) if isinstance(redrive, str) else dict(redrive)
            target = policy.get("deadLetterTargetArn")
            if not target or "maxReceiveCount" not in policy:
                raise self.error(lid, "RedrivePolicy needs deadLetterTargetArn and maxReceiveCount")
            dlq_id = self._queue_by_arn(str(target))
            if dlq_id is None:
                raise self.error(lid, f"RedrivePolicy target {target} is not a queue of this template")
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(policy)
        return QueueSpec(lid, phys["QueueName"], attributes, phys["Arn"], dlq_id)

    def _queue_by_arn(self, arn: str) -> str | None:
        for lid, res in self.resources.items():
            if res.get("Type") == _QUEUE and self.active(lid) and self.physical(lid)["Arn"] == arn:
                return lid
        return None

    def _table_by_stream_arn(self, arn: str) -> str | None:
        for lid, res in self.resources.items():
            if res.get("Type") == _TABLE and self.active(lid):
                table_arn = self.physical(lid)["Arn"]
                if arn.startswith(f"{table_arn}/stream/"):
                    return lid
        return None

    def _function(
        self, lid: str, globals_fn: dict[str, Any], layers: dict[str, LayerSpec], ignored: list[str]
    ) -> FunctionSpec:
        raw_props = self.resources[lid].get("Properties") or {}
        merged = merge_globals(globals_fn, raw_props)
        events = merged.pop("Events", None) or {}
        props = self.resolve(lid, merged)
        code_dir, handler, runtime = self._code(lid, props)
        fn_layers: list[LayerSpec] = []
        layer_arns = {self.physical(layer_id)["Ref"]: spec for layer_id, spec in layers.items()}
        for item in props.get("Layers") or []:
            if item in layer_arns:
                fn_layers.append(layer_arns[item])
            else:
                self.warnings.append(
                    f"{lid}: layer {item} is not a LayerVersion of this template; its packages must "
                    "be installed in the emulator's environment"
                )
        reserved = props.get("ReservedConcurrentExecutions")
        phys = self.physical(lid)
        spec = FunctionSpec(
            logical_id=lid,
            name=phys["Ref"],
            code_dir=code_dir,
            handler=handler,
            runtime=runtime,
            timeout_s=float(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment=self._environment(lid, props),
            layers=fn_layers,
            stream_sources=[],
            sqs_sources=[],
            schedules=[],
            reserved_concurrency=int(reserved) if reserved is not None else None,
            arn=phys["Arn"],
        )
        return self._with_events(spec, events, ignored)

    def _code(self, lid: str, props: dict[str, Any]) -> tuple[Path, str, str]:
        if props.get("PackageType") == "Image":
            raise self.error(lid, "PackageType Image is not supported (zip functions only)")
        if "InlineCode" in props:
            raise self.error(lid, "InlineCode is not supported: use CodeUri with a directory")
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str):
            raise self.error(lid, "CodeUri must be a local directory path")
        code_dir = (self.base_dir / code_uri).resolve()
        if not code_dir.is_dir():
            raise self.error(lid, f"CodeUri {code_uri!r} is not a directory ({code_dir})")
        handler = props.get("Handler")
        if not isinstance(handler, str) or "." not in handler:
            raise self.error(lid, f"Handler must look like module.function, got {handler!r}")
        runtime = str(props.get("Runtime", ""))
        if not runtime.startswith("python3"):
            raise self.error(lid, f"Runtime {runtime!r} is not supported (python3.x only)")
        return code_dir, handler, runtime

    def _environment(self, lid: str, props: dict[str, Any]) -> dict[str, str]:
        env_vars = (props.get("Environment") or {}).get("Variables") or {}
        try:
            environment = {str(k): _to_env_str(v) for k, v in env_vars.items()}
        except IntrinsicError as exc:
            raise self.error(lid, str(exc)) from exc
        for key, value in environment.items():
            if "{{resolve:" in value:
                self.warnings.append(f"{lid}: {key} holds a dynamic reference, passed on unresolved")
        return environment

    def _with_events(self, spec: FunctionSpec, events: dict[str, Any], ignored: list[str]) -> FunctionSpec:
        """The function with the triggers of its SAM `Events` (other event types are listed as ignored)."""
        for event_id, event in events.items():
            where = f"{spec.logical_id}.Events.{event_id}"
            etype = str((event or {}).get("Type"))
            props = self.resolve(where, (event or {}).get("Properties") or {})
            enabled = _truthy(props.get("Enabled"), True)
            if etype == "DynamoDB":
                if enabled:
                    spec = replace(
                        spec,
                        stream_sources=[*spec.stream_sources, self._stream_source(where, event_id, props)],
                    )
            elif etype == "SQS":
                if enabled:
                    spec = replace(
                        spec, sqs_sources=[*spec.sqs_sources, self._sqs_source(where, event_id, props)]
                    )
            elif etype in ("Schedule", "ScheduleV2"):
                spec = replace(
                    spec, schedules=[*spec.schedules, self._schedule(where, event_id, etype, props)]
                )
            else:
                ignored.append(f"{where} ({etype} event)")
        return spec

    def _stream_source(self, where: str, event_id: str, props: dict[str, Any]) -> StreamSourceSpec:
        stream = props.get("Stream")
        table_id = self._table_by_stream_arn(str(stream)) if stream else None
        if table_id is None:
            raise self.error(where, f"Stream {stream!r} is not the stream of a table in this template")
        table_props = self.resources[table_id].get("Properties") or {}
        if not table_props.get("StreamSpecification"):
            raise self.error(where, f"table {table_id} has no StreamSpecification")
        self._warn_unsupported(where, props, _UNSUPPORTED_STREAM_PROPS)
        filters = self._filters(where, props)
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        on_failure_id = None
        if on_failure and ":sns:" in str(on_failure):
            self.warnings.append(f"{where}: SNS on-failure destinations are not emulated (only logged)")
        elif on_failure:
            on_failure_id = self._queue_by_arn(str(on_failure))
            if on_failure_id is None:
                raise self.error(
                    where, f"OnFailure destination {on_failure} is not an SQS queue of this template"
                )
        response_types = props.get("FunctionResponseTypes") or []
        return StreamSourceSpec(
            table_id=table_id,
            batch_size=int(props.get("BatchSize", 100)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            filters=filters,
            report_batch_item_failures="ReportBatchItemFailures" in response_types,
            bisect_on_error=_truthy(props.get("BisectBatchOnFunctionError"), False),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            on_failure_queue_id=on_failure_id,
            starting_position=str(props.get("StartingPosition", "LATEST")),
            event_id=event_id,
        )

    def _filters(self, where: str, props: dict[str, Any]) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        for flt in (props.get("FilterCriteria") or {}).get("Filters") or []:
            pattern = flt.get("Pattern")
            try:
                parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
            except json.JSONDecodeError as exc:
                raise self.error(where, f"FilterCriteria pattern is not JSON: {exc}") from exc
            try:
                validate_pattern(parsed)
            except FilterError as exc:
                raise self.error(where, f"FilterCriteria pattern rejected: {exc}") from exc
            filters.append(parsed)
        if len(filters) > 5:
            self.warnings.append(f"{where}: {len(filters)} filters; AWS allows 5 unless the quota is raised")
        return filters

    def _warn_unsupported(self, where: str, props: dict[str, Any], unsupported: Mapping[str, str]) -> None:
        for key, effect in unsupported.items():
            if props.get(key) not in (None, False, [], {}):
                self.warnings.append(f"{where}: {key} is not emulated ({effect})")

    def _sqs_source(self, where: str, event_id: str, props: dict[str, Any]) -> SqsSourceSpec:
        queue = props.get("Queue")
        queue_id = self._queue_by_arn(str(queue)) if queue else None
        if queue_id is None:
            raise self.error(where, f"Queue {queue!r} is not the ARN of a queue in this template")
        self._warn_unsupported(where, props, _UNSUPPORTED_SQS_PROPS)
        scaling = props.get("ScalingConfig") or {}
        return SqsSourceSpec(
            queue_id=queue_id,
            batch_size=int(props.get("BatchSize", 10)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            event_id=event_id,
            max_concurrency=int(scaling["MaximumConcurrency"]) if "MaximumConcurrency" in scaling else None,
            filters=self._filters(where, props),
        )

    def _schedule(self, where: str, event_id: str, etype: str, props: dict[str, Any]) -> ScheduleSpec:
        expression = props.get("Schedule" if etype == "Schedule" else "ScheduleExpression")
        if not isinstance(expression, str):
            raise self.error(where, "schedule expression missing")
        enabled = (
            _truthy(props.get("Enabled"), True) and str(props.get("State", "ENABLED")).upper() != "DISABLED"
        )
        payload = props.get("Input")
        if payload is not None and not isinstance(payload, str):
            payload = json.dumps(payload)
        return ScheduleSpec(expression=expression, enabled=enabled, input=payload, event_id=event_id)

    # -- WebSocket APIs -------------------------------------------------------------------------
    def _websocket_api(
        self, lid: str, active: dict[str, str], functions: dict[str, FunctionSpec]
    ) -> WebSocketApiSpec | None:
        props = self._props(lid)
        if str(props.get("ProtocolType", "")).upper() != "WEBSOCKET":
            return None
        api = _ApiParts(self, lid, self.physical(lid)["Ref"], active, functions)
        stage = next((str(p["StageName"]) for p in api.children(_STAGE).values() if p.get("StageName")), None)
        if stage is None:
            stage = "local"
            self.warnings.append(f"{lid}: no AWS::ApiGatewayV2::Stage; serving stage {stage!r}")
        authorizers, authorizer_by_id = api.authorizers()
        return WebSocketApiSpec(
            logical_id=lid,
            api_id=api.api_id,
            name=str(props.get("Name") or lid),
            route_selection_expression=str(props.get("RouteSelectionExpression", "$request.body.action")),
            stage=stage,
            routes=api.routes(authorizer_by_id, api.integrations()),
            authorizers=authorizers,
        )


class _ApiParts:
    """The ApiGatewayV2 children (routes, integrations, authorizers) of one WebSocket API."""

    def __init__(
        self,
        builder: _Builder,
        lid: str,
        api_id: str,
        active: dict[str, str],
        functions: dict[str, FunctionSpec],
    ) -> None:
        self.b = builder
        self.lid = lid
        self.api_id = api_id
        self.active = active
        self.functions = functions

    def children(self, rtype: str) -> dict[str, dict[str, Any]]:
        out = {}
        for cid, t in self.active.items():
            if t == rtype:
                props = self.b._props(cid)
                if props.get("ApiId") == self.api_id:
                    out[cid] = props
        return out

    def function_for(self, cid: str, uri: Any) -> str | None:
        match = _FUNCTION_ARN.search(str(uri or ""))
        if not match:
            return None
        for fid, spec in self.functions.items():
            if spec.name == match.group(1):
                return fid
        raise self.b.error(cid, f"integration target {match.group(0)} is not a function of this template")

    def authorizers(self) -> tuple[dict[str, AuthorizerSpec], dict[str, str]]:
        specs: dict[str, AuthorizerSpec] = {}
        by_id: dict[str, str] = {}
        for cid, p in self.children(_AUTHORIZER).items():
            if str(p.get("AuthorizerType", "REQUEST")).upper() != "REQUEST":
                raise self.b.error(cid, "only REQUEST authorizers exist for WebSocket APIs")
            fid = self.function_for(cid, p.get("AuthorizerUri"))
            if fid is None:
                raise self.b.error(cid, f"AuthorizerUri {p.get('AuthorizerUri')!r} names no Lambda function")
            specs[cid] = AuthorizerSpec(cid, fid, [str(s) for s in p.get("IdentitySource") or []])
            by_id[self.b.physical(cid)["Ref"]] = cid
        return specs, by_id

    def integrations(self) -> dict[str, str | None]:
        """Integration id -> function logical id (None for non-Lambda integrations)."""
        out: dict[str, str | None] = {}
        for cid, p in self.children(_INTEGRATION).items():
            itype = str(p.get("IntegrationType", ""))
            fid = self.function_for(cid, p.get("IntegrationUri"))
            if itype != "AWS_PROXY" or fid is None:
                self.b.warnings.append(f"{cid}: only AWS_PROXY Lambda integrations are emulated ({itype})")
            out[self.b.physical(cid)["Ref"]] = fid if itype == "AWS_PROXY" else None
        return out

    def routes(
        self, authorizer_by_id: dict[str, str], integration_fn: dict[str, str | None]
    ) -> dict[str, RouteSpec]:
        responded = {str(p.get("RouteId")) for p in self.children(_ROUTE_RESPONSE).values()}
        routes: dict[str, RouteSpec] = {}
        for cid, p in self.children(_ROUTE).items():
            key = p.get("RouteKey")
            if not isinstance(key, str):
                raise self.b.error(cid, "route has no RouteKey")
            target = str(p.get("Target") or "")
            function_id = None
            if target:
                integration_id = target.split("/", 1)[1] if target.startswith("integrations/") else ""
                if integration_id not in integration_fn:
                    raise self.b.error(cid, f"Target {target!r} is not an integration of this API")
                function_id = integration_fn[integration_id]
            auth_type = str(p.get("AuthorizationType", "NONE")).upper()
            authorizer_lid = None
            if auth_type == "CUSTOM":
                authorizer_lid = authorizer_by_id.get(str(p.get("AuthorizerId")))
                if authorizer_lid is None:
                    raise self.b.error(cid, "AuthorizationType CUSTOM needs an AuthorizerId of this API")
            has_response = self.b.physical(cid)["Ref"] in responded
            if has_response and not p.get("RouteResponseSelectionExpression"):
                self.b.warnings.append(
                    f"{cid}: RouteResponse but no RouteResponseSelectionExpression: no reply sent"
                )
                has_response = False
            routes[key] = RouteSpec(key, function_id, auth_type, authorizer_lid, has_response)
        return routes
