"""Wiring: build the services once per container from settings. Tests build their own with fakes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from parley import aws
from parley.auth import Jwks, KeySource, SharedSecret, TokenVerifier
from parley.clock import SystemClock
from parley.config import Settings, settings
from parley.fanout import Fanout
from parley.idempotency import PowertoolsOnce
from parley.notify import ManagementApiNotifier
from parley.service import Chat
from parley.store import Store
from parley.timers import SqsPresenceTimers

SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Services:
    chat: Chat
    fanout: Fanout


def build_services(config: Settings) -> Services:
    store = Store(aws.dynamodb(), state_table=config.state_table, messages_table=config.messages_table)
    notifier = ManagementApiNotifier(
        aws.management_api(config.connections_endpoint, config.fanout_concurrency)
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=config.idempotency_table, boto3_client=aws.dynamodb().meta.client
    )
    chat = Chat(
        store=store,
        notifier=notifier,
        timers=SqsPresenceTimers(aws.sqs(), config.presence_queue_url),
        once=PowertoolsOnce(persistence),
        clock=SystemClock(),
        settings=config,
    )
    executor = ThreadPoolExecutor(max_workers=config.fanout_concurrency, thread_name_prefix="fanout")
    return Services(chat=chat, fanout=Fanout(store=store, notifier=notifier, executor=executor))


@cache
def services() -> Services:
    return build_services(settings())


def build_verifier(config: Settings) -> TokenVerifier:
    keys: KeySource
    if config.jwks_url:
        keys = Jwks(config.jwks_url)
    elif config.jwt_secret_param:
        name = config.jwt_secret_param
        keys = SharedSecret(
            lambda: str(parameters.get_parameter(name, decrypt=True, max_age=SECRET_CACHE_SECONDS))
        )
    else:
        raise RuntimeError("Parley is misconfigured: set JWKS_URL or JWT_SECRET_PARAM")
    return TokenVerifier(keys, issuer=config.jwt_issuer, audience=config.jwt_audience)


@cache
def verifier() -> TokenVerifier:
    return build_verifier(settings())
