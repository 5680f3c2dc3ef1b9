"""`--env-vars env.json`: override function environments in `sam local`'s format."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ws_emulator.errors import ConfigError
from ws_emulator.template.specs import Template

GLOBAL_KEY = "Parameters"  # sam local: values for every function

EnvVars = Mapping[str, Mapping[str, str]]


def _stringify(value: Any) -> str:
    # As sam-cli's EnvironmentVariables._stringify_value: booleans lower-case, lists/objects/null blank.
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def parse_env_vars(document: Any, source: str = "--env-vars") -> dict[str, dict[str, str]]:
    """`{"Parameters": {...}, "FunctionLogicalId": {...}}` validated, values as Lambda's strings."""
    if not isinstance(document, dict):
        raise ConfigError(f'{source}: expected a JSON object of function ids (or "Parameters") to objects')
    parsed: dict[str, dict[str, str]] = {}
    for key, variables in document.items():
        if not isinstance(variables, dict):
            raise ConfigError(
                f"{source}: {key!r} must map variable names to values, got {type(variables).__name__}"
            )
        for name in variables:
            if not name:
                raise ConfigError(f"{source}: {key!r} has an empty variable name")
        parsed[key] = {name: _stringify(value) for name, value in variables.items()}
    return parsed


def load_env_vars(path: Path | str) -> dict[str, dict[str, str]]:
    """Read and validate an env.json; a ConfigError names the file and the problem."""
    source = f"--env-vars {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it ({exc.strerror or exc})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    return parse_env_vars(document, source)


def apply_env_vars(template: Template, env_vars: EnvVars) -> tuple[Template, list[str]]:
    """The template with each function's variables overridden as `sam local` does, and notes.

    Like sam-cli, only variables the template defines for a function are overridden ("Parameters"
    first, then the function's own object, found by logical id, else by function name); a name the
    template does not define for any function is reported in a note and ignored.
    """
    if not env_vars:
        return template, []
    used: set[tuple[str, str]] = set()
    functions = {}
    for fid, spec in template.functions.items():
        own = env_vars.get(fid) or env_vars.get(spec.name) or {}
        own_key = fid if fid in env_vars else spec.name
        environment = dict(spec.environment)
        for key, values in ((GLOBAL_KEY, env_vars.get(GLOBAL_KEY, {})), (own_key, own)):
            for name, value in values.items():
                if name in environment:
                    environment[name] = value
                    used.add((key, name))
        changed = environment != spec.environment
        functions[fid] = dataclasses.replace(spec, environment=environment) if changed else spec
    notes = []
    known = set(template.functions) | {spec.name for spec in template.functions.values()} | {GLOBAL_KEY}
    for key in env_vars:
        if key not in known:
            notes.append(f'--env-vars: {key!r} is neither a function of the template nor "Parameters"')
            continue
        unused = sorted(name for name in env_vars[key] if (key, name) not in used)
        if unused:
            notes.append(
                f"--env-vars: {key} sets {', '.join(unused)}, which the template does not define there "
                "(ignored, as sam local does)"
            )
    return dataclasses.replace(template, functions=functions), notes
