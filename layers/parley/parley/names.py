"""The rules for the identifiers and names a token or a frame carries: one definition, used by the
authorizer (`auth`) and the wire protocol (`protocol`), so a user id the one accepts the other accepts.

Every rule is a full-string match (`re.fullmatch`: Python's `$` lets a trailing newline through), and
no identifier or display name may hold a control, format or bidi character, nor a line or paragraph
separator (Unicode categories Cc, Cf, Zl, Zp): they could rewrite how a name reads on screen
(U+202E turns "alice" around) or split a log line.
"""

from __future__ import annotations

import re
import unicodedata

USER_ID_MAX = 128
NAME_MAX = 100
WORKSPACE_MAX = 64
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_USER_ID = re.compile(rf"[^\s#]{{1,{USER_ID_MAX}}}")
_WORKSPACE = re.compile(rf"[A-Za-z0-9_.-]{{1,{WORKSPACE_MAX}}}")


def invisible_characters(value: str) -> bool:
    """True if `value` holds a character of a refused category (Cc, Cf, Zl, Zp) or a lone surrogate."""
    return any(unicodedata.category(ch) in REFUSED_CATEGORIES or "\ud800" <= ch <= "\udfff" for ch in value)


def user_id_problem(value: str) -> str | None:
    """Why `value` is not a user id (1 to 128 characters, no whitespace, no '#'), or None."""
    if not _USER_ID.fullmatch(value):
        return f"must be 1 to {USER_ID_MAX} characters with no whitespace and no '#'"
    if invisible_characters(value):
        return "must not contain control, format or bidi characters"
    return None


def workspace_problem(value: str) -> str | None:
    """Why `value` is not a workspace id (1 to 64 of A-Z a-z 0-9 _ . -), or None."""
    if not _WORKSPACE.fullmatch(value):
        return f"must be 1 to {WORKSPACE_MAX} characters of A-Z, a-z, 0-9, '_', '.', '-'"
    return None


def name_problem(value: str) -> str | None:
    """Why `value` is not a display name (1 to 100 characters, not only spaces), or None."""
    if not 0 < len(value) <= NAME_MAX or not value.strip():
        return f"must be 1 to {NAME_MAX} characters, not only spaces"
    if invisible_characters(value):
        return "must not contain control, format or bidi characters"
    return None
