"""Drive Parley's real handlers under moto, with fakes only where AWS cannot be reached (@connections)."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from parley import deps
from parley.config import settings
from parley.triggers import handle_counters
from tests.support import events
from tests.support.fakes import FakeClock, FakeNotifier, FakeTimers
from tests.support.handlers import LambdaContext, load
from tests.support.matrix import send
from tests.support.streams import StreamPump, sweep_expired
from tests.support.template import function_stream_filters, stream_filters
from tests.support.world import MotoAws

_conn_ids = itertools.count(1)


@dataclass
class Client:
    harness: Harness
    connection_id: str
    auth: dict[str, Any]

    def send(self, body: str | dict[str, Any]) -> dict[str, Any] | None:
        """Send one frame; the route response (what the caller receives) or None."""
        return send(self, body)[1]

    def disconnect(self) -> None:
        event = events.disconnect_event(self.connection_id, self.auth, self.harness.clock.now_ms())
        assert load("disconnect").handler(event, LambdaContext())["statusCode"] == 200

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.harness.notifier.events(self.connection_id)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


class Harness:
    def __init__(self, aws: MotoAws, pool: ThreadPoolExecutor) -> None:
        self.aws = aws
        self.notifier = FakeNotifier()
        self.timers = FakeTimers()
        self.clock = FakeClock(int(time.time() * 1000))
        self.services = deps.build_services(
            settings(), notifier=self.notifier, timers=self.timers, clock=self.clock, executor=pool
        )
        self.store = self.services.chat.store
        filters = {
            "StateTable": stream_filters("StateTable"),
            "MessagesTable": stream_filters("MessagesTable"),
        }
        self.pump_source = StreamPump(aws.client, aws.streams, filters)
        self.fanout_responses: list[dict[str, Any]] = []
        # the counters ride on DomainEventsFunction's own mapping of the MessagesTable stream, from its
        # own position
        counter_filters = {"MessagesTable": function_stream_filters("DomainEventsFunction", "MessagesTable")}
        self.counter_source = StreamPump(aws.client, aws.streams, counter_filters)
        self.counter_batches: list[list[dict[str, Any]]] = []

    def connect(
        self, user: str, workspace: str = "acme", *, name: str | None = None, expires_in_s: int = 3600
    ) -> Client:
        connection_id = f"c{next(_conn_ids):04d}="
        exp = self.clock.now_ms() // 1000 + expires_in_s
        auth = events.authorizer_context(user, workspace, name=name, exp=exp)
        response = load("connect").handler(
            events.connect_event(connection_id, auth, self.clock.now_ms()), LambdaContext()
        )
        assert response == {"statusCode": 200}
        return Client(self, connection_id, auth)

    def pump(self) -> list[dict[str, Any]]:
        """Deliver what the streams hold now, as one fan-out invocation (like a batch of the mapping)."""
        records = self.pump_source.poll()
        if not records:
            return []
        response = load("fanout").handler({"Records": records}, LambdaContext(function_name="parley-fanout"))
        self.fanout_responses.append(response)
        return records

    def count(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Deliver the new messages to the counters as one batch of DomainEventsFunction's mapping (or
        `records`: a re-sent batch): its counters half, `triggers.handle_counters` (the domain events
        half needs a bus; tests/integration/test_apps_flow.py runs the whole function)."""
        if records is None:
            records = self.counter_source.poll()
            self.counter_batches.append(records)
        result: dict[str, Any] = dict(
            handle_counters(
                {"Records": records},
                LambdaContext(function_name="parley-domain-events"),  # type: ignore[arg-type]
            )
        )
        return result

    def fire_presence_timers(self) -> dict[str, Any]:
        """Deliver the delayed SQS messages the leave paths scheduled, as the queue trigger would."""
        records = [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps({"workspace": w, "channel": c, "userId": u}),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(self.clock.now_ms()),
                    "SenderId": "AIDATEST",
                    "ApproximateFirstReceiveTimestamp": str(self.clock.now_ms()),
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:PresenceTimerQueue",
                "awsRegion": "us-east-1",
            }
            for i, (w, c, u, _) in enumerate(self.timers.scheduled)
        ]
        self.timers.scheduled.clear()
        result: dict[str, Any] = load("presence_timer").handler({"Records": records}, LambdaContext())
        return result

    def expire_ttl(self) -> int:
        """What DynamoDB's TTL deleter would have removed by the fake clock's now."""
        table = self.aws.dynamodb.Table("StateTable")
        return sweep_expired(table, "expiresAt", self.clock.now_ms() // 1000)


def joined_pair(parley: Harness) -> tuple[Any, Any]:
    """Alice and Bob, both in #general, with the join traffic already delivered and forgotten."""
    alice, bob = parley.connect("alice", name="Alice"), parley.connect("bob", name="Bob")
    alice.send({"action": "join", "channel": "general"})
    bob.send({"action": "join", "channel": "general"})
    parley.pump()
    parley.notifier.clear()
    return alice, bob
