"""One record per function invocation, read from the event and the result alone (pure, no I/O).

The recorder sits on the runtime's invoke path, below the gateway and the event sources, so it sees
only `(function, event, result)`: what triggered the call (a WebSocket route, the `$connect`
authorizer, a DynamoDB stream, an SQS queue, a schedule) is read from the event's shape, as Lambda's
own event models tell them apart. Event and response bodies are kept truncated, with every token,
`Authorization` header and secret-looking value replaced, so neither the event line, the dashboard
nor its JSON feed can leak one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

BODY_LIMIT_CHARS = 2000
SHOWN_RECORDS = 3  # a batch's event keeps its first records: the rest would be cut anyway, at a cost
REDACTED = "***"
# Keys whose values are credentials wherever they appear (headers, query strings, contexts).
_SECRET_KEY = re.compile(r"token|authorization|secret|password|api[-_]?key|cookie|signature", re.IGNORECASE)
# A JWT anywhere in a string (a frame body, an error message): header.payload.signature, base64url.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# `token=...` inside a raw query string or URL.
_QUERY_SECRET = re.compile(r"((?:token|authorization|secret|password|api[-_]?key)=)[^&\s\"']*", re.IGNORECASE)

TRIGGER_ROUTE = "route"
TRIGGER_AUTHORIZER = "authorizer"
TRIGGER_DYNAMODB = "dynamodb"
TRIGGER_SQS = "sqs"
TRIGGER_SCHEDULE = "schedule"
TRIGGER_DIRECT = "invoke"


class ResultLike(Protocol):
    """The fields of the runtime's InvokeResult the recorder reads."""

    @property
    def ok(self) -> bool: ...
    @property
    def payload(self) -> Any: ...
    @property
    def error(self) -> dict[str, Any] | None: ...
    @property
    def duration_ms(self) -> float: ...
    @property
    def cold_start(self) -> bool: ...
    @property
    def init_ms(self) -> float: ...
    @property
    def request_id(self) -> str: ...


@dataclass(frozen=True)
class InvocationRecord:
    """What one invocation did, as the event line, the JSON log and the dashboard show it."""

    seq: int
    ts_ms: int
    function: str  # the template's logical id
    function_name: str
    trigger: str  # route, authorizer, dynamodb, sqs, schedule, invoke
    source: str  # route key, table, queue or rule name
    status: str  # HTTP-like for routes ("200", "500", "Allow", "401"), OK / Error for batches
    ok: bool
    duration_ms: float
    cold_start: bool
    init_ms: float
    request_id: str
    connection_id: str | None = None
    batch_size: int | None = None
    failures: int | None = None
    lag_ms: float | None = None  # age of the oldest record at invocation (streams and queues)
    error_type: str | None = None
    error_message: str | None = None
    event: str = ""
    response: str = ""

    def summary(self) -> dict[str, Any]:
        """The record without its bodies: one `--log-format json` line, one row of the feed."""
        data = asdict(self)
        del data["event"], data["response"]
        return {k: v for k, v in data.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def redact(value: Any) -> Any:
    """A copy of `value` with credentials replaced by `***` (by key, and JWTs or `token=` anywhere)."""
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY.search(k) and v not in (None, "")
                else redact(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    return _QUERY_SECRET.sub(rf"\1{REDACTED}", _JWT.sub(REDACTED, text))


def truncated_json(value: Any, limit: int = BODY_LIMIT_CHARS) -> str:
    """Redacted JSON of `value`, cut to `limit` characters with the full size said at the end."""
    if value is None:
        return ""
    text = json.dumps(redact(value), default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def classify(event: Any) -> tuple[str, str, str | None]:
    """(trigger, source, connection id) of a Lambda event, read from its shape."""
    if not isinstance(event, Mapping):
        return TRIGGER_DIRECT, "-", None
    context = event.get("requestContext")
    context = context if isinstance(context, Mapping) else {}
    connection_id = context.get("connectionId")
    if event.get("type") == "REQUEST" and "methodArn" in event:
        return TRIGGER_AUTHORIZER, str(context.get("routeKey") or "$connect"), connection_id
    if context.get("routeKey") and connection_id:
        return TRIGGER_ROUTE, str(context["routeKey"]), str(connection_id)
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], Mapping):
        batch = _batch_source(records[0])
        if batch is not None:
            return batch[0], batch[1], None
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        resources = event.get("resources")
        rule = (
            str(resources[0]).rsplit("/", 1)[-1] if isinstance(resources, list) and resources else "schedule"
        )
        return TRIGGER_SCHEDULE, rule, None
    return TRIGGER_DIRECT, "-", None


def _batch_source(first: Mapping[str, Any]) -> tuple[str, str] | None:
    origin = first.get("eventSource")
    arn = str(first.get("eventSourceARN") or "")
    if origin == "aws:dynamodb":
        # arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
        parts = arn.split("/")
        return TRIGGER_DYNAMODB, parts[1] if len(parts) > 1 else arn or "stream"
    if origin == "aws:sqs":
        return TRIGGER_SQS, arn.rsplit(":", 1)[-1] or "queue"
    return None


def _oldest_age_ms(event: Mapping[str, Any], trigger: str, now_ms: int) -> float | None:
    """Stream lag: how old the oldest record of the batch was when the function got it."""
    born: list[float] = []
    for record in event.get("Records") or []:
        if not isinstance(record, Mapping):
            continue
        if trigger == TRIGGER_DYNAMODB:
            created = (record.get("dynamodb") or {}).get("ApproximateCreationDateTime")
            if isinstance(created, int | float):
                born.append(float(created) * 1000)  # epoch seconds, as Lambda delivers it
        elif trigger == TRIGGER_SQS:
            sent = (record.get("attributes") or {}).get("SentTimestamp")
            if isinstance(sent, str | int) and str(sent).isdigit():
                born.append(float(sent))  # epoch milliseconds
    return max(0.0, now_ms - min(born)) if born else None


def _route_status(trigger: str, result: ResultLike) -> str:
    if trigger == TRIGGER_AUTHORIZER:
        if not result.ok:
            message = (result.error or {}).get("errorMessage")
            return "401" if message == "Unauthorized" else "500"
        statements = ((result.payload or {}).get("policyDocument") or {}).get("Statement") or []
        effects = {str(s.get("Effect")) for s in statements if isinstance(s, Mapping)}
        return "Allow" if effects == {"Allow"} else "403"
    if not result.ok:
        return "500"
    payload = result.payload
    if isinstance(payload, Mapping) and "statusCode" in payload:
        try:
            return str(int(payload["statusCode"]))
        except (TypeError, ValueError):
            return "500"
    return "200"


def _batch_failures(result: ResultLike, size: int) -> int:
    if not result.ok:
        return size
    payload = result.payload
    if isinstance(payload, Mapping) and isinstance(payload.get("batchItemFailures"), list):
        return len(payload["batchItemFailures"])
    return 0


def build_record(
    seq: int,
    function: str,
    function_name: str,
    event: Any,
    result: ResultLike,
    *,
    now_ms: int,
    fallback: tuple[str, str] | None = None,
) -> InvocationRecord:
    """The record of one finished invocation.

    `fallback` is (trigger, source) for an event whose shape says nothing: a schedule with a constant
    `Input` delivers that input as the whole event, so only the template knows it came from a schedule.
    """
    trigger, source, connection_id = classify(event)
    if trigger == TRIGGER_DIRECT and fallback is not None:
        trigger, source = fallback
    batch_size = failures = None
    lag_ms = None
    if trigger in (TRIGGER_ROUTE, TRIGGER_AUTHORIZER):
        status = _route_status(trigger, result)
        ok = result.ok and (status == "Allow" or (status.isdigit() and int(status) < 400))
    else:
        records = event.get("Records") if isinstance(event, Mapping) else None
        if isinstance(records, list):
            batch_size = len(records)
            failures = _batch_failures(result, batch_size)
            lag_ms = _oldest_age_ms(event, trigger, now_ms)
        ok = result.ok and not failures
        status = "OK" if ok else ("Error" if not result.ok else "Partial")
    error = result.error or {}
    return InvocationRecord(
        seq=seq,
        ts_ms=now_ms,
        function=function,
        function_name=function_name,
        trigger=trigger,
        source=source,
        status=status,
        ok=ok,
        duration_ms=round(result.duration_ms, 2),
        cold_start=bool(getattr(result, "cold_start", False)),
        init_ms=round(float(getattr(result, "init_ms", 0.0)), 2),
        request_id=str(getattr(result, "request_id", "")),
        connection_id=connection_id,
        batch_size=batch_size,
        failures=failures,
        lag_ms=round(lag_ms, 1) if lag_ms is not None else None,
        error_type=str(error["errorType"]) if error.get("errorType") else None,
        error_message=redact_text(str(error["errorMessage"]))[:500] if error.get("errorMessage") else None,
        event=truncated_json(_abridged(event)),
        response=truncated_json(result.payload if result.ok else result.error),
    )


def _abridged(event: Any) -> Any:
    """The event with a long batch cut to its first records (redacting 10,000 records is not free)."""
    if not isinstance(event, Mapping):
        return event
    records = event.get("Records")
    if not isinstance(records, list) or len(records) <= SHOWN_RECORDS:
        return event
    more = f"… {len(records) - SHOWN_RECORDS} more records"
    return {**event, "Records": [*records[:SHOWN_RECORDS], more]}


def text_line(record: InvocationRecord) -> str:
    """The default event line: route or source, connection, function, status, duration, notes."""
    where = (
        record.source
        if record.trigger in (TRIGGER_ROUTE, TRIGGER_AUTHORIZER)
        else f"{record.trigger}:{record.source}"
    )
    if record.trigger == TRIGGER_AUTHORIZER:
        where = "authorizer"
    notes: list[str] = []
    if record.batch_size is not None:
        notes.append(f"batch {record.batch_size}")
        if record.failures:
            notes.append(f"{record.failures} failed")
    if record.lag_ms is not None:
        notes.append(f"lag {record.lag_ms:.0f} ms")
    if record.cold_start:
        notes.append(f"cold start, init {record.init_ms:.0f} ms")
    if record.error_type:
        notes.append(record.error_type)
    connection = (record.connection_id or "-")[:8]
    line = (
        f"{where:<12} {connection:<8} {record.function:<24} {record.status:<5} {record.duration_ms:7.1f} ms"
    )
    return line + (f"  {', '.join(notes)}" if notes else "")


def json_line(record: InvocationRecord) -> str:
    """One `--log-format json` line: the record's summary, keys sorted, no bodies."""
    return json.dumps({"type": "invocation", **record.summary()}, sort_keys=True, separators=(",", ":"))
