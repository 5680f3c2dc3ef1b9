"""IAM for the functions' AWS calls: who is calling (per-function keys), which action on which ARN, allowed?

Policies are evaluated by moto's IAM evaluator (`moto.iam.access_control.IAMPolicy`); this module
only names the caller and, per operation, the action and resource ARNs the AWS Service
Authorization Reference lists for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ws_emulator.aws.eventbridge import bus_name
from ws_emulator.template.specs import FunctionSpec, Template

_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/[^/]*/[^/]*/([a-z0-9-]+)/aws4_request")
# (signing service, X-Amz-Target prefix) -> IAM service prefix
_TARGETS = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodb",
    "AmazonSQS": "sqs",
    "AmazonSSM": "ssm",
    "AWSEvents": "events",
}
# Batch and transaction calls are authorized as the item-level actions they perform.
_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
# Lambda's CreateEventSourceMapping refusal for a role that cannot use the queue.
_NO_SQS_PERMISSION = "The provided execution role does not have permissions to call {action} on SQS"
_TRANSACT_WRITE = {
    "ConditionCheck": "ConditionCheckItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
}


@dataclass(frozen=True)
class Caller:
    """A function as IAM sees it: its assumed-role session and the policy of its role."""

    function_id: str
    access_key_id: str
    principal_arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/FUNCTION
    policy: Any  # moto.iam.access_control.IAMPolicy


@dataclass(frozen=True)
class Denial:
    caller: Caller
    action: str
    resource: str
    explicit: bool

    @property
    def message(self) -> str:
        why = (
            "with an explicit deny in an identity-based policy"
            if self.explicit
            else f"because no identity-based policy allows the {self.action} action"
        )
        return (
            f"User: {self.caller.principal_arn} is not authorized to perform: {self.action} "
            f"on resource: {self.resource} {why}"
        )


def access_key_for(function_id: str) -> str:
    """A stable, AWS-shaped temporary access key id (ASIA + 16) per function."""
    digest = hashlib.sha256(function_id.encode()).hexdigest().upper()
    return "ASIA" + digest[:16]


class Iam:
    """Per-function credentials and the decision for one call; `enforce=False` keeps only the keys."""

    def __init__(self, template: Template, *, enforce: bool = True) -> None:
        from moto.iam.access_control import IAMPolicy

        self.enforce = enforce
        self.region = template.region
        self.account_id = template.account_id
        self._callers: dict[str, Caller] = {}
        for fid, spec in template.functions.items():
            if spec.role is None:
                continue
            key = access_key_for(fid)
            principal = f"arn:aws:sts::{self.account_id}:assumed-role/{spec.role.name}/{spec.name}"
            self._callers[key] = Caller(fid, key, principal, IAMPolicy(spec.role.policy))

    @property
    def checked_functions(self) -> list[str]:
        return sorted(caller.function_id for caller in self._callers.values())

    def credentials(self, spec: FunctionSpec) -> dict[str, str]:
        """The function's own keys (its calls are then checked against its role), or nothing."""
        if spec.role is None:
            return {}
        return {"AWS_ACCESS_KEY_ID": access_key_for(spec.logical_id)}

    def caller(self, authorization: str | None) -> Caller | None:
        match = _CREDENTIAL.search(authorization or "")
        return self._callers.get(match.group(1)) if match else None

    def decide(self, caller: Caller, checks: Iterable[tuple[str, str]]) -> Denial | None:
        """The first (action, resource) the caller's role does not allow, if any."""
        from moto.iam.access_control import PermissionResult

        if not self.enforce:
            return None
        for action, resource in checks:
            result = caller.policy.is_action_permitted(action.lower(), resource)
            if result != PermissionResult.PERMITTED:
                return Denial(caller, action, resource, explicit=result == PermissionResult.DENIED)
        return None

    def mapping_problems(self, template: Template) -> list[tuple[str, str]]:
        """(function, why) for each event source mapping Lambda would refuse to create for the role.

        Lambda reads streams and queues with the function's execution role and checks it when the
        mapping is created, so a role without these permissions fails the deployment.
        """
        problems: list[tuple[str, str]] = []
        for fid, spec in template.functions.items():
            caller = self._callers.get(access_key_for(fid))
            if caller is None:
                continue
            for stream in spec.stream_sources:
                table = template.tables[stream.table_id]
                arn = f"{self._table_arn(table.name)}/stream/1970-01-01T00:00:00.000"
                needed = ("DescribeStream", "GetRecords", "GetShardIterator")
                if self.decide(caller, [(f"dynamodb:{a}", arn) for a in needed]):
                    problems.append(
                        (
                            fid,
                            f"Cannot access stream of {stream.table_id}. Please ensure the role can "
                            "perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams "
                            "Actions on your stream in IAM.",
                        )
                    )
                on_failure = stream.on_failure_queue_id
                if on_failure and self.decide(caller, [("sqs:SendMessage", template.queues[on_failure].arn)]):
                    problems.append(
                        (
                            fid,
                            _NO_SQS_PERMISSION.format(action="SendMessage"),
                        )
                    )
            for sqs in spec.sqs_sources:
                arn = template.queues[sqs.queue_id].arn
                for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
                    if self.decide(caller, [(f"sqs:{action}", arn)]):
                        problems.append(
                            (
                                fid,
                                _NO_SQS_PERMISSION.format(action=action),
                            )
                        )
                        break
        return problems

    # ---- @connections ------------------------------------------------------------------------

    def connections_denial(
        self, authorization: str | None, api_id: str, stage: str, method: str, connection_id: str
    ) -> Denial | None:
        caller = self.caller(authorization)
        if caller is None:
            return None
        arn = (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:"
            f"{api_id}/{stage}/{method}/@connections/{connection_id}"
        )
        return self.decide(caller, [("execute-api:ManageConnections", arn)])

    # ---- AWS API requests ----------------------------------------------------------------------

    def request_checks(
        self, target: str, form: Mapping[str, str], params: Mapping[str, Any]
    ) -> list[tuple[str, str]]:
        """(action, resource ARN) pairs one request needs; [] for calls the emulator does not check."""
        prefix, _, operation = target.rpartition(".")
        service = _TARGETS.get(prefix)
        if not target:  # query protocol (SQS from older SDKs)
            service, operation, params = "sqs", form.get("Action", ""), form
        if service == "dynamodb":
            return self._dynamodb(operation, params)
        if service == "sqs":
            return self._sqs(operation, params)
        if service == "ssm":
            return self._ssm(operation, params)
        if service == "events":
            return self._events(operation, params)
        return []

    def _table_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"

    def _dynamodb(self, op: str, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        action = f"dynamodb:{op}"
        if op in ("BatchGetItem", "BatchWriteItem"):
            return [(action, self._table_arn(t)) for t in p.get("RequestItems") or {}]
        if op in ("TransactWriteItems", "TransactGetItems"):
            return self._transaction(p)
        if op in ("DescribeStream", "GetShardIterator", "GetRecords", "ListStreams"):
            return [(action, self._stream_resource(op, p))]
        if op in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
            return [(action, "*")]
        table = p.get("TableName")
        if not table:
            return []
        arn = self._table_arn(str(table))
        if op in ("Query", "Scan") and p.get("IndexName"):
            arn = f"{arn}/index/{p['IndexName']}"
        return [(action, arn)]

    def _transaction(self, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        """A transaction is authorized as the item actions it performs, on each item's table."""
        checks = []
        for item in p.get("TransactItems") or []:
            for kind, body in item.items():
                action = "GetItem" if kind == "Get" else _TRANSACT_WRITE.get(kind)
                if action and isinstance(body, dict):
                    checks.append((f"dynamodb:{action}", self._table_arn(str(body.get("TableName", "")))))
        return checks

    def _stream_resource(self, op: str, p: Mapping[str, Any]) -> str:
        if op == "GetRecords":
            # moto's iterators start with the stream ARN; AWS authorizes GetRecords on the stream.
            return str(p.get("ShardIterator", "")).split("|", 1)[0]
        if op == "ListStreams":
            table = p.get("TableName")
            return f"{self._table_arn(str(table))}/stream/*" if table else "*"
        return str(p.get("StreamArn", ""))

    def _queue_arn(self, url_or_name: str) -> str:
        name = unquote(urlsplit(url_or_name).path.rstrip("/").rsplit("/", 1)[-1]) or url_or_name
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def _sqs(self, op: str, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        action = f"sqs:{_SQS_ACTIONS.get(op, op)}"
        if op == "ListQueues":
            return [(action, "*")]
        if op in ("GetQueueUrl", "CreateQueue"):
            return [(action, self._queue_arn(str(p.get("QueueName", ""))))]
        url = p.get("QueueUrl")
        return [(action, self._queue_arn(str(url)))] if url else []

    def _parameter_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:ssm:{self.region}:{self.account_id}:parameter/{name.lstrip('/')}"

    def _ssm(self, op: str, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        action = f"ssm:{op}"
        if op == "GetParameters":
            return [(action, self._parameter_arn(str(n))) for n in p.get("Names") or []]
        if op == "GetParametersByPath":
            return [(action, self._parameter_arn(str(p.get("Path", ""))))]
        if op == "DescribeParameters":
            return [(action, "*")]
        name = p.get("Name")
        return [(action, self._parameter_arn(str(name)))] if name else []

    def _events(self, op: str, p: Mapping[str, Any]) -> list[tuple[str, str]]:
        """PutEvents is authorized on each bus its entries name (the default bus when none)."""
        if op != "PutEvents":
            return []  # the emulator checks EventBridge's data plane only
        buses = {bus_name(e.get("EventBusName")) for e in p.get("Entries") or [] if isinstance(e, dict)}
        return [
            ("events:PutEvents", f"arn:aws:events:{self.region}:{self.account_id}:event-bus/{name}")
            for name in sorted(buses)
        ]

    # ---- the Lambda Invoke API ---------------------------------------------------------------

    def invoke_denial(self, authorization: str | None, function_arn: str) -> Denial | None:
        """lambda:InvokeFunction for a function's own call (its role); other callers are not checked."""
        caller = self.caller(authorization)
        if caller is None:
            return None
        return self.decide(caller, [("lambda:InvokeFunction", function_arn)])


def iam_gate(app: Any, iam: Iam) -> Any:
    """WSGI middleware in front of moto: a function's call its role does not allow is refused like AWS."""

    def gate(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        caller = iam.caller(environ.get("HTTP_AUTHORIZATION"))
        if caller is None or not iam.enforce:
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        params: Any = {}
        form: dict[str, str] = {}
        if target:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
        else:
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
        checks = iam.request_checks(target, form, params if isinstance(params, dict) else {})
        denial = iam.decide(caller, checks)
        if denial is None:
            return app(environ, start_response)
        return _denied(start_response, denial, query_protocol=not target)

    return gate


def _denied(start_response: Callable[..., Any], denial: Denial, *, query_protocol: bool) -> list[bytes]:
    service = denial.action.split(":", 1)[0]
    if query_protocol:
        body = (
            '<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>'
            f"<Message>{_xml_escape(denial.message)}</Message></Error><RequestId>ws-emulator</RequestId>"
            "</ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
        status = "403 Forbidden"
    else:
        # DynamoDB and SSM answer 400 with the type in __type; SQS's JSON protocol adds its query code.
        # (SQS 403); DynamoDB spells its message key "Message".
        document = {"__type": "com.amazon.coral.service#AccessDeniedException"}
        document["Message" if service == "dynamodb" else "message"] = denial.message
        headers = [("Content-Type", "application/x-amz-json-1.0")]
        status = "400 Bad Request"
        if service == "sqs":
            headers.append(("x-amzn-query-error", "AccessDenied;Sender"))
            status = "403 Forbidden"
        body = json.dumps(document).encode()
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
