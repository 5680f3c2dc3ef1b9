"""Static files and the token endpoint on the WebSocket port: path rules, content types, replies."""

import json
from pathlib import PurePosixPath

import jwt
import pytest

from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET, mint_token
from ws_emulator.gateway.static_site import Site, content_type, static_file_path


@pytest.mark.parametrize(
    ("url_path", "expected"),
    [
        ("/", "index.html"),
        ("/app.js", "app.js"),
        ("/img/chat.png", "img/chat.png"),
        ("/img/", "img/index.html"),
        ("/a%20b.txt", "a b.txt"),
    ],
)
def test_url_paths_name_files_under_the_root(url_path, expected):
    assert static_file_path(url_path) == PurePosixPath(expected)


@pytest.mark.parametrize(
    "url_path",
    [
        "/../secret.txt",
        "/img/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%5csecret.txt",
        "/.env",
        "/.git/config",
        "//etc/passwd",
        "/a\\b",
        "/a%00.js",
        "relative.js",
    ],
)
def test_traversal_hidden_files_and_odd_bytes_are_refused(url_path):
    assert static_file_path(url_path) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("styles.css", "text/css; charset=utf-8"),
        ("chat.PNG", "image/png"),
        ("icon.svg", "image/svg+xml"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_content_types_do_not_depend_on_the_host(name, expected):
    assert content_type(name) == expected


@pytest.fixture
def site_root(tmp_path):
    root = tmp_path / "web"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>hi</title>")
    (root / "app.js").write_text("export const x = 1;")
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "sub").mkdir()
    return root


async def test_index_is_served_at_the_root_with_its_type(site_root):
    reply = await Site(site_root).respond("/", "")
    assert (reply.status, reply.body, reply.content_type) == (
        200,
        b"<!doctype html><title>hi</title>",
        "text/html; charset=utf-8",
    )
    assert ("X-Content-Type-Options", "nosniff") in reply.headers


async def test_missing_files_folders_without_index_and_escaping_symlinks_are_404(site_root):
    site = Site(site_root)
    for path in ("/nope.js", "/sub", "/sub/", "/escape.txt", "/../secret.txt"):
        reply = await site.respond(path, "")
        assert reply.status == 404, path
        assert b"secret" not in reply.body


async def test_without_a_static_root_only_the_token_path_is_answered():
    assert await Site(None).respond("/", "") is None
    site = Site(None, lambda sub, name: mint_token(DEV_TOKEN_SECRET, sub, name=name))
    reply = await site.respond("/_emulator/token", "sub=alice&name=Alice")
    token = json.loads(reply.body)["token"]
    claims = jwt.decode(token, DEV_TOKEN_SECRET, algorithms=["HS256"])
    assert (reply.status, claims["sub"], claims["name"]) == (200, "alice", "Alice")
    assert ("Cache-Control", "no-store") in reply.headers


async def test_token_path_without_tokens_enabled_is_just_a_missing_file(site_root):
    reply = await Site(site_root).respond("/_emulator/token", "sub=alice")
    assert reply.status == 404


async def test_token_without_sub_is_a_bad_request():
    reply = await Site(None, lambda sub, name: "t").respond("/_emulator/token", "name=Alice")
    assert reply.status == 400
    assert "sub" in json.loads(reply.body)["message"]
