"""Each function's execution role as CloudFormation would create it: inline, attached and managed policies."""

from __future__ import annotations

import json
from typing import Any

from ws_emulator.template.context import TemplateContext
from ws_emulator.template.specs import RoleSpec

ROLE = "AWS::IAM::Role"
POLICY = "AWS::IAM::Policy"
MANAGED_POLICY = "AWS::IAM::ManagedPolicy"
# The table's real stream label is only known once it exists; a policy naming `!GetAtt T.StreamArn`
# resolves to this placeholder label (context.py) and so is widened to every stream of that table.
PLACEHOLDER_STREAM = "/stream/1970-01-01T00:00:00.000"

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# The AWS managed policies SAM attaches by itself, and a few common ones, as AWS documents them
# (AWS Managed Policy reference). Another managed policy grants nothing here, with a warning.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    "service-role/AWSLambdaDynamoDBExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
                "dynamodb:ListStreams",
                *_LOGS,
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
    "service-role/AWSLambdaVPCAccessExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                *_LOGS,
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
}
_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"


class RoleParts(TemplateContext):
    """Builds a function's RoleSpec from the expanded (post-SAM) resources in `self.expanded`."""

    expanded: dict[str, dict[str, Any]]

    def _role(self, function_id: str) -> RoleSpec | None:
        fn = self.expanded.get(function_id) or {}
        role_ref = (fn.get("Properties") or {}).get("Role")
        role_id = _get_att_arn(role_ref)
        if role_id is None or (self.expanded.get(role_id) or {}).get("Type") != ROLE:
            arn = self.resolve(function_id, role_ref) if role_ref is not None else None
            self.warnings.append(
                f"{function_id}: its role {arn or '(none)'} is not an AWS::IAM::Role of this template, "
                "so its AWS calls are not checked"
            )
            return None
        role = self.expanded[role_id]
        props = role.get("Properties") or {}
        name = self._role_name(role_id, props)
        statements: list[dict[str, Any]] = []
        for policy in self.resolve(role_id, props.get("Policies")) or []:
            statements += _statements(policy.get("PolicyDocument") if isinstance(policy, dict) else None)
        for arn in self.resolve(role_id, props.get("ManagedPolicyArns")) or []:
            statements += self._managed(function_id, str(arn))
        statements += self._attached(role_id)
        policy_json = json.dumps(self._normalized(function_id, statements))
        return RoleSpec(
            logical_id=role_id,
            name=name,
            arn=f"arn:aws:iam::{self.account_id}:role/{name}",
            policy=policy_json,
        )

    def _role_name(self, role_id: str, props: dict[str, Any]) -> str:
        explicit = self.resolve(role_id, props.get("RoleName"))
        if explicit:
            return str(explicit)
        # CloudFormation names a role {stack}-{LogicalId}-{random}; IAM allows 64 characters.
        return f"{self.stack_name}-{role_id}"[:64]

    def _managed(self, function_id: str, arn: str) -> list[dict[str, Any]]:
        key = arn.removeprefix(_MANAGED_PREFIX)
        if arn.startswith(_MANAGED_PREFIX) and key in MANAGED_POLICIES:
            return list(MANAGED_POLICIES[key])
        self.warnings.append(
            f"{function_id}: managed policy {arn} is not known to the emulator and grants nothing here"
        )
        return []

    def _attached(self, role_id: str) -> list[dict[str, Any]]:
        """AWS::IAM::Policy and AWS::IAM::ManagedPolicy resources that name the role in `Roles`."""
        statements: list[dict[str, Any]] = []
        for lid, res in self.expanded.items():
            if res.get("Type") not in (POLICY, MANAGED_POLICY):
                continue
            if "Condition" in res and not self._condition(str(res["Condition"])):
                continue
            props = res.get("Properties") or {}
            if {"Ref": role_id} in (props.get("Roles") or []):
                statements += _statements(self.resolve(lid, props.get("PolicyDocument")))
        return statements

    def _normalized(self, function_id: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
        """One policy document moto's evaluator reads as AWS would (see docs/emulator.md)."""
        result: list[dict[str, Any]] = []
        conditional = False
        for original in statements:
            statement = dict(original)
            if "Condition" in statement:
                conditional = True
                if statement.get("Effect") != "Allow":
                    continue
                statement.pop("Condition")
            for key in ("Action", "NotAction"):
                if key in statement:
                    # Action names are case-insensitive on AWS; moto's matcher is not.
                    statement[key] = [str(a).lower() for a in _as_list(statement[key])]
            for key in ("Resource", "NotResource"):
                if key in statement:
                    statement[key] = [
                        str(r).replace(PLACEHOLDER_STREAM, "/stream/*") for r in _as_list(statement[key])
                    ]
            result.append(statement)
        if conditional:
            self.warnings.append(
                f"{function_id}: IAM conditions are not evaluated: conditional Allows apply "
                "unconditionally and conditional Denies are ignored"
            )
        return {"Version": "2012-10-17", "Statement": result}


def _get_att_arn(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else list(target)
        if len(parts) == 2 and parts[1] == "Arn":
            return str(parts[0])
    return None


def _statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
