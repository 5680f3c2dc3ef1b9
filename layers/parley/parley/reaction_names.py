"""The rule for a reaction's name: a short name (`thumbsup`, `+1`) or exactly one emoji.

A short name is 1 to 32 of `a-z 0-9 _ + -`. An emoji is one extended grapheme cluster (Unicode's
user-perceived character, UAX #29) made only of emoji code points: every code point has the Emoji or
Emoji_Component property (so ZWJ sequences, skin tones, flags and tag flags are in) and at least one
is Extended_Pictographic or a flag's Regional_Indicator; or it is a keycap (a digit, `#` or `*`, then
U+20E3). So a bare `#`, a lone skin tone, ZWJ or keycap mark is no emoji. A flag has its two
indicators, nothing asks for text presentation (U+FE0E), and it takes at most 64 bytes of UTF-8 (the
longest, a tag flag, takes 28). Letters, spaces, control, format and bidi characters fail the property
test itself. Names are compared exactly as sent: `❤` and `❤️` (with U+FE0F) are two names, so clients
send the fully-qualified form.

`regex` (not `re`) knows grapheme clusters and the emoji properties.
"""

from __future__ import annotations

import re

import regex

SHORT_NAME_MAX = 32
EMOJI_MAX_BYTES = 64
_SHORT = re.compile(rf"[a-z0-9_+-]{{1,{SHORT_NAME_MAX}}}")
_ONE_GRAPHEME = regex.compile(r"\X")
_EMOJI_POINTS = regex.compile(r"[\p{Emoji}\p{Emoji_Component}]+")
_PICTURE = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")
_KEYCAP = regex.compile(r"[0-9#*]\ufe0f?\u20e3")
_INDICATOR = regex.compile(r"\p{Regional_Indicator}")
_TEXT_PRESENTATION = "\ufe0e"


def reaction_name_problem(value: str) -> str | None:
    """Why `value` is not a reaction name, or None."""
    if _SHORT.fullmatch(value) or is_emoji(value):
        return None
    return f"must be a short name (1 to {SHORT_NAME_MAX} of a-z, 0-9, '_', '+', '-') or a single emoji"


def is_emoji(value: str) -> bool:
    """True if `value` is exactly one emoji, by the rule in this module's docstring."""
    if not value or len(value.encode("utf-8", "surrogatepass")) > EMOJI_MAX_BYTES:
        return False
    if _TEXT_PRESENTATION in value or not _ONE_GRAPHEME.fullmatch(value):
        return False
    if "\u20e3" in value:
        return bool(_KEYCAP.fullmatch(value))  # a keycap is a digit, `#` or `*` and its enclosing mark
    if not _EMOJI_POINTS.fullmatch(value) or not _PICTURE.search(value):
        return False
    return len(_INDICATOR.findall(value)) in (0, 2)
