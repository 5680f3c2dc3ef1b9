"""The web client against links that name another server, and the page's own HTTP security headers."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.browser.conftest import PAGE_OPTIONS, Server
from tests.support.template import ROOT


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.add_init_script(f"window.parleyOptions = {json.dumps(PAGE_OPTIONS)};")
    yield context.new_page()
    context.close()


def link_to(server: Server, ws_url: str, user: str) -> str:
    token = server.token(user, f"link-{uuid.uuid4().hex[:8]}", user.capitalize())
    return server.page_url + "#" + urllib.parse.urlencode({"url": ws_url, "token": token})


def other_host(server: Server) -> str:
    """The emulator's own WebSocket URL under another host name: a server the page did not come from."""
    return server.ws_url.replace("ws://127.0.0.1:", "ws://localhost:", 1)


def test_a_link_to_another_server_asks_first_and_declining_does_not_connect(page: Page, server: Server):
    # Given a link that names a WebSocket server other than the page's own
    dialogs: list[str] = []
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    def decline(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", decline)
    # When the person opens it and declines
    page.goto(link_to(server, other_host(server), "mallory"))
    # Then they were shown the host, stay on the sign-in form, and no socket was ever opened
    expect(page.locator("#sign-in-error")).to_have_text(re.compile("declined"))
    expect(page.locator("#sign-in")).to_be_visible()
    port = server.ws_url.split(":")[2].split("/")[0]
    assert len(dialogs) == 1
    assert dialogs[0].startswith("confirm: ") and f"localhost:{port}" in dialogs[0]
    assert sockets == []
    assert "mallory" not in json.dumps(_connections(server))
    # ... and the token left the address bar
    assert "token" not in page.url


def test_accepting_the_prompt_connects_to_the_named_server(page: Page, server: Server):
    # Given the same kind of link, and a person who trusts the server it names
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(link_to(server, other_host(server), "trent"))
    # Then they were asked once, and after yes the page connects there
    expect(page.locator("#status")).to_have_attribute("data-status", "open")
    assert len(asked) == 1 and "localhost:" in asked[0]
    assert "trent" in json.dumps(_connections(server))


def test_the_page_cannot_be_framed_by_another_site(page: Page, server: Server):
    # Given another site's page (about:blank here: any origin but the client's own)
    # When it frames the client, then Chromium refuses it for frame-ancestors 'none'
    with page.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal:
        page.set_content(f'<iframe id="f" src="{server.page_url}"></iframe>')
    assert "has been blocked" in refusal.value.text
    expect(page.frame_locator("#f").locator("#demo-user")).to_have_count(0)


def test_the_header_csp_says_frame_ancestors_none_and_agrees_with_the_meta_tag(server: Server):
    with urllib.request.urlopen(server.page_url, timeout=10) as response:
        header = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = (ROOT / "web" / "index.html").read_text()
    meta = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert meta is not None
    directives = {d.strip() for d in header.split(";")}
    assert "frame-ancestors 'none'" in directives
    # A meta CSP cannot carry frame-ancestors; everything else is the same policy.
    assert {d.strip() for d in meta.group(1).split(";")} == directives - {"frame-ancestors 'none'"}


def _connections(server: Server) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{server.admin_url}/connections", timeout=10) as response:
        return list(json.load(response)["connections"])
