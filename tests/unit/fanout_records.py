"""Builders of fan-out stream changes (images as Powertools deserialises them) for the fan-out tests."""

from __future__ import annotations

from typing import Any

from parley.fanout import StreamChange

WS = "acme"


def message_item(
    message_id: str, *, channel: str = "general", workspace: str = WS, **extra: Any
) -> dict[str, Any]:
    item = {
        "PK": f"WS#{workspace}#CHAN#{channel}",
        "SK": f"MSG#{message_id}",
        "kind": "message",
        "id": message_id,
        "workspace": workspace,
        "channel": channel,
        "ts": "2026-09-21T14:13:20.000Z",
        "userId": "alice",
        "userName": "Alice",
        "text": f"text of {message_id}",
    }
    item.update(extra)
    return item


def state_item(kind: str, user: str, *, channel: str = "general", workspace: str = WS) -> dict[str, Any]:
    prefix = {"typing": "TYPING", "presence": "PRES"}[kind]
    return {
        "PK": f"CHAN#{workspace}#{channel}",
        "SK": f"{prefix}#{user}",
        "kind": kind,
        "workspace": workspace,
        "channel": channel,
        "userId": user,
        "userName": user.title(),
    }


def change(
    sequence: str,
    event_name: str,
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
) -> StreamChange:
    return StreamChange(
        sequence=sequence,
        event_id=f"ev-{sequence}",
        event_name=event_name,
        new_image=new,
        old_image=old,
    )


def message_insert(sequence: str, message_id: str, **kwargs: Any) -> StreamChange:
    return change(sequence, "INSERT", new=message_item(message_id, **kwargs))


def typing_change(sequence: str, user: str, event_name: str = "INSERT", **kwargs: Any) -> StreamChange:
    item = state_item("typing", user, **kwargs)
    if event_name == "REMOVE":
        return change(sequence, event_name, old=item)
    return change(sequence, event_name, new=item, old=item if event_name == "MODIFY" else None)


def presence_join(sequence: str, user: str, **kwargs: Any) -> StreamChange:
    return change(sequence, "INSERT", new=state_item("presence", user, **kwargs))


def presence_leave(sequence: str, user: str, **kwargs: Any) -> StreamChange:
    return change(sequence, "REMOVE", old=state_item("presence", user, **kwargs))
