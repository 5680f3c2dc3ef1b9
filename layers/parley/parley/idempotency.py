"""Exactly-once message posts per (workspace, user, clientMsgId), built on Powertools idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from parley.errors import Conflict, StoreError

WINDOW_SECONDS = 24 * 3600
# Powertools prefixes each key with the decorated function's module and name. The keys were first
# stored under this name; pinning it keeps a retry across a deploy (or a rename) recognised.
KEY_NAME = "parley.service.Chat._append"


class PostCommand(BaseModel):
    """A message to store once: (workspace, user_id, client_msg_id) is the idempotency key."""

    model_config = ConfigDict(frozen=True)

    workspace: str
    user_id: str
    user_name: str
    channel: str
    text: str
    client_msg_id: str | None = None
    thread_id: str | None = None
    app: str | None = None  # posted by an app (parley.apps), whose user_id is then apps.app_user_id


class Posted(BaseModel):
    """What storing a message gave: its id and timestamp. A repeat of the command gets the same back."""

    model_config = ConfigDict(frozen=True)

    id: str
    ts: str


class Once(Protocol):
    """Runs `fn(command)` once per idempotency key; a repeat returns the first result."""

    def run(self, command: PostCommand, fn: Callable[[PostCommand], Posted]) -> Posted: ...

    def register(self, context: LambdaContext) -> None: ...


class PowertoolsOnce:
    def __init__(self, persistence: BasePersistenceLayer, *, function_name: str = "test-func") -> None:
        self._persistence = persistence
        self._key_prefix = f"{function_name}.{KEY_NAME}"
        self._config = IdempotencyConfig(
            event_key_jmespath="[workspace, user_id, client_msg_id]",
            # the same clientMsgId with a different text or thread is a client bug, not a retry
            payload_validation_jmespath="[channel, text, thread_id]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=WINDOW_SECONDS,
        )

    def register(self, context: LambdaContext) -> None:
        # lets a record left IN_PROGRESS by a timed-out invocation expire with that invocation
        self._config.register_lambda_context(context)

    def run(self, command: PostCommand, fn: Callable[[PostCommand], Posted]) -> Posted:
        wrapped = idempotent_function(
            data_keyword_argument="command",
            persistence_store=self._persistence,
            config=self._config,
            output_serializer=PydanticSerializer(model=Posted),
            key_prefix=self._key_prefix,
        )(fn)
        try:
            result: Posted = wrapped(command=command)
        except IdempotencyValidationError:
            raise Conflict("clientMsgId was already used for a different message") from None
        except IdempotencyAlreadyInProgressError:
            raise Conflict(
                "a message with this clientMsgId is still being processed; retry shortly"
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            raise StoreError("idempotency store") from exc
        return result


class InMemoryOnce:
    """For unit tests and tools: the same contract, kept in a dict."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, str, str | None], tuple[tuple[str, str, str | None], Posted]] = {}

    def register(self, context: LambdaContext) -> None:
        return None

    def run(self, command: PostCommand, fn: Callable[[PostCommand], Posted]) -> Posted:
        key = (command.workspace, command.user_id, command.client_msg_id)
        payload = (command.channel, command.text, command.thread_id)
        if key in self.results:
            seen_payload, result = self.results[key]
            if seen_payload != payload:
                raise Conflict("clientMsgId was already used for a different message")
            return result
        result = fn(command)
        self.results[key] = (payload, result)
        return result
