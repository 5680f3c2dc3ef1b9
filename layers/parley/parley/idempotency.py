"""Exactly-once message posts per (workspace, user, clientMsgId), built on Powertools idempotency."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

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
from aws_lambda_powertools.utilities.typing import LambdaContext

from parley.errors import Conflict, StoreError

Command = dict[str, Any]

WINDOW_SECONDS = 24 * 3600


class Once(Protocol):
    """Runs `fn(command)` once per idempotency key; a repeat returns the first result."""

    def run(self, command: Command, fn: Callable[[Command], Command]) -> Command: ...

    def register(self, context: LambdaContext) -> None: ...


class PowertoolsOnce:
    def __init__(self, persistence: BasePersistenceLayer) -> None:
        self._persistence = persistence
        self._config = IdempotencyConfig(
            event_key_jmespath="[workspace, userId, clientMsgId]",
            # the same clientMsgId with a different text or thread is a client bug, not a retry
            payload_validation_jmespath="[channel, text, threadId]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=WINDOW_SECONDS,
        )

    def register(self, context: LambdaContext) -> None:
        # lets a record left IN_PROGRESS by a timed-out invocation expire with that invocation
        self._config.register_lambda_context(context)

    def run(self, command: Command, fn: Callable[[Command], Command]) -> Command:
        wrapped = idempotent_function(
            data_keyword_argument="command", persistence_store=self._persistence, config=self._config
        )(fn)
        try:
            result: Command = wrapped(command=command)
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
        self.results: dict[tuple[Any, ...], tuple[tuple[Any, ...], Command]] = {}

    def register(self, context: LambdaContext) -> None:
        return None

    def run(self, command: Command, fn: Callable[[Command], Command]) -> Command:
        key = (command["workspace"], command["userId"], command["clientMsgId"])
        payload = (command["channel"], command["text"], command.get("threadId"))
        if key in self.results:
            seen_payload, result = self.results[key]
            if seen_payload != payload:
                raise Conflict("clientMsgId was already used for a different message")
            return result
        result = fn(command)
        self.results[key] = (payload, result)
        return result
