"""Idempotent posts: the typed command keeps the keys first stored with the camelCase dict command."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from parley.errors import Conflict
from parley.idempotency import InMemoryOnce, Once, PostCommand, Posted, PowertoolsOnce
from tests.support.handlers import LambdaContext

COMMAND = PostCommand(
    workspace="acme", user_id="alice", user_name="Alice", channel="general", text="hello", client_msg_id="c-1"
)
# What the dict command {"workspace", "userId", "userName", "channel", "text", "clientMsgId", "threadId"}
# hashed to with jmespath "[workspace, userId, clientMsgId]" / "[channel, text, threadId]", from
# parley.service.Chat._append: records stored before the typed command must still be found.
STORED_KEY = "test-func.parley.service.Chat._append#09f0d8b482b1a6d8a964d819019cfa7e"
STORED_PAYLOAD_HASH = "54557cd47cdb0dcc65e76ac83c9a7ccc"


class MemoryPersistence(BasePersistenceLayer):
    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        if idempotency_key not in self.records:
            raise IdempotencyItemNotFoundError
        return self.records[idempotency_key]

    def _put_record(self, data_record: DataRecord) -> None:
        old = self.records.get(data_record.idempotency_key)
        if old is not None and not old.is_expired:
            raise IdempotencyItemAlreadyExistsError  # Powertools then reads it back, validating the payload
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def powertools_once(persistence: MemoryPersistence) -> PowertoolsOnce:
    once = PowertoolsOnce(persistence)
    once.register(LambdaContext())  # type: ignore[arg-type]
    return once


def counting(calls: list[PostCommand]) -> object:
    def store(command: PostCommand) -> Posted:
        calls.append(command)
        return Posted(id=f"1790000000000{len(calls):04d}", ts="2026-09-21T14:13:20.000Z")

    return store


def test_the_typed_command_is_stored_under_the_key_and_payload_hash_of_the_dict_command() -> None:
    # Given the Powertools-backed once, on an empty persistence layer
    persistence = MemoryPersistence()
    once = powertools_once(persistence)
    # When a command runs
    calls: list[PostCommand] = []
    posted = once.run(COMMAND, counting(calls))  # type: ignore[arg-type]
    # Then it is stored under the same key and payload hash as before the command was typed
    assert list(persistence.records) == [STORED_KEY]
    assert persistence.records[STORED_KEY].payload_hash == STORED_PAYLOAD_HASH
    assert json.loads(persistence.records[STORED_KEY].response_data or "{}") == posted.model_dump()


def test_a_record_stored_with_the_old_ack_frame_is_read_back_as_posted() -> None:
    # Given a completed record as the dict command stored it: the whole ack frame
    persistence = MemoryPersistence()
    once = powertools_once(persistence)
    once.run(COMMAND, counting([]))  # type: ignore[arg-type]
    old = {"type": "ack", "clientMsgId": "c-1", "id": "17900000000009999", "ts": "2026-09-21T14:13:20.999Z"}
    persistence.records[STORED_KEY].response_data = json.dumps(old)
    # When the command is repeated, Then the stored result comes back and nothing runs again
    calls: list[PostCommand] = []
    assert once.run(COMMAND, counting(calls)) == Posted(id=old["id"], ts=old["ts"])  # type: ignore[arg-type]
    assert calls == []


@pytest.mark.parametrize("make", [lambda: powertools_once(MemoryPersistence()), InMemoryOnce])
def test_a_repeat_returns_the_first_result_and_another_payload_is_a_conflict(make: object) -> None:
    # Given either implementation of Once
    assert callable(make)
    once: Once = make()
    calls: list[PostCommand] = []
    # When the same command runs twice, Then it ran once and both got the same result
    first = once.run(COMMAND, counting(calls))  # type: ignore[arg-type]
    assert once.run(COMMAND, counting(calls)) == first  # type: ignore[arg-type]
    assert len(calls) == 1
    # When the same key comes with another text, Then it is refused
    with pytest.raises(Conflict):
        once.run(COMMAND.model_copy(update={"text": "other"}), counting(calls))  # type: ignore[arg-type]
    # positive control: another clientMsgId with that text runs
    once.run(COMMAND.model_copy(update={"text": "other", "client_msg_id": "c-2"}), counting(calls))  # type: ignore[arg-type]
    assert len(calls) == 2
