"""origins.py: the Host, Origin and content-type rules every endpoint of the emulator asks."""

from __future__ import annotations

import pytest

from ws_emulator.gateway.origins import AccessPolicy, is_loopback_host, normalize_origin, split_host

LOCAL = AccessPolicy.build("127.0.0.1", 3001)


@pytest.mark.parametrize(
    ("name", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_names_and_addresses(name, loopback):
    assert is_loopback_host(name) is loopback


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:3001", ("127.0.0.1", 3001)),
        ("[::1]:3001", ("::1", 3001)),
        ("Localhost", ("localhost", 80)),
        ("evil@127.0.0.1:3001", None),
        ("127.0.0.1:99999", None),
        ("", None),
        ("a b:1", None),
    ],
)
def test_host_headers_are_parsed_strictly(value, parsed):
    assert split_host(value) == parsed


def test_origins_are_normalized_and_paths_refused():
    assert normalize_origin("HTTP://LocalHost:5173/") == "http://localhost:5173"
    for bad in ("http://x/path", "localhost:5173", "null", "http://x?q", "http://u@x"):
        assert normalize_origin(bad) is None


def test_the_host_must_be_loopback_with_this_port():
    assert LOCAL.host_refusal("localhost:3001", 3001) is None
    assert LOCAL.host_refusal("localhost:3002", 3001).status == 421
    assert LOCAL.host_refusal("evil.example:3001", 3001).status == 421
    assert LOCAL.host_refusal("10.0.0.5:3001", 3001).status == 421
    assert LOCAL.host_refusal(None, 3001).status == 400


def test_a_wildcard_bind_accepts_ip_literals_and_the_machine_name_but_no_other_name():
    policy = AccessPolicy.build("0.0.0.0", 3001, machine_names=["devbox"])
    assert policy.host_refusal("192.168.1.20:3001", 3001) is None
    assert policy.host_refusal("DevBox:3001", 3001) is None
    assert policy.host_refusal("0.0.0.0:3001", 3001) is None
    assert policy.host_refusal("evil.example:3001", 3001).status == 421


def test_own_origins_are_the_page_ports_loopback_origins_and_a_specific_host():
    assert LOCAL.own_origins() == {"http://127.0.0.1:3001", "http://localhost:3001", "http://[::1]:3001"}
    lan = AccessPolicy.build("192.168.1.20", 3001)
    assert "http://192.168.1.20:3001" in lan.own_origins()


def test_admin_rules_origin_then_json_for_writes_with_a_body():
    assert LOCAL.admin_refusal("GET", None, None, has_body=False) is None
    assert LOCAL.admin_refusal("GET", "http://localhost:3001", None, has_body=False) is None
    assert LOCAL.admin_refusal("GET", "http://localhost:3002", None, has_body=False).status == 403
    assert LOCAL.admin_refusal("POST", None, "text/plain", has_body=True).status == 415
    assert LOCAL.admin_refusal("PUT", None, "Application/JSON; charset=utf-8", has_body=True) is None
    assert LOCAL.admin_refusal("DELETE", None, None, has_body=False) is None


def test_extra_origins_open_handshakes_only():
    policy = AccessPolicy.build("127.0.0.1", 3001, ["http://localhost:5173"])
    assert policy.handshake_refusal("http://localhost:5173") is None
    assert policy.handshake_refusal(None) is None
    assert policy.handshake_refusal("http://evil.example").status == 403
    assert policy.admin_refusal("GET", "http://localhost:5173", None, has_body=False).status == 403
    assert policy.connections_refusal("http://localhost:3001").status == 403
    assert policy.connections_refusal(None) is None
