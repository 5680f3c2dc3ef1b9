"""A look into on-failure destinations and dead-letter queues that leaves every message where it was."""

from __future__ import annotations

from typing import Any


def peek_messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Read every visible message, then make them visible again at once."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            handles.append(message["ReceiptHandle"])
            seen.setdefault(
                message["MessageId"],
                {
                    "messageId": message["MessageId"],
                    "body": message.get("Body", ""),
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": message.get("MessageAttributes", {}),
                },
            )
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
        )
    return list(seen.values())
