"""Local AWS services: an embedded moto server (or external endpoints) and resource provisioning."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ws_emulator.aws import browser_guard, moto_fixes
from ws_emulator.aws.dynamodb_locks import OWN_USER_AGENT, DynamoDBLocks
from ws_emulator.aws.eventbridge import PutEventsLog, record_put_events
from ws_emulator.aws.iam import Iam, iam_gate
from ws_emulator.aws.writes import WRITE_OPERATIONS, TableWrites, written_tables
from ws_emulator.faults import Faults
from ws_emulator.template.specs import DEFAULT_ACCOUNT_ID, QueueSpec, Template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_LOCALSTACK = "localstack"


def localstack_endpoint() -> str:
    """LocalStack's URL as localstack-client 2.x finds it from the environment.

    `AWS_ENDPOINT_URL` if set, else `LOCALSTACK_HOST` as host[:port] (default localhost:4566), with
    https when `USE_SSL` is 1/true. `EDGE_PORT` is no longer read (localstack-client 2.0 removed it).
    """
    from localstack_client.config import get_service_endpoint

    endpoint = get_service_endpoint("edge")
    if not endpoint:  # pragma: no cover - the library knows "edge" in every 2.x release
        raise RuntimeError("localstack-client returned no endpoint")
    return str(endpoint)


class LocalAws:
    """Embedded ThreadedMotoServer on 127.0.0.1:<free port> by default, or external endpoints.

    `endpoint` sends every service to one URL (e.g. LocalStack; the value "localstack" resolves
    it like localstack-client). `dynamodb_endpoint` sends only DynamoDB and DynamoDB Streams there;
    the other services still use the embedded moto server.
    """

    def __init__(
        self,
        *,
        dynamodb_endpoint: str | None = None,
        endpoint: str | None = None,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        faults: Faults | None = None,
        log: logging.Logger | None = None,
        iam: Iam | None = None,
    ) -> None:
        self.region = region
        self.credentials = dict(FAKE_CREDENTIALS)
        if endpoint is not None or dynamodb_endpoint is not None:
            # LocalStack takes a 12-digit access key as the account id; this keeps its ARNs equal to
            # the template's (moto ignores the key). The embedded server keeps the usual "testing".
            self.credentials["AWS_ACCESS_KEY_ID"] = account_id
        self._external = localstack_endpoint() if endpoint == _LOCALSTACK else endpoint
        self._dynamodb_endpoint = dynamodb_endpoint
        self._server: Any = None
        self._log = log or logging.getLogger("ws_emulator.aws")
        self.endpoint_url = self._external or ""
        self.provisioned_queue_urls: dict[str, str] = {}
        self._clients: dict[tuple[str, int], Any] = {}
        self._clients_lock = threading.Lock()
        # Asked for each data-plane DynamoDB request of a function whether to answer it with a
        # throttling error (the embedded server only, never the emulator's own requests).
        self.faults = faults or Faults()
        # One lock per table for the embedded DynamoDB (False: one lock for all, as before; benchmarks).
        self.per_table_locks = True
        # Fired after each write the embedded server answers: stream pollers wait on it, not a timer.
        self.writes = TableWrites()
        # Checks each function's calls against its role (the embedded server only).
        self.iam = iam
        # Every PutEvents entry the embedded server accepted (GET /_emulator/events).
        self.events = PutEventsLog()

    @property
    def embedded(self) -> bool:
        return self._external is None

    @property
    def dynamodb_endpoint_url(self) -> str:
        return self._dynamodb_endpoint or self.endpoint_url

    def start(self) -> None:
        if self._external is not None:
            return
        from moto.server import ThreadedMotoServer

        moto_fixes.apply()
        browser_guard.disable_global_cors()

        # werkzeug logs every request at INFO; the emulator's log is for the app, not for moto.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        wsgi = self._server._server  # the only way to reach moto's WSGI app
        if wsgi is not None:
            # The shared Faults object changes in place when /_emulator/faults is PUT.
            wsgi.app = _serialize_dynamodb(wsgi.app, self.faults, per_table=self.per_table_locks)
            wsgi.app = record_put_events(wsgi.app, self.events)
            if self.iam is not None:
                wsgi.app = iam_gate(wsgi.app, self.iam)
            wsgi.app = _notify_writes(wsgi.app, self.writes)
            # Outermost: a browser page's request (or a rebinding Host) never reaches moto.
            wsgi.app = browser_guard.refuse_browsers(wsgi.app)
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._log.info("embedded moto server on %s", self.endpoint_url)

    def stop(self) -> None:
        self._clients.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def function_env(self) -> dict[str, str]:
        """What every function gets so a plain boto3 client reaches the local services."""
        env = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # Without this botocore builds account-specific DynamoDB hosts that moto does not serve.
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            **self.credentials,
        }
        if self._dynamodb_endpoint and self._dynamodb_endpoint != self.endpoint_url:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self._dynamodb_endpoint
            env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = self._dynamodb_endpoint
        return env

    def client(self, service: str, *, max_pool_connections: int = 20) -> Any:
        """A boto3 client for the emulator's own use (shared: clients are thread-safe, and slow to build).

        It never reads the process environment, so the emulator's own AWS settings cannot leak in.
        """
        if not self.endpoint_url:
            raise RuntimeError("LocalAws.start() has not been called")
        key = (service, max_pool_connections)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(service, max_pool_connections)
            return self._clients[key]

    def _new_client(self, service: str, max_pool_connections: int) -> Any:
        url = self.dynamodb_endpoint_url if service in ("dynamodb", "dynamodbstreams") else self.endpoint_url
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=url,
            region_name=self.region,
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.credentials["AWS_SESSION_TOKEN"],
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=max_pool_connections,
                account_id_endpoint_mode="disabled",
                user_agent_extra=OWN_USER_AGENT,
            ),
        )

    # -- provisioning -----------------------------------------------------------------------------
    def provision(self, template: Template, ssm_parameters: Mapping[str, str] | None = None) -> None:
        """Create tables (+TTL), queues (DLQs first), event buses and SecureString parameters; safe
        to repeat."""
        ddb = self.client("dynamodb")
        for table in template.tables.values():
            try:
                ddb.create_table(**table.create_args)
                self._log.info("created table %s (%s)", table.name, table.logical_id)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceInUseException":
                    raise
            ddb.get_waiter("table_exists").wait(
                TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
            if table.ttl_attribute:
                self._enable_ttl(ddb, table.name, table.ttl_attribute)
        sqs = self.client("sqs")
        for queue in _dlqs_first(template.queues):
            attributes = dict(queue.attributes)
            try:
                url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                    raise
                # An existing queue with other attributes: bring it in line with the template.
                url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
                settable = {k: v for k, v in attributes.items() if k not in ("FifoQueue",)}
                if settable:
                    sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
            self.provisioned_queue_urls[queue.logical_id] = url
            self._log.info("queue %s (%s)", queue.name, queue.logical_id)
        self._provision_event_buses(template)
        if ssm_parameters:
            ssm = self.client("ssm")
            for name, value in ssm_parameters.items():
                ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
                self._log.info("SSM SecureString parameter %s", name)

    def _provision_event_buses(self, template: Template) -> None:
        if not template.event_buses:
            return
        events = self.client("events")
        for bus in template.event_buses.values():
            try:
                events.create_event_bus(Name=bus.name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            self._log.info("event bus %s (%s)", bus.name, bus.logical_id)

    def _enable_ttl(self, ddb: Any, table: str, attribute: str) -> None:
        try:
            ddb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )
        except ClientError as exc:
            # Enabling TTL twice is a ValidationException ("TimeToLive is already enabled").
            if exc.response["Error"]["Code"] != "ValidationException":
                raise

    def queue_url(self, template: Template, queue_id: str) -> str:
        """The URL the configured endpoint uses for a template queue."""
        if queue_id in self.provisioned_queue_urls:
            return self.provisioned_queue_urls[queue_id]
        url: str = self.client("sqs").get_queue_url(QueueName=template.queues[queue_id].name)["QueueUrl"]
        self.provisioned_queue_urls[queue_id] = url
        return url

    def stream_arn(self, template: Template, table_id: str) -> str:
        """The table's real latest stream ARN (its label is only known once the table exists)."""
        desc = self.client("dynamodb").describe_table(TableName=template.tables[table_id].name)["Table"]
        arn = desc.get("LatestStreamArn")
        if not arn:
            raise RuntimeError(f"table {table_id} has no stream")
        return str(arn)


def _serialize_dynamodb(
    app: Any, faults: Faults | Callable[[], bool], *, per_table: bool = True
) -> DynamoDBLocks:
    """moto's app with DynamoDB requests locked per table (`aws.dynamodb_locks`) and faults injected.

    A plain callable instead of a Faults object only decides the throttling (as this function once took).
    """
    if not isinstance(faults, Faults):
        throttle = faults
        faults = Faults()
        faults.throttle_dynamodb = throttle  # type: ignore[method-assign]
    return DynamoDBLocks(app, faults, per_table=per_table)


def _notify_writes(app: Any, writes: TableWrites) -> Any:
    """After a DynamoDB write is answered (its stream record exists by then), wake its table's pollers."""

    def notifying(environ: dict[str, Any], start_response: Any) -> Any:
        service, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
        if not service.startswith("DynamoDB_") or operation not in WRITE_OPERATIONS:
            return app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        response = list(app(environ, start_response))
        writes.notify(written_tables(operation, body))
        return response

    return notifying


def _dlqs_first(queues: Mapping[str, QueueSpec]) -> list[QueueSpec]:
    # A RedrivePolicy names its DLQ by ARN, and SQS checks that the DLQ exists.
    ordered: list[QueueSpec] = []
    seen: set[str] = set()

    def visit(qid: str, depth: int = 0) -> None:
        if qid in seen or depth > len(queues):
            return
        dlq = queues[qid].dead_letter_queue_id
        if dlq and dlq in queues:
            visit(dlq, depth + 1)
        seen.add(qid)
        ordered.append(queues[qid])

    for qid in queues:
        visit(qid)
    return ordered
