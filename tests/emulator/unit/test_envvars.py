"""--env-vars: sam local's env.json format, its precedence, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ws_emulator.errors import ConfigError
from ws_emulator.runtime.envvars import apply_env_vars, load_env_vars, parse_env_vars
from ws_emulator.template.loader import load_template

FIXTURE = Path(__file__).parents[1] / "fixtures" / "devserver" / "template.yaml"


def test_parameters_apply_to_every_function_and_a_functions_own_object_wins():
    template = load_template(FIXTURE)
    env_vars = parse_env_vars(
        {"Parameters": {"COLOUR": "green", "SIZE": "medium"}, "EchoFunction": {"SIZE": "huge"}}
    )
    new, notes = apply_env_vars(template, env_vars)
    assert new.functions["EchoFunction"].environment["COLOUR"] == "green"
    assert new.functions["EchoFunction"].environment["SIZE"] == "huge"
    assert new.functions["RecorderFunction"].environment["COLOUR"] == "green"
    # SIZE is not defined for the recorder: not added (sam local overrides only declared variables)
    assert "SIZE" not in new.functions["RecorderFunction"].environment
    assert notes == []
    # the loaded template itself is unchanged
    assert template.functions["EchoFunction"].environment["SIZE"] == "small"


def test_a_function_is_found_by_its_name_too():
    template = load_template(FIXTURE)
    name = template.functions["EchoFunction"].name
    new, _ = apply_env_vars(template, parse_env_vars({name: {"SIZE": "by-name"}}))
    assert new.functions["EchoFunction"].environment["SIZE"] == "by-name"


def test_values_become_strings_as_sam_local_makes_them():
    parsed = parse_env_vars({"Parameters": {"A": True, "B": False, "C": 3, "D": None, "E": [1], "F": 1.5}})
    assert parsed["Parameters"] == {"A": "true", "B": "false", "C": "3", "D": "", "E": "", "F": "1.5"}


def test_unknown_functions_and_undeclared_variables_are_named_in_notes():
    template = load_template(FIXTURE)
    _, notes = apply_env_vars(
        template, parse_env_vars({"NoSuchFunction": {"X": "1"}, "EchoFunction": {"NOPE": "1"}})
    )
    assert any("NoSuchFunction" in n for n in notes)
    assert any("EchoFunction sets NOPE" in n for n in notes)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"EchoFunction": "SIZE=1"}', "'EchoFunction' must map variable names to values"),
        ('{"Parameters": {"": "x"}}', "empty variable name"),
        ("{not json", "not JSON"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_it(tmp_path: Path, content: str, message: str):
    path = tmp_path / "env.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_env_vars(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_env_vars(tmp_path / "missing.json")


def test_a_good_file_loads(tmp_path: Path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": "1"}}))
    assert load_env_vars(path) == {"Parameters": {"A": "1"}}
