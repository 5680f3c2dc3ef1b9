"""The emulator's dashboard (/_emulator/) in headless Chromium: live connections, the feed, close, try it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.browser.conftest import DEMO_WORKSPACE, SCREENSHOTS, Server

# "Appears within a second": each wait below gives up after one second (a bound, not a measurement).
WITHIN_A_SECOND_MS = 1_000


@pytest.fixture
def dashboard(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda request: (
            errors.append(f"external request {request.url}")
            if not request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))
            else None
        ),
    )
    page.goto(server.emulator.dashboard_url)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    yield page
    context.close()
    assert not errors, errors


def test_a_connection_and_its_invocations_appear_and_closing_it_closes_the_clients_socket(
    dashboard: Page, server: Server
) -> None:
    # GIVEN the dashboard open, WHEN a client connects and joins a channel
    token = server.token("dash-alice", DEMO_WORKSPACE, "Alice")
    with connect(f"{server.ws_url}?token={token}", open_timeout=10) as client:
        client.send(json.dumps({"action": "join", "channel": "general"}))
        while json.loads(client.recv(timeout=10))["type"] != "joined":
            pass
        (cid,) = server.connection_ids("dash-alice")
        # THEN the connection is listed with its identity, and its invocations are in the feed
        row = dashboard.locator(f'#connections tr[data-connection-id="{cid}"]')
        expect(row).to_be_visible(timeout=WITHIN_A_SECOND_MS)
        expect(row).to_contain_text("dash-alice")
        join = dashboard.locator("#feed tbody tr", has_text="join").first
        expect(join).to_be_visible(timeout=WITHIN_A_SECOND_MS)
        expect(dashboard.locator("#feed tbody tr[data-trigger='authorizer']").first).to_be_visible()
        # AND a stream invocation (the presence fan-out) shows up too
        expect(dashboard.locator("#feed tbody tr[data-trigger='dynamodb']").first).to_be_visible()
        # WHEN an invocation is clicked THEN its event is shown, with the token replaced
        dashboard.locator("#feed tbody tr[data-trigger='authorizer']").first.click()
        expect(dashboard.locator("#detail-event")).to_contain_text('"token": "***"')
        assert token not in dashboard.content()
        # WHEN the connection is filtered for THEN only its invocations stay
        dashboard.locator("#filter-connection").fill(cid)
        expect(dashboard.locator("#feed tbody tr[data-trigger='dynamodb']")).to_have_count(0)
        dashboard.locator("#filter-clear").click()
        SCREENSHOTS.mkdir(exist_ok=True)
        dashboard.screenshot(path=str(SCREENSHOTS / "emulator-dashboard.png"), full_page=True)
        # WHEN its close button is clicked THEN the client's socket is closed by the server
        # (a heartbeat first: the suite's emulator ends connections idle for 3 s)
        client.send(json.dumps({"action": "heartbeat"}))
        while json.loads(client.recv(timeout=10))["type"] != "heartbeat":
            pass  # presence and other frames of the shared channel may come first
        row.locator("button.close-connection").click()
        with pytest.raises(ConnectionClosed):
            while True:
                client.recv(timeout=10)
        assert client.close_code == 1000
    expect(row).to_have_count(0)


def test_try_it_opens_a_socket_with_a_development_token_and_shows_replies(dashboard: Page) -> None:
    expect(dashboard.locator("#try-enabled")).to_be_visible()
    dashboard.locator("#try-user").fill("dash-bob")
    dashboard.locator("#try-open").click()
    expect(dashboard.locator("#try-state")).to_have_text("open as dash-bob")
    dashboard.locator("#try-frame").fill('{"action":"heartbeat"}')
    dashboard.locator("#try-send-button").click()
    expect(
        dashboard.locator("#try-log li.in", has_text='"type": "heartbeat"').or_(
            dashboard.locator("#try-log li.in", has_text='"type":"heartbeat"')
        )
    ).to_be_visible()
    # The try-it socket is a connection like any other: listed, with its user.
    expect(dashboard.locator("#connections tbody tr", has_text="dash-bob")).to_be_visible()
    dashboard.locator("#try-close").click()
    expect(dashboard.locator("#try-state")).to_have_text("closed")
