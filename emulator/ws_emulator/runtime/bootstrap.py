"""One Lambda execution environment per OS process, driven by runtime/pool.py over JSON lines."""

# Run as `python -I -u bootstrap.py`. The first stdin line initialises the environment (os.environ, cwd,
# sys.path, handler import = the cold start); every later line is one invocation. Replies go to the
# original stdout; the handler's own stdout and stderr both go to stderr, which the emulator logs.
# This file must import nothing from ws_emulator: the handler's sys.path does not contain it.

from __future__ import annotations

import decimal
import importlib
import json
import logging
import math
import os
import secrets
import sys
import time
import traceback
from typing import IO, Any


class LambdaContext:
    """The context object of the AWS Python runtime (awslambdaric), same attribute names and types."""

    def __init__(self, request_id: str, deadline_ms: int, meta: dict[str, Any]) -> None:
        self.aws_request_id = request_id
        self.function_name: str = meta["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn: str = meta["function_arn"]
        # awslambdaric reads this from the environment, so it is a string there too.
        self.memory_limit_in_mb = str(meta["memory_mb"])
        self.log_group_name: str = meta["log_group_name"]
        self.log_stream_name: str = meta["log_stream_name"]
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(aws_request_id={self.aws_request_id!r}, function_name={self.function_name!r})"


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


def _log_error(err: dict[str, Any]) -> None:
    # Same shape as the AWS runtime's log line, so the emulator log reads like CloudWatch.
    print(f"[ERROR] {err['errorType']}: {err['errorMessage']}", file=sys.stderr)
    if err.get("stackTrace"):
        print("Traceback (most recent call last):\n" + "".join(err["stackTrace"]).rstrip(), file=sys.stderr)


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_REQUEST_ID = _RequestIdFilter()


def _root_logging() -> None:
    # The AWS runtime gives the root logger this handler and format (UTC times, request id).
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_REQUEST_ID)
    logging.getLogger().addHandler(handler)


def _init(msg: dict[str, Any]) -> Any:
    os.environ.clear()
    os.environ.update(msg["env"])
    if hasattr(time, "tzset"):
        time.tzset()
    _root_logging()
    os.chdir(msg["code_dir"])
    # Lambda's order: the function's code, then layers, then the runtime's own packages.
    sys.path[:] = [msg["code_dir"], *msg["layer_dirs"], *sys.path]
    module_name, _, attr = msg["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        err = _error(exc, "Runtime.ImportModuleError")
        err["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        raise _InitError(err) from exc
    except SyntaxError as exc:
        raise _InitError(_error(exc, "Runtime.UserCodeSyntaxError")) from exc
    except Exception as exc:  # module-level code failing is an init error of its own type
        raise _InitError(_error(exc)) from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise _InitError(
            {
                "errorMessage": f"Handler '{attr}' missing on module '{module_name}'",
                "errorType": "Runtime.HandlerNotFound",
                "stackTrace": [],
            }
        )
    return handler


class _InitError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


def _invoke(handler: Any, msg: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    request_id = msg["request_id"]
    os.environ["_X_AMZN_TRACE_ID"] = (
        f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
    )
    context = LambdaContext(request_id, msg["deadline_ms"], meta)
    _REQUEST_ID.request_id = request_id
    try:
        result = handler(msg["event"], context)
    except Exception as exc:
        err = _error(exc)
        err["requestId"] = request_id
        _log_error(err)
        return {"type": "result", "ok": False, "error": err}
    try:
        payload = json.loads(json.dumps(result, default=_lambda_default))
    except (TypeError, ValueError) as exc:
        err = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}
        err["requestId"] = request_id
        err["stackTrace"] = []
        _log_error(err)
        return {"type": "result", "ok": False, "error": err}
    return {"type": "result", "ok": True, "payload": payload}


def _lambda_default(value: Any) -> Any:
    # The AWS runtime writes Decimals (what boto3 returns for DynamoDB numbers) as JSON numbers.
    if isinstance(value, decimal.Decimal):
        if value.is_nan():
            return math.nan
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _send(out: IO[bytes], msg: dict[str, Any]) -> None:
    out.write(json.dumps(msg).encode() + b"\n")
    out.flush()


def main() -> None:
    # Keep both protocol channels private: handler prints become logs, handler stdin reads see EOF.
    proto = os.fdopen(os.dup(1), "wb")
    requests = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    first = requests.readline()
    if not first:
        return
    init = json.loads(first)
    meta = init["meta"]
    try:
        handler = _init(init)
    except _InitError as exc:
        _log_error(exc.error)
        _send(proto, {"type": "init_error", "error": exc.error})
        return
    _send(proto, {"type": "ready"})
    for line in requests:
        _send(proto, _invoke(handler, json.loads(line), meta))


if __name__ == "__main__":
    main()
