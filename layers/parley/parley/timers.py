"""Delayed work: the presence-leave check, sent to an SQS queue with a per-message delay."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from parley.errors import StoreError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class PresenceTimers(Protocol):
    def schedule_leave_check(self, workspace: str, channel: str, user_id: str, delay_s: int) -> None: ...


class SqsPresenceTimers:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def schedule_leave_check(self, workspace: str, channel: str, user_id: str, delay_s: int) -> None:
        body = json.dumps({"workspace": workspace, "channel": channel, "userId": user_id})
        # SQS delays up to 15 minutes; the sweeper and TTL catch anything this misses.
        try:
            self._client.send_message(
                QueueUrl=self._queue_url, MessageBody=body, DelaySeconds=min(max(delay_s, 0), 900)
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("presence timer queue") from exc
