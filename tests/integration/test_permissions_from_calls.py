"""Each function's IAM grants, derived from the AWS calls its code path really makes.

Every handler runs against moto with the production wiring (real store, real SQS presence timers, the
real `@connections` client, the real SSM secret lookup), through a session that takes every path a
permission exists for: the authorizer, each route, the fan-out meeting a gone connection, the presence
timer, the sweeper closing a stale connection. A botocore hook records each call as the IAM action and
resource AWS would check (and answers `@connections` itself, since moto's always succeeds). What Lambda
itself does for a function (read its streams, poll its queue, send to its on-failure destination) is
derived from the function's event sources in template.yaml. The template must grant exactly the union:
a call the code makes without its grant is AccessDenied on AWS, and a grant no code uses is not least
privilege.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore import handlers as botocore_handlers

from parley import aws as parley_aws
from parley import domain_events
from parley.store import keys
from tests.support import events
from tests.support.handlers import LambdaContext, load
from tests.support.iam import CONNECTIONS, function_permissions
from tests.support.streams import StreamPump
from tests.support.template import function_stream_filters, read_template, route_functions, stream_filters
from tests.support.world import JWT_SECRET, PARLEY_ENV, MotoAws, clear_cached_clients

Need = tuple[str, str]  # (resource as test_template names it, IAM action)
DOMAIN_BUS = "parley-events"

# Inside a transaction each item is authorized as its own action; there is no TransactWriteItems action.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def iam_needs(service: str, operation: str, params: dict[str, Any]) -> set[Need]:
    """The (resource, action) pairs IAM evaluates for one SDK call."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return {
                (body["TableName"], f"dynamodb:{_TRANSACT_ACTIONS[kind]}")
                for item in params["TransactItems"]
                for kind, body in item.items()
            }
        if operation == "TransactGetItems":
            return {(item["Get"]["TableName"], "dynamodb:GetItem") for item in params["TransactItems"]}
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return {(table, f"dynamodb:{operation}") for table in params["RequestItems"]}
        table = params["TableName"]
        if "IndexName" in params:
            table = f"{table}/index/{params['IndexName']}"
        return {(table, f"dynamodb:{operation}")}
    if service == "sqs":
        action = "SendMessage" if operation == "SendMessageBatch" else operation
        queue = params["QueueUrl"].rsplit("/", 1)[1].removesuffix(".fifo")  # named after its logical id
        return {(queue, f"sqs:{action}")}
    if service == "ssm":
        assert params["Name"] == PARLEY_ENV["JWT_SECRET_PARAM"], params
        return {("ssm:JwtSecretParameterName", f"ssm:{operation}")}
    if service == "apigatewaymanagementapi":
        return {(CONNECTIONS, "execute-api:ManageConnections")}
    if service == "events":
        assert {e["EventBusName"] for e in params["Entries"]} == {DOMAIN_BUS}, params
        return {("DomainEventBus", f"events:{operation}")}
    raise AssertionError(f"an AWS call the IAM map does not know: {service}.{operation}")


class CallRecorder:
    """Attributes every SDK call to the function being invoked; answers `@connections` like AWS."""

    def __init__(self) -> None:
        self.function = ""
        self.needs: dict[str, set[Need]] = defaultdict(set)
        self.sent: list[dict[str, Any]] = []  # SQS messages, to deliver as the queue trigger would
        self.gone: set[str] = set()  # connections that answer GoneException
        self.posted: list[str] = []
        self.closed: list[str] = []
        self.wide_queue = ""  # the two-level fan-out's FIFO queue

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.function:
            return  # the test's own set-up calls
        service = model.service_model.service_name
        self.needs[self.function] |= iam_needs(service, model.name, params)
        if service == "sqs" and model.name == "SendMessage":
            self.sent.append(params)

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        if model.service_model.service_name != "apigatewaymanagementapi":
            return None
        connection_id = unquote(params["url_path"].rsplit("/", 1)[1])
        if connection_id in self.gone:
            error = {
                "Error": {"Code": "GoneException", "Message": ""},
                "ResponseMetadata": {"HTTPStatusCode": 410},
            }
            return SimpleNamespace(status_code=410, headers={}), error
        (self.posted if model.name == "PostToConnection" else self.closed).append(connection_id)
        return SimpleNamespace(status_code=200, headers={}), {"ResponseMetadata": {"HTTPStatusCode": 200}}

    @contextmanager
    def invoking(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = ""


@pytest.fixture
def recorder(moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[CallRecorder]:
    from aws_lambda_powertools.utilities.parameters import base

    providers = vars(base)["DEFAULT_PROVIDERS"]  # Powertools' cached SSM client, built afresh below

    recorder = CallRecorder()
    # Built-in handlers are registered on every botocore session created afterwards, as moto's own are:
    # Parley's clients and Powertools' SSM provider are all built after this, with the hooks in place.
    hooks: list[Any] = [
        ("before-parameter-build", recorder.before_parameter_build),
        ("before-call", recorder.before_call),
    ]
    monkeypatch.setattr(botocore_handlers, "BUILTIN_HANDLERS", [*botocore_handlers.BUILTIN_HANDLERS, *hooks])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # the next boto3.client() starts one with the hooks
    # The fast @connections client signs with botocore but sends over its own connection, out of the
    # hooks' sight; boto3's client, its fallback, makes the same ManageConnections calls where they see it.
    monkeypatch.setattr(parley_aws, "connections_client", parley_aws.management_api)
    # The two-level fan-out for channels of more than 4 subscribers (run_every_path makes one).
    wide_queue = moto_aws.sqs.create_queue(
        QueueName="WideFanoutQueue.fifo",
        Attributes={"FifoQueue": "true", "DeduplicationScope": "messageGroup"},
    )["QueueUrl"]
    for name, value in {
        "WIDE_FANOUT_QUEUE_URL": wide_queue,
        "WIDE_FANOUT_THRESHOLD": str(WIDE_THRESHOLD),
        "WIDE_FANOUT_CHUNK_SIZE": "2",
        "WIDE_FANOUT_GROUPS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    recorder.wide_queue = wide_queue
    clear_cached_clients()
    providers.clear()
    yield recorder
    clear_cached_clients()
    providers.clear()


class Session:
    """A chat session driven through the handlers, each invocation attributed to its function."""

    def __init__(self, aws: MotoAws, recorder: CallRecorder) -> None:
        self.aws, self.recorder = aws, recorder
        filters = {table: stream_filters(table) for table in ("StateTable", "MessagesTable")}
        self.streams = StreamPump(aws.client, aws.streams, filters)
        domain = {"MessagesTable": domain_event_filters()}
        self.domain_streams = StreamPump(aws.client, aws.streams, domain)
        counted = {"MessagesTable": function_stream_filters("DomainEventsFunction", "MessagesTable")}
        self.counter_streams = StreamPump(aws.client, aws.streams, counted)
        self.auth: dict[str, dict[str, Any]] = {}

    def invoke(self, function: str, folder: str, event: dict[str, Any]) -> Any:
        with self.recorder.invoking(function):
            return load(folder).handler(event, LambdaContext(function_name=f"parley-{folder}"))

    def authorize(self, user: str) -> dict[str, Any]:
        import jwt

        claims = {"sub": user, "workspace": "acme", "exp": int(time.time()) + 3600, "iat": int(time.time())}
        result: dict[str, Any] = self.invoke(
            "AuthorizerFunction",
            "authorizer",
            events.authorizer_event(jwt.encode(claims, JWT_SECRET, "HS256")),
        )
        assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow", result
        return result

    def connect(self, user: str, connection_id: str) -> None:
        self.authorize(user)
        auth = events.authorizer_context(user, "acme", exp=int(time.time()) + 3600)
        self.auth[connection_id] = auth
        event = events.connect_event(connection_id, auth, _now_ms())
        assert self.invoke("ConnectFunction", "connect", event) == {"statusCode": 200}

    def send(self, connection_id: str, frame: dict[str, Any]) -> Any:
        """The route response frame (None for typing, which answers nothing)."""
        event = events.route_event(connection_id, self.auth[connection_id], frame, _now_ms())
        route = event["requestContext"]["routeKey"]
        folder = route if route in ROUTE_FUNCTIONS else "default"
        if folder == "default":
            event["requestContext"]["routeKey"] = "$default"
        response = self.invoke(ROUTE_FUNCTIONS.get(route, "DefaultFunction"), folder, event)
        assert response["statusCode"] == 200
        return json.loads(response["body"]) if "body" in response else None

    def disconnect(self, connection_id: str) -> None:
        event = events.disconnect_event(connection_id, self.auth[connection_id], _now_ms())
        assert self.invoke("DisconnectFunction", "disconnect", event) == {"statusCode": 200}

    def fan_out(self) -> None:
        records = self.streams.poll()
        assert records, "nothing reached the streams"
        assert self.invoke("FanoutFunction", "fanout", {"Records": records}) == {"batchItemFailures": []}

    def post_chunks(self) -> int:
        """Hand what FanoutFunction enqueued to FanoutChunkFunction, as its SQS mapping would."""
        sqs, url, handed = self.aws.sqs, self.recorder.wide_queue, 0
        while got := sqs.receive_message(QueueUrl=url, AttributeNames=["All"]).get("Messages", []):
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WideFanoutQueue.fifo",
                    "awsRegion": "us-east-1",
                }
                for m in got
            ]
            result = self.invoke("FanoutChunkFunction", "fanout_chunk", {"Records": records})
            assert result == {"batchItemFailures": []}
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            handed += len(got)
        return handed

    def count(self) -> None:
        records = self.counter_streams.poll()
        assert records, "no message reached the counters"
        assert self.invoke("DomainEventsFunction", "domain_events", {"Records": records}) == {
            "batchItemFailures": []
        }

    def fire_presence_timers(self) -> None:
        sent, self.recorder.sent[:] = list(self.recorder.sent), []
        assert sent, "no presence timer was scheduled"
        records = [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": message["MessageBody"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(_now_ms()),
                    "SenderId": "AIDATEST",
                    "ApproximateFirstReceiveTimestamp": str(_now_ms()),
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:PresenceTimerQueue",
                "awsRegion": "us-east-1",
            }
            for i, message in enumerate(sent)
        ]
        result = self.invoke("PresenceTimerFunction", "presence_timer", {"Records": records})
        assert result == {"batchItemFailures": []}

    def publish(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"app": "deploy-bot", "workspace": "acme", "channel": "general"} | payload
        answer: dict[str, Any] = self.invoke("PublishFunction", "publish", body)
        return answer

    def put_domain_events(self) -> None:
        records = self.domain_streams.poll()
        assert records, "no domain event reached the stream"
        answer = self.invoke("DomainEventsFunction", "domain_events", {"Records": records})
        assert answer == {"batchItemFailures": []}

    def sweep(self) -> dict[str, int]:
        result: dict[str, int] = self.invoke("SweeperFunction", "sweeper", {"source": "aws.events"})
        return result


ROUTE_FUNCTIONS = {key: fn for key, fn in route_functions().items() if not key.startswith("$")}


def domain_event_filters() -> list[dict[str, Any]]:
    (source,) = read_template()["Resources"]["DomainEventsFunction"]["Properties"]["Events"].values()
    return [json.loads(f["Pattern"]) for f in source["Properties"]["FilterCriteria"]["Filters"]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


WIDE_THRESHOLD = 4


def run_every_path(session: Session) -> None:
    """One session that takes every path a permission is granted for."""
    alice, bob, carol, dave = "conn-alice=", "conn-bob=", "conn-carol=", "conn-dave="
    for user, connection_id in (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave)):
        session.connect(user, connection_id)
    for connection_id in (alice, bob, carol, dave):
        assert session.send(connection_id, {"action": "join", "channel": "general"})["type"] == "joined"
    message = {"action": "message", "channel": "general", "text": "hi", "clientMsgId": "c-1"}
    ack = session.send(alice, message)
    assert session.send(alice, message) == ack  # the idempotent repeat
    reply = {
        "action": "message",
        "channel": "general",
        "text": "re",
        "clientMsgId": "c-2",
        "threadId": ack["id"],
    }
    assert session.send(alice, reply)["type"] == "ack"  # a thread reply reads its parent
    # a reply to no message fails inside the idempotent section, which then deletes its record
    orphan = {**reply, "clientMsgId": "c-3", "threadId": "10000000000000000"}
    assert session.send(alice, orphan)["code"] == "not_found"
    # another writer took the next id: the append transaction is cancelled and re-reads the head
    session.aws.dynamodb.Table("MessagesTable").update_item(
        Key=keys.head_key("acme", "general"),
        UpdateExpression="SET lastId = :future",
        ExpressionAttributeValues={":future": f"{(_now_ms() + 60_000) * 10_000:017d}"},
    )
    assert session.send(alice, {**message, "clientMsgId": "c-4"})["type"] == "ack"
    # a reaction (before the message is deleted: a tombstone takes none): one BatchGetItem, then the
    # user's item and the counts (UpdateItem) with the message's ConditionCheck in one transaction;
    # taking back one's only name deletes one's item (DeleteItem)
    react = {"action": "react", "channel": "general", "messageId": ack["id"], "name": "+1"}
    assert session.send(bob, react)["changed"] is True
    assert session.send(bob, {**react, "remove": True})["changed"] is True
    assert session.send(bob, react)["changed"] is True
    # an edit (a consistent read, then a conditional update), a thread page (the Threads index), the
    # delete of a reply (a transaction with its parent's count) and of a message (one update)
    edit = {"action": "edit", "channel": "general", "messageId": ack["id"], "text": "hi!"}
    assert session.send(alice, edit)["type"] == "edited"
    thread = {"action": "thread", "channel": "general", "threadId": ack["id"]}
    assert session.send(bob, thread)["type"] == "thread"
    answer = session.send(alice, {**reply, "clientMsgId": "c-5"})
    for message_id in (answer["id"], ack["id"]):
        gone = session.send(alice, {"action": "delete", "channel": "general", "messageId": message_id})
        assert gone["type"] == "deleted"
    assert session.send(alice, {"action": "typing", "channel": "general"}) is None
    assert session.send(alice, {"action": "history", "channel": "general"})["type"] == "history"
    assert session.send(alice, {"action": "presence", "channel": "general"})["type"] == "presence"
    assert session.send(alice, {"action": "heartbeat"})["type"] == "heartbeat"
    # a public channel's name is looked up first (GetItem); a private one is put under a fresh id
    assert session.send(alice, {"action": "create_channel", "name": "ops"})["type"] == "channel_created"
    created = session.send(alice, {"action": "create_channel", "name": "ops", "private": True})
    assert created["type"] == "channel_created"
    ops = created["channel"]["id"]  # a private channel's id: `ops.<suffix>`
    assert session.send(alice, {"action": "invite", "channel": ops, "user": "bob"})["type"] == "invited"
    assert session.send(alice, {"action": "join", "channel": ops})["type"] == "joined"
    # a DM: the directory read, the DM's transaction; opened again, read and found
    assert session.send(alice, {"action": "open_dm", "users": ["bob"]})["type"] == "dm_opened"
    assert session.send(bob, {"action": "open_dm", "users": ["alice"]})["type"] == "dm_opened"
    # a mention reads the directory; the counters count it, and bob marks an older message read
    mention = {"action": "message", "channel": "general", "text": "@bob look", "clientMsgId": "c-9"}
    assert session.send(alice, mention)["type"] == "ack"
    session.count()
    marked = session.send(bob, {"action": "mark_read", "channel": "general", "messageId": ack["id"]})
    assert marked["type"] == "marked_read" and marked["unread"] >= 1, marked
    assert session.send(bob, {"action": "channels"})["type"] == "channels"
    # the creator removes a member (every connection of his is unsubscribed), then leaves herself
    assert session.send(alice, {"action": "leave", "channel": ops, "user": "bob"})["membership"] is True
    assert session.send(alice, {"action": "leave", "channel": ops, "membership": True})["membership"] is True
    assert session.send(alice, {"action": "dance"})["code"] == "unknown_action"
    # A connection whose token expired is closed by whichever route it talks to.
    expired = {**session.auth[dave], "tokenExp": int(time.time()) - 60}
    for route in (*ROUTE_FUNCTIONS, "dance"):
        frame = {"action": route, "channel": "general", "name": "x", "user": "bob", "text": "t"}
        event = events.route_event(dave, expired, frame, _now_ms())
        folder = route if route in ROUTE_FUNCTIONS else "default"
        if folder == "default":
            event["requestContext"]["routeKey"] = "$default"
        posted, closed = len(session.recorder.posted), len(session.recorder.closed)
        response = session.invoke(ROUTE_FUNCTIONS.get(route, "DefaultFunction"), folder, event)
        # the error is posted first, then the connection closed: no route response races the close
        assert response == {"statusCode": 200}, route
        assert session.recorder.posted[posted:] == session.recorder.closed[closed:] == [dave], route
    # Dave's client goes away while subscribed: $disconnect ends his subscription and starts his timer.
    session.disconnect(dave)
    session.fire_presence_timers()
    # The fan-out meets bob's connection gone: it forgets it, which starts bob's presence timers.
    session.recorder.gone.add(bob)
    session.fan_out()
    assert alice in session.recorder.posted
    session.fire_presence_timers()
    # Four more members make #general wide (more than WIDE_THRESHOLD subscribers): FanoutFunction
    # enqueues chunks, FanoutChunkFunction posts them and meets hank's connection gone.
    wide = {"erin": "conn-erin=", "frank": "conn-frank=", "gina": "conn-gina=", "hank": "conn-hank="}
    for user, connection_id in wide.items():
        session.connect(user, connection_id)
        assert session.send(connection_id, {"action": "join", "channel": "general"})["type"] == "joined"
    session.send(alice, {**message, "clientMsgId": "c-5"})
    session.recorder.gone.add(wide["hank"])
    posted = len(session.recorder.posted)
    session.fan_out()
    assert len(session.recorder.posted) == posted  # the wide channel is not posted by FanoutFunction
    assert session.post_chunks() >= 2
    assert "conn-gina=" in session.recorder.posted[posted:]
    session.fire_presence_timers()
    assert session.send(alice, {"action": "leave", "channel": "general"})["type"] == "left"
    session.fire_presence_timers()
    # Carol stopped heartbeating long ago: the sweeper closes her connection and ends her presence.
    session.aws.dynamodb.Table("StateTable").update_item(
        Key=keys.connection_key(carol),
        UpdateExpression="SET dueAt = :past",
        ExpressionAttributeValues={":past": 1},
    )
    assert session.sweep()["staleConnections"] == 1
    # An app posts (and repeats it), replies in a thread at once (its limiter's state is read), posts
    # to a thread that does not exist (the idempotency record is deleted again) and reads history.
    app_ack = session.publish({"op": "publish", "text": "deployed", "clientMsgId": "d-1"})
    assert session.publish({"op": "publish", "text": "deployed", "clientMsgId": "d-1"}) == app_ack
    threaded = {"op": "publish", "text": "notes", "clientMsgId": "d-2", "threadId": app_ack["id"]}
    assert session.publish(threaded)["type"] == "ack"
    orphaned = threaded | {"clientMsgId": "d-3", "threadId": "10000000000000000"}
    assert session.publish(orphaned)["code"] == "not_found"
    assert session.publish({"op": "history"})["type"] == "history"
    session.put_domain_events()
    session.disconnect(alice)


# Calls a library makes only on a path no session can force, from the library's documented permissions.
LIBRARY_NEEDS: dict[str, set[Need]] = {
    # Powertools idempotency falls back to GetItem when a conditional put fails without returning the
    # old record (its docs list GetItem, PutItem, UpdateItem and DeleteItem for the persistence table).
    "MessageFunction": {("IdempotencyTable", "dynamodb:GetItem")},
    # The rate limiter re-reads its state after losing a compare-and-set to a concurrent sender
    # (chat.Chat._take_rate): a race no serial session forces. (Route functions read the StateTable
    # anyway, for the subscription check; an app has no connection, so this is its only read of it.)
    "PublishFunction": {("IdempotencyTable", "dynamodb:GetItem"), ("StateTable", "dynamodb:GetItem")},
}


def service_needs(template: dict[str, Any], function: str) -> set[Need]:
    """What Lambda does with the function's role for its event sources (AWS's documented actions)."""
    needs: set[Need] = set()
    for source in template["Resources"][function]["Properties"].get("Events", {}).values():
        props = source["Properties"]
        if source["Type"] == "DynamoDB":
            table = props["Stream"]["Fn::GetAtt"][0]
            needs |= {
                (f"{table}/stream", f"dynamodb:{action}")
                for action in ("DescribeStream", "GetRecords", "GetShardIterator")
            }
            needs.add((f"{table}/stream/*", "dynamodb:ListStreams"))
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if destination:
                needs.add((destination["Fn::GetAtt"][0], "sqs:SendMessage"))
        elif source["Type"] == "SQS":
            queue = props["Queue"]["Fn::GetAtt"][0]
            needs |= {
                (queue, f"sqs:{action}")
                for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
            }
    return needs


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return read_template()


def test_every_function_is_granted_exactly_what_its_code_path_calls(
    moto_aws: MotoAws, recorder: CallRecorder, template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", DOMAIN_BUS)
    boto3.client("events").create_event_bus(Name=DOMAIN_BUS)
    domain_events.publisher.cache_clear()
    # Given the production wiring under moto, When one session takes every path
    run_every_path(Session(moto_aws, recorder))
    # Then each function's grants are its calls plus what Lambda does for its event sources
    functions = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert set(recorder.needs) | {"AuthorizerFunction"} >= set(functions) - {"DefaultFunction"}
    mismatches = {}
    for function in functions:
        needed = recorder.needs.get(function, set()) | service_needs(template, function)
        needed |= LIBRARY_NEEDS.get(function, set())
        granted = function_permissions(template, function)
        if needed != granted:
            mismatches[function] = {"missing": sorted(needed - granted), "unused": sorted(granted - needed)}
    assert mismatches == {}, json.dumps(mismatches, indent=1)


def test_the_recorder_sees_a_call_the_template_does_not_grant(
    moto_aws: MotoAws, recorder: CallRecorder, template: dict[str, Any]
) -> None:
    # The control: the fan-out's own presence timer send, which its role lacked until it was granted.
    # Without the gone connection the fan-out sends nothing to SQS; with it, it does.
    session = Session(moto_aws, recorder)
    session.connect("alice", "conn-a=")
    session.connect("bob", "conn-b=")
    session.send("conn-a=", {"action": "join", "channel": "general"})
    session.send("conn-b=", {"action": "join", "channel": "general"})
    session.send("conn-a=", {"action": "message", "channel": "general", "text": "x", "clientMsgId": "c"})
    recorder.gone.add("conn-b=")
    session.fan_out()
    assert ("PresenceTimerQueue", "sqs:SendMessage") in recorder.needs["FanoutFunction"]
