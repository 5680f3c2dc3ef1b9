"""The `edit`, `delete` and `thread` use cases: changes to a posted message, and paging a thread.

Each change is a compare-and-set on the message's `version` (read it, decide, write on condition that
it is still the version read), so two changes never overwrite each other unseen, and a repeated edit
or delete (a client's retry) changes nothing and answers as the first did. The fan-out turns the
stream's MODIFY into `message_updated` / `message_deleted`, which carry the version: stream records
are delivered at least once and may interleave, so clients keep, per message, the highest version
they saw (parley.fanout).
"""

from __future__ import annotations

from parley import protocol
from parley.chat import Chat, Reply
from parley.clock import iso_ms
from parley.errors import Conflict, Forbidden, NotFound, StoreError
from parley.models import Caller, Message

CAS_ATTEMPTS = 3  # re-reads when the message changed between the read and the write


def edit(chat: Chat, caller: Caller, frame: protocol.EditFrame) -> Reply:
    """Replace the text of one's own message. The same text again is a repeat: answered with the
    current version, nothing written. With `version`, a message that has changed since is a conflict."""
    chat._require_joined(caller, frame.channel)
    taken = False
    for _ in range(CAS_ATTEMPTS):
        seen = _live(chat, caller, frame.channel, frame.message_id)
        if seen.user.id != caller.user.id:
            raise Forbidden("only its author may edit a message")
        if seen.text == frame.text:
            return Reply(protocol.edited(seen))  # a repeated edit (or none at all): nothing written
        if frame.version is not None and frame.version != seen.version:
            raise Conflict(
                f"message '{seen.id}' changed since version {frame.version} (it is at {seen.version}); "
                "edit its current text"
            )
        if not taken:
            chat._take_rate(caller.workspace, caller.user.id, "edit")
            taken = True
        written = chat.store.replace_text(seen, frame.text, iso_ms(chat.clock.now_ms()))
        if written is not None:
            return Reply(protocol.edited(written))
    raise StoreError("edit contention: the message kept changing")


def delete(chat: Chat, caller: Caller, frame: protocol.DeleteFrame) -> Reply:
    """Delete one's own message, or any as a workspace admin; its text goes, a tombstone stays. A
    message already deleted answers with its tombstone, nothing written. A reply's thread counts one
    reply fewer."""
    chat._require_joined(caller, frame.channel)
    taken = False
    for _ in range(CAS_ATTEMPTS):
        seen = chat.store.current_message(caller.workspace, frame.channel, frame.message_id)
        if seen is None:
            raise NotFound(f"no message '{frame.message_id}' in '{frame.channel}'")
        if seen.user.id != caller.user.id and not caller.admin:
            raise Forbidden("only its author or a workspace admin may delete a message")
        if seen.deleted:
            return Reply(protocol.deleted(seen))  # a repeated delete
        if not taken:
            chat._take_rate(caller.workspace, caller.user.id, "delete")
            taken = True
        tombstone = chat.store.tombstone(seen, iso_ms(chat.clock.now_ms()))
        if tombstone is not None:
            return Reply(protocol.deleted(tombstone))
    raise StoreError("delete contention: the message kept changing")


def thread(chat: Chat, caller: Caller, frame: protocol.ThreadFrame) -> Reply:
    """A page of a thread's replies (tombstones included), oldest first, with the parent as it is now."""
    chat._require_joined(caller, frame.channel)
    parent = chat.store.get_message(caller.workspace, frame.channel, frame.thread_id)
    if parent is None or parent.thread_id is not None:
        raise NotFound(f"no thread '{frame.thread_id}' in '{frame.channel}'")
    chat._take_rate(caller.workspace, caller.user.id, "thread")
    page = chat.store.thread_replies(caller.workspace, frame.channel, parent.id, frame.after, frame.limit)
    return Reply(protocol.thread(parent, page.messages, page.has_more))


def _live(chat: Chat, caller: Caller, channel: str, message_id: str) -> Message:
    message = chat.store.current_message(caller.workspace, channel, message_id)
    if message is None or message.deleted:
        raise NotFound(f"no message '{message_id}' in '{channel}'")
    return message
