"""Fault injection: rates, validation, and one object shared by the @connections API and the local AWS."""

import logging

import pytest

from tests.emulator.unit.doubles import NoConnections
from ws_emulator.aws.services import LocalAws
from ws_emulator.faults import Faults
from ws_emulator.gateway.http11 import HttpRequest
from ws_emulator.gateway.management import ManagementApi


def test_faults_follow_their_rates():
    assert Faults().pick() is None
    assert Faults(post_gone_rate=1.0).pick() == "gone"
    assert Faults(post_throttle_rate=1.0).pick() == "throttle"
    mixed = Faults(0.3, 0.3, seed=1)
    outcomes = [mixed.pick() for _ in range(1000)]
    assert 200 < outcomes.count("gone") < 400 and 200 < outcomes.count("throttle") < 400


def test_fault_settings_are_validated():
    assert Faults.from_dict({"postGoneRate": 0.2}).post_gone_rate == 0.2
    assert Faults.from_dict({"dynamodbThrottleRate": 0.4}).dynamodb_throttle_rate == 0.4
    with pytest.raises(ValueError):
        Faults.from_dict({"postGoneRate": 0.8, "postThrottleRate": 0.5})
    with pytest.raises(ValueError):
        Faults.from_dict({"dynamodbThrottleRate": 1.5})


def test_dynamodb_throttling_follows_its_rate_and_is_counted():
    assert not Faults().throttle_dynamodb()
    faults = Faults(dynamodb_throttle_rate=0.25, seed=3)
    throttled = sum(faults.throttle_dynamodb() for _ in range(1000))
    assert 180 < throttled < 320
    assert faults.as_dict()["dynamodbThrottled"] == throttled


async def test_one_faults_object_reaches_the_connections_api_and_the_local_aws():
    # GIVEN one Faults object handed to the @connections API and the local AWS at construction
    faults = Faults()
    api = ManagementApi(NoConnections(), stage="dev", log=logging.getLogger("test"), faults=faults)
    aws = LocalAws(faults=faults)  # not started: no server, no socket
    # WHEN the admin endpoint switches DynamoDB throttling and post faults on
    body = b'{"dynamodbThrottleRate": 1.0, "postGoneRate": 1.0}'
    response = await api.handle(
        HttpRequest("PUT", "/_emulator/faults", (), "HTTP/1.1", {"content-type": "application/json"}, body)
    )
    # THEN both holders see the new settings at once, and DELETE switches them off for both
    assert response.status == 200
    assert api.faults is faults and aws.faults is faults
    assert aws.faults.throttle_dynamodb() and api.faults.pick() == "gone"
    await api.handle(HttpRequest("DELETE", "/_emulator/faults", (), "HTTP/1.1", {}))
    assert not aws.faults.throttle_dynamodb() and api.faults.pick() is None


def test_configure_validates_before_changing_anything():
    # GIVEN faults in force
    faults = Faults(post_gone_rate=0.5, seed=1)
    # WHEN settings that do not add up are given
    with pytest.raises(ValueError):
        faults.configure({"postGoneRate": 0.8, "postThrottleRate": 0.5})
    # THEN the old settings stay
    assert faults.post_gone_rate == 0.5


def test_configure_restarts_the_counter_and_the_random_sequence():
    # GIVEN a seeded throttle that has fired
    faults = Faults(dynamodb_throttle_rate=0.5, seed=3)
    first = [faults.throttle_dynamodb() for _ in range(20)]
    # WHEN the same settings are given again
    faults.configure({"dynamodbThrottleRate": 0.5, "seed": 3})
    # THEN the count starts from zero and the same seed replays the same decisions
    assert faults.dynamodb_throttled == 0
    assert [faults.throttle_dynamodb() for _ in range(20)] == first
