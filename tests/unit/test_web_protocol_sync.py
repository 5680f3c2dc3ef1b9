"""The JS client (clients/js) cannot drift from protocol.py: its reply types, limits and id patterns are
copies. Nor can the web app's copy of it (web/parley-client.js, which the static site serves) drift from it.

The module is imported by Node itself (`node -e`), so what is checked is what the browser runs; the
patterns it keeps to itself are read from its source.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any, get_args

import pytest

from parley import protocol
from parley.errors import ErrorCode
from tests.support.template import ROOT
from tests.support.ws_client import REPLY_TYPES
from tests.unit.test_protocol_doc import ENCODERS

WEB_PROTOCOL = ROOT / "clients" / "js" / "src" / "index.js"
WEB_COPY = ROOT / "web" / "parley-client.js"
SOURCE = WEB_PROTOCOL.read_text(encoding="utf-8")
# The client's LIMITS, each with the constant of protocol.py it copies.
LIMITS = {
    "textMax": protocol.MAX_TEXT,
    "textMaxBytes": protocol.MAX_TEXT_BYTES,
    "clientMsgIdMax": protocol.MAX_CLIENT_MSG_ID,
    "historyPage": protocol.HISTORY_DEFAULT,
    "joinWithoutSince": protocol.JOIN_RECENT,
    "threadPage": protocol.THREAD_DEFAULT,
}


@pytest.fixture(scope="module")
def web() -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node is needed to import the JS client"
    script = (
        f"import({json.dumps(WEB_PROTOCOL.as_uri())}).then((m) => console.log(JSON.stringify("
        "{limits: m.LIMITS, replyTypes: [...m.REPLY_TYPES]})))"
    )
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(out.stdout))


def js_regex(name: str) -> str:
    """The source of `const NAME = /.../;` in the JS client."""
    match = re.search(rf"^const {name} = /(.+)/;$", SOURCE, flags=re.MULTILINE)
    assert match, f"clients/js/src/index.js has no regex constant {name}"
    return match.group(1)


def pattern_of(annotated: Any) -> tuple[str, int | None, int | None]:
    """The pattern and the length bounds of one of protocol.py's constrained string types."""
    constraints = get_args(annotated)[1]
    return constraints.pattern, constraints.min_length, constraints.max_length


def test_reply_types_are_the_types_of_protocol_pys_replies(web):
    replies = {encode()["type"] for name, encode in ENCODERS.items() if not name.endswith("_event")}
    assert set(web["replyTypes"]) == replies
    assert replies == REPLY_TYPES  # and the tests' own client agrees


def test_every_web_limit_is_one_of_protocol_pys(web):
    assert web["limits"] == LIMITS


def test_the_channel_name_pattern_is_protocol_pys():
    pattern, _, _ = pattern_of(protocol.ChannelName)
    assert js_regex("CHANNEL_NAME") == pattern


def test_the_user_id_pattern_is_protocol_pys_with_its_length_bounds():
    # protocol.py states the characters as a pattern and the length as constraints; the web one regex
    pattern, low, high = pattern_of(protocol.UserId)
    characters = re.fullmatch(r"\^(.+)\+\$", pattern)
    assert characters and low is not None and high is not None, pattern
    assert js_regex("USER_ID") == f"^{characters.group(1)}{{{low},{high}}}$"


def test_message_ids_are_the_digits_the_web_client_orders_them_by():
    digits = re.fullmatch(r"\^\[0-9\]\{(\d+)\}\$", pattern_of(protocol.MessageId)[0])
    assert digits
    assert f"ids are {digits.group(1)}-digit strings" in SOURCE


def test_the_web_client_counts_text_bytes_as_the_server_does():
    # Given texts with every kind of character the two encoders could escape differently
    samples = ["hi", "\U0001f600" * 3, '"\\/', "\n\t\r\b\f", "".join(map(chr, range(32))), "\x7f\u2028\u00e9"]
    node = shutil.which("node")
    assert node
    script = (
        f"import({json.dumps(WEB_PROTOCOL.as_uri())}).then((m) => console.log(JSON.stringify("
        f"{json.dumps(samples)}.map(m.textBytes))))"
    )
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    # Then the JS client's textBytes is protocol.py's text_bytes for each
    assert json.loads(out.stdout) == [protocol.text_bytes(s) for s in samples]


def test_the_web_app_serves_the_package_module_unchanged():
    # The static site serves only web/, so the web app imports a copy: `make web-client` refreshes it
    stale = "web/parley-client.js differs from clients/js/src/index.js: make web-client"
    assert WEB_COPY.read_bytes() == WEB_PROTOCOL.read_bytes(), stale
    app = (ROOT / "web" / "app.js").read_text(encoding="utf-8")
    assert "from './parley-client.js';" in app


def declared_union(name: str) -> set[str]:
    """The string literals of `export type NAME = | 'a' | 'b' ...;` (or of its `action:` members)."""
    text = (ROOT / "clients" / "js" / "index.d.ts").read_text(encoding="utf-8")
    match = re.search(rf"^export type {name} =(.+?);$", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"clients/js/index.d.ts declares no type {name}"
    body = match.group(1)
    return set(re.findall(r"action: '([a-z_]+)'", body) or re.findall(r"'([a-z_]+)'", body))


def test_the_declared_error_codes_and_actions_are_protocol_pys():
    assert declared_union("ErrorCode") == {code.value for code in ErrorCode}
    assert declared_union("ClientFrame") == set(protocol.FRAMES)
