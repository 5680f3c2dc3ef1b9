"""template.yaml's server-side way in: the publish function, the domain event bus and its consumer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.template import read_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return read_template()


def statements(policy_holder: dict[str, Any]) -> list[dict[str, Any]]:
    props = policy_holder["Properties"]
    if "Policies" in props and isinstance(props["Policies"][0], dict) and "Statement" in props["Policies"][0]:
        return [s for p in props["Policies"] for s in p["Statement"]]
    return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_publish_writes_like_the_message_route_and_posts_to_no_connection(template):
    publish = template["Resources"]["PublishFunction"]
    actions = {
        a
        for s in statements(publish)
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert "execute-api:ManageConnections" not in actions  # the stream fan-out delivers its messages
    assert "dynamodb:Scan" not in actions
    assert publish["Properties"]["CodeUri"] == "functions/publish/"
    assert not publish["Properties"].get("Events")  # invoked by callers with lambda:InvokeFunction only


def test_the_stack_outputs_the_entry_point_and_the_bus(template):
    outputs = template["Outputs"]
    assert outputs["PublishFunctionName"]["Value"] == {"Ref": "PublishFunction"}
    assert outputs["PublishFunctionArn"]["Value"] == {"Fn::GetAtt": ["PublishFunction", "Arn"]}
    assert outputs["DomainEventBusName"]["Value"] == {"Ref": "DomainEventBus"}
    assert template["Resources"]["DomainEventBus"]["Type"] == "AWS::Events::EventBus"


def test_domain_events_may_put_events_on_its_bus_only(template):
    role = template["Resources"]["DomainEventsFunctionRole"]
    puts = [s for s in statements(role) if "events:PutEvents" in json.dumps(s["Action"])]
    assert puts == [
        {
            "Sid": "PutDomainEvents",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": {"Fn::GetAtt": ["DomainEventBus", "Arn"]},
        }
    ]
    assert all(
        "*" not in json.dumps(s["Resource"]) or "stream/*" in json.dumps(s["Resource"])
        for s in statements(role)
    )


def test_domain_events_reads_the_messages_stream_with_partial_batch_failures(template):
    function = template["Resources"]["DomainEventsFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["DomainEventsFunctionRole", "Arn"]}
    assert function["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "DomainEventBus"}
    (source,) = function["Events"].values()
    props = source["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": ["MessagesTable", "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert props["BisectBatchOnFunctionError"] is True
    assert 1 <= len(props["FilterCriteria"]["Filters"]) <= 5
