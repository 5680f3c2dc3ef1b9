"""docs/asyncapi.yaml is what scripts/asyncapi.py writes, and it describes every frame the code handles.

Frames the server sends are built as dicts by protocol.py; each encoder's output is validated here
against the spec's schema for it, so a key added to an encoder (or a new encoder) fails until the spec
says so. The document's validity as AsyncAPI is checked by @asyncapi/parser (scripts/test/).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs; pinned in requirements-dev

from parley import protocol
from parley.errors import ErrorCode
from scripts import asyncapi
from tests.support.template import ROOT
from tests.support.ws_client import REPLY
from tests.unit.test_protocol_doc import ENCODERS

SPEC_PATH = ROOT / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))


def payload_validator(spec: dict[str, Any], message: str) -> Draft202012Validator:
    """A validator for one message's payload, resolving its refs inside the spec."""
    payload = spec["components"]["messages"][message]["payload"]
    return Draft202012Validator({**payload, "components": spec["components"]})


def errors_of(validator: Draft202012Validator, frame: dict[str, Any]) -> list[str]:
    return [e.message for e in validator.iter_errors(frame)]


def test_the_committed_spec_is_what_the_script_writes():
    # Regenerate with `make asyncapi` after changing protocol.py, errors.py or scripts/asyncapi.py
    assert SPEC_PATH.read_text(encoding="utf-8") == asyncapi.render()


def test_the_check_mode_reports_a_stale_file(tmp_path, capsys):
    # Given a copy of the spec that someone edited by hand
    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(asyncapi.render().replace("version: '1'", "version: '2'"), encoding="utf-8")
    # Then --check fails and says what to run; the fresh file passes
    assert asyncapi.main(["--check", "--output", str(stale)]) == 1
    assert "make asyncapi" in capsys.readouterr().err
    asyncapi.main(["--output", str(stale)])
    assert asyncapi.main(["--check", "--output", str(stale)]) == 0


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_every_action_is_an_operation_with_its_reply(spec, action):
    operation = spec["operations"][f"receive_{action}"]
    assert operation["action"] == "receive"
    assert operation["messages"] == [{"$ref": f"#/channels/parley/messages/{action}"}]
    replies = [ref["$ref"].rsplit("/", 1)[1] for ref in operation["reply"]["messages"]]
    expected = ([f"{REPLY[action]}_reply"] if REPLY[action] else []) + ["error_reply"]
    assert replies == expected  # the same reply the shared test client waits for


@pytest.mark.parametrize("action", list(protocol.FRAMES))
def test_an_actions_schema_is_its_pydantic_models(spec, action):
    model = protocol.FRAMES[action]
    schema = spec["components"]["schemas"][model.__name__]
    expected = model.model_json_schema(by_alias=True, ref_template=asyncapi.REF)
    assert set(schema["properties"]) == set(expected["properties"])
    assert schema.get("required", []) == expected.get("required", [])
    assert schema["properties"]["action"]["const"] == action


def test_a_new_action_without_a_declared_reply_is_refused(monkeypatch):
    monkeypatch.setitem(protocol.FRAMES, "pin", protocol.HeartbeatFrame)
    with pytest.raises(SystemExit, match=r"no reply declared for action\(s\) \['pin'\]"):
        asyncapi.document()


def test_a_field_added_to_a_client_frame_appears_in_the_spec(monkeypatch):
    # Given an action whose model gains a field (as another engineer would add one)
    class JoinWithMood(protocol.JoinFrame):
        mood: str | None = None

    monkeypatch.setitem(protocol.FRAMES, "join", JoinWithMood)
    schema = asyncapi.document()["components"]["schemas"]["JoinWithMood"]
    assert "mood" in schema["properties"]


def message_name(encoder: str, frame: dict[str, Any]) -> str:
    return encoder if encoder.endswith("_event") else f"{frame['type']}_reply"


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_every_frame_the_server_sends_is_valid_against_its_schema(spec, encoder):
    frame = ENCODERS[encoder]()
    name = message_name(encoder, frame)
    fix = "describe it with a model in scripts/asyncapi.py, then run make asyncapi"
    assert name in spec["components"]["messages"], f"the spec has no {name!r} message: {fix}"
    assert errors_of(payload_validator(spec, name), frame) == [], fix


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_a_key_the_spec_does_not_know_fails_the_check(spec, encoder):
    # The schemas are closed: an encoder that grows a key must be described first
    frame = ENCODERS[encoder]() | {"surprise": 1}
    name = message_name(encoder, frame)
    assert any("surprise" in e for e in errors_of(payload_validator(spec, name), frame))


def test_a_batch_of_events_is_valid_and_a_nested_batch_is_not(spec):
    events = [protocol.encode(ENCODERS[name]()) for name in ENCODERS if name.endswith("_event")]
    batch = json.loads(protocol.batch_frame(events))
    validator = payload_validator(spec, "batch_event")
    assert errors_of(validator, batch) == []
    assert errors_of(validator, {"type": "batch", "events": [batch]}) != []


def test_optional_keys_of_sent_frames_are_optional_and_have_no_invented_default(spec):
    message = spec["components"]["schemas"]["MessageWire"]
    assert "clientMsgId" not in message["required"] and "default" not in message["properties"]["clientMsgId"]
    minimal = protocol.error(ErrorCode.INTERNAL, "boom", request_id="r1")
    assert errors_of(payload_validator(spec, "error_reply"), minimal) == []


def test_every_error_code_is_in_the_spec(spec):
    codes = spec["components"]["schemas"]["ErrorCode"]["enum"]
    assert codes == [code.value for code in ErrorCode]
    assert spec["x-parley-error-codes"] == codes


def test_the_handshake_needs_the_token_query_parameter(spec):
    binding = spec["channels"]["parley"]["bindings"]["ws"]
    assert binding["query"]["required"] == ["token"]
    scheme = spec["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("httpApiKey", "query", "token")


def test_limits_are_protocol_pys(spec):
    limits = spec["x-parley-limits"]
    assert limits["frameBudgetBytes"] == protocol.FRAME_BUDGET
    assert limits["textMaxBytes"] == protocol.MAX_TEXT_BYTES
    text = spec["components"]["schemas"]["MessageFrame"]["properties"]["text"]
    assert (text["maxLength"], text["x-parley-maxBytes"]) == (protocol.MAX_TEXT, protocol.MAX_TEXT_BYTES)
    history = spec["components"]["schemas"]["HistoryFrame"]["properties"]["limit"]
    assert (history["maximum"], history["default"]) == (protocol.HISTORY_MAX, protocol.HISTORY_DEFAULT)


def test_protocol_md_links_the_spec():
    assert "(asyncapi.yaml)" in (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
