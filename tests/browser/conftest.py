"""Browser tests: web/ in real headless Chromium (Debian's, driven by Playwright) against the emulator.

The emulator serves Parley's template and web/ from a thread on OS-chosen ports, as tests/e2e does, with
a 1 s presence grace, a 3 s idle timeout (so the page's heartbeats are what keeps it connected) and a
rate limit of 5 messages, then 2 per second.
Playwright never downloads a browser here: `make browser` installs Debian's `chromium` when missing.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support import ws_client
from tests.support.emulator_thread import Served, emulator_in_thread, parley_config
from tests.support.template import ROOT
from ws_emulator.gateway.devtokens import DEV_TOKEN_SECRET

SCREENSHOTS = Path(__file__).parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IDLE_TIMEOUT_S = 3.0
RATE_BURST = 5
DEMO_WORKSPACE = "browser-demo"
# Shorter than the defaults so the suite stays quick: a heartbeat every second (the idle timeout is 3 s)
# and reconnects within a second.
PAGE_OPTIONS = {
    "heartbeatMs": 1000,
    "heartbeatJitterMs": 0,
    "backoffBaseMs": 200,
    "backoffCapMs": 1000,
    "channelsRefreshMs": 600_000,
}

expect.set_options(timeout=15_000)


@dataclass
class Server(Served):
    def token(self, user: str, workspace: str, name: str | None = None) -> str:
        return ws_client.token(self.secret, user, workspace, name=name)

    def connection_ids(self, user: str) -> list[str]:
        with urllib.request.urlopen(f"{self.emulator.admin_url}/connections", timeout=10) as response:
            connections = json.load(response)["connections"]
        return [c["connectionId"] for c in connections if (c["authorizer"] or {}).get("principalId") == user]

    def kill_connections(self, user: str) -> int:
        """DeleteConnection on every socket of a user: the server side hangs up, as API Gateway can."""
        ids = self.connection_ids(user)
        for cid in ids:
            url = f"{self.emulator.management_url}/@connections/{urllib.parse.quote(cid, safe='')}"
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10)
        return len(ids)


def _serve_in_thread() -> Iterator[Server]:
    config = parley_config(
        DEV_TOKEN_SECRET,
        # A small rate limit, so one page can run into it (its sends go one at a time, at ack pace).
        parameter_overrides={"RateBurst": str(RATE_BURST), "RatePerSecond": "2"},
        dev_token_secret=DEV_TOKEN_SECRET,
        dev_token_claims={"workspace": DEMO_WORKSPACE},
        static_dir=ROOT / "web",
        idle_timeout_s=IDLE_TIMEOUT_S,
    )
    with emulator_in_thread(config) as (emulator, _loop):
        yield Server(emulator, DEV_TOKEN_SECRET)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    yield from _serve_in_thread()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: `make browser` installs Debian's package", pytrace=False)
    browser = playwright_instance.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class ChatPage:
    """One user's tab, with the few reads the tests need."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        return self.page.locator("#message-list li.message .text").all_inner_texts()

    def sent_texts(self) -> list[str]:
        return self.page.locator('#message-list li.message[data-state="sent"] .text').all_inner_texts()

    def expect_connected(self) -> None:
        expect(self.page.locator("#status")).to_have_attribute("data-status", "open")

    def expect_ready(self) -> None:
        """Connected, and the open channel joined (its first page of history shown)."""
        self.expect_connected()
        expect(self.page.locator("#send-button")).to_be_enabled()

    def send(self, text: str) -> None:
        box = self.page.locator("#composer-text")
        box.fill(text)
        box.press("Enter")

    def presence(self) -> Any:
        return self.page.locator("#presence-list li")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def open_page(browser: Browser, server: Server) -> Iterator[Callable[..., ChatPage]]:
    """Opens a fresh browser context (one user) on the client; fails the test if a page threw."""
    pages: list[ChatPage] = []

    def opener(
        fragment: str = "",
        *,
        viewport: tuple[int, int] = (1100, 640),
        options: dict[str, Any] | None = None,
    ) -> ChatPage:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        context.add_init_script(f"window.parleyOptions = {json.dumps({**PAGE_OPTIONS, **(options or {})})};")
        page = context.new_page()
        chat = ChatPage(page, context)
        page.on("pageerror", lambda exc: chat.errors.append(str(exc)))
        # Nothing outside the emulator may ever be requested.
        page.on(
            "request",
            lambda request: (
                chat.errors.append(f"external request {request.url}")
                if not request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
                else None
            ),
        )
        page.goto(server.page_url + (f"#{fragment}" if fragment else ""))
        pages.append(chat)
        return chat

    yield opener
    errors = [error for chat in pages for error in chat.errors]
    for chat in pages:
        chat.context.close()
    assert not errors, errors


@pytest.fixture
def workspace() -> str:
    """A fresh workspace per test, so tests sharing one emulator never see each other's channels."""
    return f"web-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def as_user(open_page: Callable[..., ChatPage], server: Server, workspace: str) -> Callable[..., ChatPage]:
    """A page signed in like a deployed stack's user: WebSocket URL and token in the page address."""

    def opener(user: str, name: str | None = None, **kwargs: Any) -> ChatPage:
        token = server.token(user, workspace, name or user.capitalize())
        fragment = urllib.parse.urlencode({"url": server.ws_url, "token": token})
        return open_page(fragment, **kwargs)

    return opener


@pytest.fixture
def alice_and_bob(as_user: Callable[..., ChatPage]) -> tuple[ChatPage, ChatPage]:
    """Alice's and Bob's pages, both connected with #general joined."""
    alice, bob = as_user("alice", "Alice"), as_user("bob", "Bob")
    alice.expect_ready()
    bob.expect_ready()
    return alice, bob
