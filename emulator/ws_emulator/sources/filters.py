"""Lambda event filtering (FilterCriteria patterns, EventBridge syntax) over stream records (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ws_emulator.errors import EmulatorError

MAX_PATTERNS = 5  # AWS's default quota of filters per event source mapping
_NUMERIC_OPS = {"=", ">", ">=", "<", "<="}
_STRING_OPS = {"prefix", "suffix", "equals-ignore-case", "wildcard"}
_MISSING = object()


class FilterError(EmulatorError, ValueError):
    """A pattern AWS would reject (or that the emulator does not implement)."""


def validate_pattern(pattern: Any, path: str = "") -> None:
    """Raise FilterError when `pattern` is not a valid filter pattern."""
    if not isinstance(pattern, dict) or not pattern:
        raise FilterError(f"{path or 'pattern'}: must be a non-empty JSON object")
    for key, rule in pattern.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2:
                raise FilterError(f"{where}: $or needs a list of at least two patterns")
            for i, sub in enumerate(rule):
                validate_pattern(sub, f"{where}[{i}]")
        elif isinstance(rule, dict):
            validate_pattern(rule, where)
        elif isinstance(rule, list):
            for matcher in rule:
                _validate_matcher(matcher, where)
        else:
            raise FilterError(f"{where}: a leaf must be a list of values/matchers, got {rule!r}")


def _validate_matcher(matcher: Any, where: str) -> None:  # noqa: C901, PLR0912 - one check per operator
    if matcher is None or isinstance(matcher, str | int | float | bool):
        return
    if not isinstance(matcher, dict) or len(matcher) != 1:
        raise FilterError(f"{where}: bad matcher {matcher!r}")
    ((op, arg),) = matcher.items()
    if op in ("prefix", "suffix"):
        if (
            isinstance(arg, dict)
            and set(arg) == {"equals-ignore-case"}
            and isinstance(arg["equals-ignore-case"], str)
        ):
            return
        if not isinstance(arg, str):
            raise FilterError(f"{where}: {op} needs a string")
    elif op in ("equals-ignore-case", "wildcard"):
        if not isinstance(arg, str):
            raise FilterError(f"{where}: {op} needs a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise FilterError(f"{where}: exists needs true or false")
    elif op == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise FilterError(f"{where}: numeric needs [op, n] or [op, n, op, n]")
        for i in range(0, len(arg), 2):
            if (
                arg[i] not in _NUMERIC_OPS
                or isinstance(arg[i + 1], bool)
                or not isinstance(arg[i + 1], int | float)
            ):
                raise FilterError(f"{where}: bad numeric condition {arg!r}")
    elif op == "anything-but":
        if isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in _STRING_OPS:
                raise FilterError(
                    f"{where}: anything-but takes values, prefix, suffix, equals-ignore-case, wildcard"
                )
        elif isinstance(arg, list) and (not arg or any(isinstance(v, dict | list) for v in arg)):
            raise FilterError(f"{where}: anything-but needs a non-empty list of values")
    else:
        raise FilterError(f"{where}: operator {op!r} is not supported")


def matches_any(patterns: Sequence[dict[str, Any]], record: Any) -> bool:
    """Filters are OR-ed; no filters means every record passes."""
    return not patterns or any(matches(p, record) for p in patterns)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when `event` satisfies every field of `pattern` (and one branch of each $or)."""
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(sub, event) for sub in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if not _matches_nested(rule, value):
                return False
        elif not _matches_leaf(rule, value):
            return False
    return True


def _matches_nested(rule: dict[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        # Arrays of objects flatten: any element that satisfies the sub-pattern will do.
        return any(matches(rule, v) for v in value if isinstance(v, dict)) or (
            not any(isinstance(v, dict) for v in value) and matches(rule, {})
        )
    # A missing or scalar parent still lets {"exists": false} below it match.
    return matches(rule, value if isinstance(value, dict) else {})


def _matches_leaf(rule: list[Any], value: Any) -> bool:
    present = value is not _MISSING and not isinstance(value, dict)
    if isinstance(value, list):
        candidates = value
        present = bool(value)
    else:
        candidates = [value]
    for matcher in rule:
        if isinstance(matcher, dict) and "exists" in matcher:
            if matcher["exists"] == present:
                return True
            continue
        if present and any(_matches_value(matcher, c) for c in candidates):
            return True
    return False


def _equal(expected: Any, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return isinstance(expected, str) and isinstance(actual, str) and expected == actual


def _string_op(op: str, arg: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    actual: str = value
    text = str(arg)
    if isinstance(arg, dict):  # {"prefix": {"equals-ignore-case": "x"}}
        text, actual = str(arg["equals-ignore-case"]).lower(), actual.lower()
    if op == "prefix":
        return actual.startswith(text)
    if op == "suffix":
        return actual.endswith(text)
    if op == "equals-ignore-case":
        return actual.lower() == text.lower()
    # wildcard: only `*` is special
    regex = ".*".join(re.escape(part) for part in text.split("*"))
    return re.fullmatch(regex, actual, flags=re.DOTALL) is not None


def _numeric(conditions: list[Any], actual: Any) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False  # DynamoDB "N" values are strings, so numeric never matches them (as on AWS)
    for i in range(0, len(conditions), 2):
        op, bound = conditions[i], float(conditions[i + 1])
        ok = {
            "=": actual == bound,
            ">": actual > bound,
            ">=": actual >= bound,
            "<": actual < bound,
            "<=": actual <= bound,
        }[op]
        if not ok:
            return False
    return True


def _matches_value(matcher: Any, actual: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, actual)
    ((op, arg),) = matcher.items()
    if op in _STRING_OPS:
        return _string_op(op, arg, actual)
    if op == "numeric":
        return _numeric(arg, actual)
    if op == "anything-but":
        return not _excluded(arg, actual)
    return False


def _excluded(arg: Any, actual: Any) -> bool:
    if isinstance(arg, dict):
        ((sub_op, sub_arg),) = arg.items()
        options = sub_arg if isinstance(sub_arg, list) else [sub_arg]
        return any(_string_op(sub_op, a, actual) for a in options)
    return any(_equal(e, actual) for e in (arg if isinstance(arg, list) else [arg]))
