"""The events of a MODIFY of a message item: an edit, a delete, a thread's new summary (pure).

A message item changes only through parley.message_changes (edit, delete: `version` moves) and a
reply's transaction (its parent's `threadVersion` moves). Any other MODIFY of a message item (another
feature's attribute) gives no event. Each event carries the version it is ordered by, so a repeated
or out-of-order record is one a client drops.
"""

from __future__ import annotations

from typing import Any

from parley import protocol
from parley.store.items import as_int, message_from_item


def change_events(old_image: dict[str, Any] | None, new_image: dict[str, Any]) -> list[str]:
    """The encoded events of one MODIFY of a message item, in the order to send them."""
    old = old_image or {}
    message = message_from_item(new_image)
    events: list[dict[str, Any]] = []
    if message.deleted and "deletedAt" not in old:
        events.append(protocol.message_deleted_event(message))
    elif not message.deleted and message.version > as_int(old.get("version", 0)):
        events.append(protocol.message_updated_event(message))
    if message.thread_version > as_int(old.get("threadVersion", 0)):
        events.append(protocol.thread_updated_event(message))
    return [protocol.encode(e) for e in events]
