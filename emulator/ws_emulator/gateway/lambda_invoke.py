"""The Lambda Invoke API for the template's functions, as `sam local start-lambda` serves it.

`POST /2015-03-31/functions/{name}/invocations` on the management port runs the function through the
same worker pool as routes and event sources, so boto3's `lambda` client with `endpoint_url` at the
emulator invokes a function as it would on AWS. The function is named by its name, its ARN (full or
partial) or its logical id; only `$LATEST` exists. What is served: RequestResponse (the payload, with
`X-Amz-Function-Error: Unhandled` when the function failed), Event (202, run in the background) and
DryRun (204); the 6 MB (sync) and 1 MB (async) request limits. Not served: `LogType: Tail` (no
`X-Amz-Log-Result`), versions and aliases, resource-based policies.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

from ws_emulator.gateway.events import new_id
from ws_emulator.gateway.http11 import HttpRequest, HttpResponse
from ws_emulator.gateway.management import LAMBDA_PREFIX, aws_error
from ws_emulator.template.specs import FunctionSpec, Template

_INVOKE_PATH = re.compile(rf"^{LAMBDA_PREFIX}(?P<name>[^/]+)/invocations/?$")
SYNC_LIMIT_BYTES = 6 * 1024 * 1024
ASYNC_LIMIT_BYTES = 1024 * 1024
_ARN = re.compile(
    r"^(?:arn:aws[\w-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?(?:function:)?(?P<name>[A-Za-z0-9_-]+)(?::(?P<q>[^:]+))?$"
)


class ResultLike(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def payload(self) -> Any: ...
    @property
    def error(self) -> dict[str, Any] | None: ...
    @property
    def request_id(self) -> str: ...


@dataclass(frozen=True)
class Target:
    function_id: str
    arn: str


def resolve(template: Template, raw: str, qualifier: str | None) -> tuple[Target | None, str]:
    """The function a name, ARN or logical id names (None if none), and the ARN to name in errors."""
    match = _ARN.match(raw)
    name = match.group("name") if match else raw
    qualifier = qualifier or (match.group("q") if match else None)
    spec: FunctionSpec | None = next(
        (f for f in template.functions.values() if name in (f.name, f.logical_id)), None
    )
    base = spec.arn if spec is not None and spec.arn else _arn(template, name)
    shown = f"{base}:{qualifier}" if qualifier else base
    if spec is None or qualifier not in (None, "$LATEST"):
        return None, shown
    return Target(spec.logical_id, base), shown


def _arn(template: Template, name: str) -> str:
    return f"arn:aws:lambda:{template.region}:{template.account_id}:function:{name}"


class LambdaInvokeApi:
    """Answers the Invoke API; `invoke` runs a function (the runtime), `authorize` is IAM's say."""

    def __init__(
        self,
        template: Callable[[], Template | None],
        invoke: Callable[[str, Any], Coroutine[Any, Any, ResultLike]],
        *,
        authorize: Callable[[str | None, str], str | None] | None = None,
    ) -> None:
        self._template = template
        self._invoke = invoke
        self._authorize = authorize
        self._background: set[asyncio.Task[Any]] = set()

    async def handle(self, request: HttpRequest) -> HttpResponse:
        checked = self._check(request)
        if isinstance(checked, HttpResponse):
            return checked
        target, kind, event = checked
        if kind == "DryRun":
            return HttpResponse(204, b"", [("x-amzn-RequestId", new_id())])
        if kind == "Event":
            task = asyncio.create_task(self._invoke(target.function_id, event))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return HttpResponse(202, b"", [("x-amzn-RequestId", new_id())])
        return _answer(await self._invoke(target.function_id, event))

    def _check(self, request: HttpRequest) -> HttpResponse | tuple[Target, str, Any]:  # noqa: PLR0911
        """The function, the invocation type and the event; or the error AWS answers (one per check)."""
        match = _INVOKE_PATH.match(request.path)
        template = self._template()
        if match is None or template is None:
            return aws_error(404, "ResourceNotFoundException", f"no Lambda API operation at {request.path}")
        if request.method != "POST":
            return aws_error(405, "MethodNotAllowedException", f"{request.method} is not Invoke")
        target, shown = resolve(template, unquote(match.group("name")), dict(request.query).get("Qualifier"))
        if target is None:
            return aws_error(404, "ResourceNotFoundException", f"Function not found: {shown}")
        if self._authorize is not None:
            denial = self._authorize(request.headers.get("authorization"), target.arn)
            if denial is not None:
                return aws_error(403, "AccessDeniedException", denial)
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return aws_error(400, "InvalidParameterValueException", f"Unsupported InvocationType: {kind}")
        limit = ASYNC_LIMIT_BYTES if kind == "Event" else SYNC_LIMIT_BYTES
        if len(request.body) > limit:
            return aws_error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            )
        try:
            event = json.loads(request.body) if request.body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            why = f"Could not parse request body into json: {exc}"
            return aws_error(400, "InvalidRequestContentException", why)
        return target, kind, event

    async def drain(self) -> None:
        """Wait for Event invocations still running (shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _answer(result: ResultLike) -> HttpResponse:
    """A RequestResponse invocation's answer: the payload, or Lambda's error document when it failed."""
    headers = [
        ("Content-Type", "application/json"),
        ("X-Amz-Executed-Version", "$LATEST"),
        ("x-amzn-RequestId", result.request_id),
    ]
    if result.ok:
        return HttpResponse(200, json.dumps(result.payload).encode(), headers)
    error = dict(result.error or {})
    body = {
        "errorMessage": error.get("errorMessage", ""),
        "errorType": error.get("errorType", "Unhandled"),
        "stackTrace": error.get("stackTrace", []),
    }
    return HttpResponse(200, json.dumps(body).encode(), [*headers, ("X-Amz-Function-Error", "Unhandled")])
