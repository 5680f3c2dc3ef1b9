"""The emulator's view of a loaded template: one frozen spec per function, table, queue and WebSocket API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
class RoleSpec:
    """A function's execution role: its name and every statement of its policies, as one document."""

    logical_id: str
    name: str
    arn: str
    policy: str  # JSON policy document (normalized for moto's evaluator)


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
    # None: the role is not defined in the template, so the function's AWS calls are not checked.
    role: RoleSpec | None = None


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
class EventBusSpec:
    """A custom EventBridge bus: created in the local AWS, its PutEvents entries recorded."""

    logical_id: str
    name: str
    arn: str


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
    event_buses: dict[str, EventBusSpec] = field(default_factory=dict)
