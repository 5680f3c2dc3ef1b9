"""Wiring: build the services once per container from settings. Tests build their own with fakes."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from parley import aws
from parley.chat import Chat
from parley.clock import Clock, SystemClock
from parley.config import Settings, settings
from parley.conversations import Conversations
from parley.fanout import Fanout
from parley.idempotency import PowertoolsOnce
from parley.notify import ManagementApiNotifier, Notifier
from parley.store import Store
from parley.timers import PresenceTimers, SqsPresenceTimers
from parley.wide_fanout import ChunkQueue, ChunkWorker, SqsChunkQueue, WideFanout, WideSettings

if TYPE_CHECKING:
    from parley.auth import TokenVerifier

SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Services:
    chat: Chat
    fanout: Fanout
    chunks: ChunkWorker  # the second level of the two-level fan-out (FanoutChunkFunction)
    conversations: Conversations


def build_services(
    config: Settings,
    *,
    notifier: Notifier | None = None,
    timers: PresenceTimers | None = None,
    clock: Clock | None = None,
    executor: Executor | None = None,
    chunk_queue: ChunkQueue | None = None,
) -> Services:
    """The production wiring; tests pass fakes for what cannot run locally (@connections, time)."""
    store = Store.on(aws.dynamodb(), state_table=config.state_table, messages_table=config.messages_table)
    if notifier is None:
        client = aws.connections_client(config.connections_endpoint, config.fanout_concurrency)
        notifier = ManagementApiNotifier(client)
    persistence = DynamoDBPersistenceLayer(
        table_name=config.idempotency_table, boto3_client=aws.dynamodb_client()
    )
    chat = Chat(
        store=store,
        notifier=notifier,
        timers=timers or SqsPresenceTimers(aws.sqs(), config.presence_queue_url),
        once=PowertoolsOnce(persistence, function_name=config.aws_lambda_function_name),
        clock=clock or SystemClock(),
        settings=config,
        directory=store,
    )
    if executor is None:
        executor = ThreadPoolExecutor(max_workers=config.fanout_concurrency, thread_name_prefix="fanout")
    wide = WideSettings(
        threshold=config.wide_fanout_threshold,
        chunk_size=config.wide_fanout_chunk_size,
        groups=config.wide_fanout_groups,
        queue_url=config.wide_fanout_queue_url,
    )
    if chunk_queue is None and wide.queue_url:
        chunk_queue = SqsChunkQueue(aws.sqs(), wide.queue_url)
    wide_fanout = WideFanout(wide, chunk_queue, executor) if chunk_queue is not None else None
    return Services(
        chat=chat,
        fanout=Fanout(store=store, notifier=notifier, executor=executor, wide=wide_fanout),
        chunks=ChunkWorker(notifier=notifier, executor=executor, forget_gone=chat.forget_gone),
        conversations=Conversations(chat=chat, store=store),
    )


@cache
def services() -> Services:
    return build_services(settings())


def build_verifier(config: Settings) -> TokenVerifier:
    # Imported here: only the authorizer verifies tokens, and pyjwt with cryptography is a large share
    # of a cold start that the other functions need not pay.
    from parley.auth import Jwks, KeySource, SharedSecret, TokenVerifier

    keys: KeySource
    if config.jwks_url:
        keys = Jwks(config.jwks_url)
    elif config.jwt_secret_param:
        name = config.jwt_secret_param
        # its own client: retries and timeouts that survive GetParameter throttling (aws.ssm)
        provider = parameters.SSMProvider(boto3_client=aws.ssm())
        keys = SharedSecret(lambda: str(provider.get(name, decrypt=True, max_age=SECRET_CACHE_SECONDS)))
    else:
        raise RuntimeError("Parley is misconfigured: set JWKS_URL or JWT_SECRET_PARAM")
    return TokenVerifier(
        keys,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        max_lifetime_s=config.max_token_lifetime_seconds,
    )


@cache
def verifier() -> TokenVerifier:
    return build_verifier(settings())
