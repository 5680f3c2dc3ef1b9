"""Mentions: which `@user` tokens of a message's text may name a user (pure), and resolving them
against the workspace's user directory (one BatchGetItem, and only when the text holds an `@`).

The syntax, against parley.names' user id rule (1 to 128 characters, no whitespace, no `#`):
an `@` at the start of the text or after whitespace, then the longest run of characters a user id may
hold. A user id may end in punctuation (`bob,` is a valid id), so a token also stands for itself with
its trailing punctuation cut off: `@bob,` mentions `bob,` if that user exists, else `bob`. Only ids
that exist in the directory are kept, in order of first mention, at most MAX_MENTIONS of them.
"""

from __future__ import annotations

import re
from typing import Protocol

from parley.names import USER_ID_MAX, user_id_problem

MAX_MENTIONS = 20
# Every candidate of a text is looked up in one BatchGetItem (at most 100 keys): two per token.
MAX_CANDIDATES = 2 * MAX_MENTIONS
_TOKEN = re.compile(rf"(?:^|(?<=\s))@([^\s#]{{1,{USER_ID_MAX}}})")
_TRAILING = ".,;:!?)]}>'\"…"


class Directory(Protocol):
    """The workspace's user directory, as mention resolution and `open_dm` read it."""

    def known_users(self, workspace: str, user_ids: list[str]) -> set[str]:
        """The ones of `user_ids` that are users of `workspace` (at most 100 per call)."""
        ...


def candidates(text: str) -> list[list[str]]:
    """Per `@` token, in order: the ids it may stand for, the longer first. Pure; no I/O."""
    if "@" not in text:
        return []
    found: list[list[str]] = []
    for match in _TOKEN.finditer(text):
        token = match.group(1)
        options = [token]
        cut = token.rstrip(_TRAILING)
        if cut and cut != token:
            options.append(cut)
        options = [o for o in options if user_id_problem(o) is None]
        if options:
            found.append(options)
        if len(found) == MAX_CANDIDATES // 2:
            break
    return found


def resolve(text: str, workspace: str, directory: Directory | None) -> tuple[str, ...]:
    """The user ids `text` mentions: no read at all unless it holds an `@` token."""
    tokens = candidates(text)
    if not tokens or directory is None:
        return ()
    wanted = list(dict.fromkeys(option for options in tokens for option in options))
    known = directory.known_users(workspace, wanted)
    mentioned: list[str] = []
    for options in tokens:
        hit = next((o for o in options if o in known), None)
        if hit is not None and hit not in mentioned:
            mentioned.append(hit)
        if len(mentioned) == MAX_MENTIONS:
            break
    return tuple(mentioned)
