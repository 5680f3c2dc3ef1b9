"""CloudFormation short-form YAML tags and intrinsic-function resolution (pure)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ws_emulator.errors import EmulatorError

# Ref/GetAtt of these yield nothing: the property is dropped, as CloudFormation does.
NO_VALUE: Any = object()

_SHORT_TAGS = (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "If",
    "Equals",
    "Select",
    "Split",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Condition",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
    "Length",
    "ToJsonString",
    "Transform",
)


class IntrinsicError(EmulatorError):
    """An intrinsic that cannot be resolved locally; the caller adds the logical id."""


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's `!Tag` shorthand."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if name == "Ref":
        return {"Ref": value}
    if name == "Condition":
        return {"Condition": value}
    if name == "GetAtt" and isinstance(value, str):
        # `!GetAtt A.B.C` splits on the first dot only: attribute names may contain dots.
        logical_id, _, attr = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attr]}
    return {f"Fn::{name}": value}


def _make_constructor(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return _construct_tag(loader, tag, node)

    return construct


for _tag in _SHORT_TAGS:
    _TemplateLoader.add_constructor(f"!{_tag}", _make_constructor(_tag))


def _no_dates(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # CloudFormation treats `2010-09-09` as a string; YAML would make it a date.
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _no_dates)


def load_yaml(path: Path) -> Any:
    """Parse a CloudFormation/SAM template (YAML or JSON) with short-form tags."""
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass


RefFn = Callable[[str], Any]
GetAttFn = Callable[[str, str], Any]
ConditionFn = Callable[[str], bool]

_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves intrinsics in a value tree given callbacks for Ref, GetAtt and conditions."""

    def __init__(
        self,
        *,
        ref: RefFn,
        get_att: GetAttFn,
        condition: ConditionFn,
        mappings: Mapping[str, Any],
        region: str,
    ) -> None:
        self._ref = ref
        self._get_att = get_att
        self._condition = condition
        self._mappings = mappings
        self._region = region

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in `value`; AWS::NoValue entries disappear from dicts and lists."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(self._as_str(self.resolve(arg), "Ref"))
            if key == "Condition" and isinstance(arg, str):
                return self._condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        out: dict[str, Any] = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def condition_value(self, value: Any) -> bool:
        """Evaluate a condition expression (Fn::Equals / And / Or / Not / Condition)."""
        result = self.resolve(value)
        if not isinstance(result, bool):
            raise IntrinsicError(f"condition does not evaluate to a boolean: {value!r}")
        return result

    @staticmethod
    def _as_str(value: Any, what: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise IntrinsicError(f"{what} expects a string, got {value!r}")
        return value

    def _function(self, name: str, arg: Any) -> Any:  # noqa: PLR0911, PLR0912, C901 - one dispatch table
        if name == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else self.resolve(arg)
            if not isinstance(parts, list) or len(parts) != 2:
                raise IntrinsicError(f"Fn::GetAtt expects [LogicalId, Attribute], got {arg!r}")
            return self._get_att(str(parts[0]), str(parts[1]))
        if name == "Fn::Sub":
            return self._sub(arg)
        if name == "Fn::Join":
            delim, items = self._pair(arg, name)
            values = self.resolve(items)
            if not isinstance(values, list):
                raise IntrinsicError(f"Fn::Join expects a list, got {values!r}")
            return self._as_str(delim, name).join(self._as_str(v, name) for v in values)
        if name == "Fn::Select":
            index, items = self._pair(arg, name)
            values = self.resolve(items)
            i = int(self.resolve(index))
            if not isinstance(values, list) or not 0 <= i < len(values):
                raise IntrinsicError(f"Fn::Select index {i} out of range for {values!r}")
            return values[i]
        if name == "Fn::Split":
            delim, source = self._pair(arg, name)
            return self._as_str(self.resolve(source), name).split(self._as_str(delim, name))
        if name == "Fn::If":
            if not isinstance(arg, list) or len(arg) != 3:
                raise IntrinsicError(f"Fn::If expects [Condition, then, else], got {arg!r}")
            chosen = arg[1] if self._condition(self._as_str(arg[0], name)) else arg[2]
            return self.resolve(chosen)
        if name == "Fn::Equals":
            a, b = self._pair(arg, name)
            return _norm(self.resolve(a)) == _norm(self.resolve(b))
        if name == "Fn::Not":
            if not isinstance(arg, list) or len(arg) != 1:
                raise IntrinsicError(f"Fn::Not expects one condition, got {arg!r}")
            return not self.condition_value(arg[0])
        if name in ("Fn::And", "Fn::Or"):
            if not isinstance(arg, list) or not arg:
                raise IntrinsicError(f"{name} expects a list of conditions, got {arg!r}")
            results = [self.condition_value(a) for a in arg]
            return all(results) if name == "Fn::And" else any(results)
        if name == "Fn::FindInMap":
            if not isinstance(arg, list) or len(arg) not in (3, 4):
                raise IntrinsicError(f"Fn::FindInMap expects [Map, TopKey, SecondKey], got {arg!r}")
            m, k1, k2 = (self._as_str(self.resolve(a), name) for a in arg[:3])
            try:
                return self._mappings[m][k1][k2]
            except (KeyError, TypeError):
                if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self.resolve(arg[3]["DefaultValue"])
                raise IntrinsicError(f"Fn::FindInMap: no {m}.{k1}.{k2} in Mappings") from None
        if name == "Fn::Base64":
            return base64.b64encode(self._as_str(self.resolve(arg), name).encode()).decode()
        if name == "Fn::GetAZs":
            return [f"{self._region}{z}" for z in "abc"]
        if name == "Fn::Length":
            values = self.resolve(arg)
            if not isinstance(values, list):
                raise IntrinsicError(f"Fn::Length expects a list, got {values!r}")
            return len(values)
        raise IntrinsicError(f"{name} is not supported by the emulator")

    @staticmethod
    def _pair(arg: Any, name: str) -> tuple[Any, Any]:
        if not isinstance(arg, list) or len(arg) != 2:
            raise IntrinsicError(f"{name} expects two arguments, got {arg!r}")
        return arg[0], arg[1]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            template, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            template, variables = (
                self._as_str(arg[0], "Fn::Sub"),
                {k: self.resolve(v) for k, v in arg[1].items()},
            )
        else:
            raise IntrinsicError(f"Fn::Sub expects a string or [string, {{vars}}], got {arg!r}")

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                # `${!Literal}` is CloudFormation's escape for a literal `${Literal}`.
                return "${" + expr[1:] + "}"
            if expr in variables:
                return self._as_str(variables[expr], "Fn::Sub")
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, _, attr = expr.partition(".")
                return self._as_str(self._get_att(logical_id, attr), "Fn::Sub")
            return self._as_str(self._ref(expr), "Fn::Sub")

        return _SUB_VAR.sub(replace, template)


def _norm(value: Any) -> Any:
    # Fn::Equals compares the string forms: `!Equals [!Ref Count, 1]` holds when Count is "1".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
