"""Route selection for incoming WebSocket messages, as API Gateway evaluates RouteSelectionExpression."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ws_emulator.errors import EmulatorError

DEFAULT_ROUTE = "$default"
CONNECT_ROUTE = "$connect"
DISCONNECT_ROUTE = "$disconnect"

# `${request.body.a.b}` inside a template, or the whole expression written as `$request.body.a.b`.
_BRACED = re.compile(r"\$\{request\.body((?:\.[^.}]+)+)\}")
_BARE = re.compile(r"^\$request\.body((?:\.[^.\s]+)+)$")


class RouteSelectionError(EmulatorError, ValueError):
    """The expression uses a construct API Gateway would reject for WebSocket APIs."""


@dataclass(frozen=True)
class SelectionExpression:
    """A parsed expression: literal text interleaved with body paths (a literal-only one has no paths)."""

    parts: tuple[str | tuple[str, ...], ...]

    @property
    def is_literal(self) -> bool:
        return all(isinstance(part, str) for part in self.parts)


def parse_expression(expression: str) -> SelectionExpression:
    """Parse `$request.body.action`, `${request.body.a.b}/x` or a literal such as `chat`."""
    bare = _BARE.match(expression.strip())
    if bare:
        return SelectionExpression((_path(bare.group(1)),))
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _BRACED.finditer(expression):
        if match.start() > position:
            parts.append(expression[position : match.start()])
        parts.append(_path(match.group(1)))
        position = match.end()
    if position < len(expression):
        parts.append(expression[position:])
    if any(isinstance(part, str) and "$request" in part for part in parts):
        raise RouteSelectionError(f"unsupported route selection expression: {expression!r}")
    return SelectionExpression(tuple(parts))


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(segment for segment in dotted.split(".") if segment)


def evaluate(expression: SelectionExpression, body: str | None) -> str | None:
    """The route key the message asks for, or None when the body is not JSON or a key is missing."""
    if expression.is_literal:
        return "".join(part for part in expression.parts if isinstance(part, str))
    if body is None:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # too deeply nested is "not JSON" too: $default, not a crash
        return None
    pieces: list[str] = []
    for part in expression.parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        value = _lookup(document, part)
        if value is None:
            return None
        pieces.append(value)
    return "".join(pieces)


def _lookup(document: Any, path: tuple[str, ...]) -> str | None:
    node = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    # Objects and arrays cannot name a route; scalars are compared by their JSON text, strings as-is.
    if isinstance(node, str):
        return node
    if isinstance(node, bool | int | float):
        return json.dumps(node)
    return None


def select_route(expression: SelectionExpression, body: str | None, routes: Collection[str]) -> str | None:
    """The route that handles a message: its own key if defined, else `$default` if defined, else None."""
    key = evaluate(expression, body)
    if key is not None and key in routes and key not in (CONNECT_ROUTE, DISCONNECT_ROUTE):
        return key
    if DEFAULT_ROUTE in routes:
        return DEFAULT_ROUTE
    return None
