"""The web client in headless Chromium against the emulator: two users chatting, presence, typing,
private channels, recovery after a killed socket, heartbeats, paging, errors and narrow screens."""

from __future__ import annotations

import json
import re
import time
import uuid

from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.browser.conftest import IDLE_TIMEOUT_S, RATE_BURST, Server


def test_demo_sign_in_gets_its_token_from_the_emulator(open_page):
    # Given the sign-in page of the local emulator
    user = f"dana-{uuid.uuid4().hex[:6]}"
    chat = open_page()
    expect(chat.page.locator("#demo-user")).to_be_focused()
    chat.screenshot("sign-in")
    # When a person signs in as a demo user
    chat.page.locator("#demo-user").fill(user)
    chat.page.locator("#demo-name").fill("Dana")
    chat.page.locator("#demo-form button[type=submit]").click()
    # Then the page connects with a development token for that user and opens #general
    chat.expect_ready()
    expect(chat.page.locator("#me")).to_have_text(f"Dana ({user})")
    expect(chat.page.locator("#workspace")).to_have_text("workspace browser-demo")
    expect(chat.page.locator("#channel-title")).to_have_text("#general")
    expect(chat.presence().filter(has_text="Dana")).to_have_count(1)


def test_messages_appear_once_in_both_pages_in_order(alice_and_bob):
    # Given alice and bob in #general of a fresh workspace
    alice, bob = alice_and_bob
    # When they take turns writing (Shift+Enter makes a second line)
    alice.send("Hi Bob! Have you tried the new web client?")
    expect(bob.page.locator("#message-list .text")).to_have_text(
        ["Hi Bob! Have you tried the new web client?"]
    )
    bob.page.locator("#composer-text").fill("Yes: it reconnects by itself")
    bob.page.locator("#composer-text").press("Shift+Enter")
    bob.page.locator("#composer-text").type("and catches up on what it missed.")
    bob.page.locator("#composer-text").press("Enter")
    expect(alice.page.locator("#message-list .text")).to_have_count(2)
    alice.send("Nice. Presence and typing work too!")
    # Then both pages show the same three messages, once each, in order, none left pending
    expected = [
        "Hi Bob! Have you tried the new web client?",
        "Yes: it reconnects by itself\nand catches up on what it missed.",
        "Nice. Presence and typing work too!",
    ]
    for chat in (alice, bob):
        expect(chat.page.locator('#message-list li.message[data-state="sent"] .text')).to_have_text(expected)
        expect(chat.page.locator("#message-list li.message")).to_have_count(3)
    alice.screenshot("conversation-alice")
    # (typing keeps being announced while keys come, past the server's one-event-per-2-s window)
    bob.page.locator("#composer-text").type("Sure, let me show you", delay=150)
    expect(alice.page.locator("#typing")).to_have_text("Bob is typing…")
    alice.screenshot("chat-two-users")


def test_typing_shows_in_the_other_page_and_disappears(alice_and_bob):
    # Given alice and bob in #general
    alice, bob = alice_and_bob
    # When bob types without sending
    bob.page.locator("#composer-text").type("I am thinking")
    # Then alice sees it, bob does not see himself, and it goes away about 3 s after the last event
    expect(alice.page.locator("#typing")).to_have_text("Bob is typing…")
    expect(bob.page.locator("#typing")).to_have_text("")
    shown_at = time.monotonic()
    expect(alice.page.locator("#typing")).to_have_text("", timeout=8_000)
    assert time.monotonic() - shown_at > 1.5  # it lingered, as it should, rather than flicker


def test_presence_lists_both_then_shows_the_leave_after_the_grace(as_user):
    # Given alice and bob in #general
    alice = as_user("alice", "Alice")
    bob = as_user("bob", "Bob")
    # Then each page lists both
    for chat in (alice, bob):
        expect(chat.presence()).to_have_count(2)
        expect(chat.page.locator("#presence-list li[data-user=bob]")).to_be_visible()
    expect(alice.page.locator("#people-title")).to_have_text("In this channel (2)")
    # When bob closes his tab
    bob.context.close()
    # Then alice sees him leave once the 1 s grace is over
    expect(alice.page.locator("#presence-list li[data-user=bob]")).to_have_count(0)
    expect(alice.presence()).to_have_text(["Alice @alice"])


def test_a_private_channel_is_invisible_to_a_non_member_until_invited(alice_and_bob):
    alice, bob = alice_and_bob
    # Given alice creates a private channel
    alice.page.locator("#create-name").fill("secret-plans")
    alice.page.locator("#create-private").check()
    alice.page.locator("#create-name").press("Enter")
    expect(alice.page.locator("#channel-title")).to_have_text("#secret-plans")
    expect(alice.page.locator("#channel-kind")).to_have_text("private")
    alice.expect_ready()
    alice.send("only for members")
    # Then bob's channel list does not show it, even after a refresh
    bob.page.locator("#refresh-channels").click()
    expect(bob.page.locator("#channel-list [data-channel=random]")).to_be_visible()
    expect(bob.page.locator("#channel-list [data-name=secret-plans]")).to_have_count(0)
    # When alice invites bob
    alice.page.locator("#invite-user").fill("bob")
    alice.page.locator("#invite-user").press("Enter")
    expect(alice.page.locator("#notice")).to_have_text("Invited bob to #secret-plans.")
    # Then it appears for bob, who can open it and read what was said
    bob.page.locator("#refresh-channels").click()
    bob.page.locator("#channel-list [data-name=secret-plans]").click()
    expect(bob.page.locator("#message-list .text")).to_have_text(["only for members"])
    bob.expect_ready()
    bob.send("thanks for the invite")
    expect(alice.page.locator("#message-list .text")).to_have_text(
        ["only for members", "thanks for the invite"]
    )


def test_a_killed_socket_recovers_missed_messages_without_duplicates(open_page, server: Server):
    tag = uuid.uuid4().hex[:6]
    alice_id, bob_id = f"alice-{tag}", f"bob-{tag}"
    # Given two demo users in #general, bob has seen a first message
    alice = open_page(f"user={alice_id}&name=Alice")
    bob = open_page(f"user={bob_id}&name=Bob")
    alice.expect_ready()
    bob.expect_ready()
    alice.send(f"before {tag}")
    mine = bob.page.locator("#message-list li.message .text", has_text=tag)
    expect(mine).to_have_text([f"before {tag}"])
    # When the server hangs up on bob and his network stays down (no token can be fetched)
    bob.page.route("**/_emulator/token*", lambda route: route.abort("internetdisconnected"))
    assert server.kill_connections(bob_id) == 1
    expect(bob.page.locator("#status")).to_have_attribute("data-status", re.compile("waiting|connecting"))
    expect(bob.page.locator("#status")).to_contain_text("Offline")
    # and alice writes three messages meanwhile
    for n in (1, 2, 3):
        alice.send(f"missed {n} {tag}")
    expect(
        alice.page.locator('#message-list li.message[data-state="sent"] .text', has_text=tag)
    ).to_have_count(4)
    bob.screenshot("offline-bob")
    assert mine.all_inner_texts() == [f"before {tag}"]
    # Then once the network is back bob reconnects, re-joins with since, and has each message once, in order
    bob.page.unroute("**/_emulator/token*")
    bob.expect_connected()
    expect(bob.page.locator("#notice")).to_have_text("")  # the outage's messages are gone with it
    expected = [f"before {tag}", f"missed 1 {tag}", f"missed 2 {tag}", f"missed 3 {tag}"]
    expect(mine).to_have_text(expected)
    alice.send(f"after {tag}")
    expect(mine).to_have_text([*expected, f"after {tag}"])
    assert bob.page.evaluate("parley.client.connectionCount") == 2
    bob.screenshot("recovered-bob")


def test_heartbeats_keep_an_idle_page_connected_past_the_idle_timeout(as_user):
    # Given a page that heartbeats every second and one that would not for a minute
    beating = as_user("alice", "Alice")
    silent = as_user("bob", "Bob", options={"heartbeatMs": 60_000})
    beating.expect_ready()
    silent.expect_ready()
    # When both sit idle for longer than the emulator's idle timeout
    time.sleep(IDLE_TIMEOUT_S + 1.5)
    # Then the heartbeating page kept its one socket; the silent one was closed and had to reconnect
    assert beating.page.evaluate("parley.client.connectionCount") == 1
    beating.expect_connected()
    assert silent.page.evaluate("parley.client.connectionCount") >= 2


def _seed(server: Server, workspace: str, writer: str, texts: list[str]) -> None:
    """Post texts as one writer; a socket the idle timeout closes (cold starts queue up here) is
    replaced and the rest re-sent, with clientMsgIds so nothing is stored twice."""
    todo = list(texts)
    while todo:
        try:
            with connect(f"{server.ws_url}?token={server.token(writer, workspace)}") as ws:
                ws.send(json.dumps({"action": "join", "channel": "general"}))
                while json.loads(ws.recv(10)).get("type") != "joined":
                    pass  # presence events may come first
                while todo:
                    frame = {
                        "action": "message",
                        "channel": "general",
                        "text": todo[0],
                        "clientMsgId": todo[0],
                    }
                    ws.send(json.dumps(frame))
                    while json.loads(ws.recv(10)).get("type") != "ack":
                        pass
                    todo.pop(0)
        except ConnectionClosed:
            continue


def test_older_messages_load_when_scrolling_up(as_user, server: Server, workspace: str):
    # Given 55 messages in #general: one page of 50 and five older ones, from writers taking turns (each
    # within the rate limit's burst). One at a time: moto, under the emulator, does not make concurrent
    # DynamoDB transactions atomic, so parallel writers to one channel can overwrite each other there.
    texts = [f"seed {i:02d}" for i in range(55)]
    for i in range(0, len(texts), RATE_BURST):
        _seed(server, workspace, f"writer{i}", texts[i : i + RATE_BURST])
    # When bob opens the channel, he gets the newest 50
    bob = as_user("bob", "Bob")
    items = bob.page.locator("#message-list li.message")
    expect(items).to_have_count(50)
    expect(bob.page.locator("#older")).to_have_text("Scroll up for older messages")
    newest = items.evaluate_all("lis => lis.map(li => li.dataset.id)")
    # and scrolls to the top
    bob.page.locator("#messages").evaluate("box => box.scrollTop = 0")
    # Then the older five are loaded above, each once, all in id order
    expect(items).to_have_count(55)
    ids = items.evaluate_all("lis => lis.map(li => li.dataset.id)")
    assert ids == sorted(set(ids)) and ids[5:] == newest
    assert bob.texts() == texts
    expect(bob.page.locator("#older")).to_have_text("This is the beginning of #general.")


def test_rate_limited_messages_show_a_notice_and_still_arrive_once_in_order(alice_and_bob):
    # Given alice in #general, bob watching
    alice, bob = alice_and_bob
    # When alice sends twice the burst the rate limit allows
    count = 2 * RATE_BURST
    box = alice.page.locator("#composer-text")
    for i in range(count):
        box.fill(f"burst {i:02d}")
        box.press("Enter")
    # Then she is told, and the refused ones are retried until every message arrives once, in order
    expect(alice.page.locator("#notice")).to_contain_text("rate limited")
    expected = [f"burst {i:02d}" for i in range(count)]
    expect(bob.page.locator("#message-list .text")).to_have_text(expected)
    expect(alice.page.locator('#message-list li.message[data-state="sent"] .text')).to_have_text(expected)


def test_a_too_long_message_is_refused_with_a_clear_error(as_user):
    alice = as_user("alice", "Alice")
    alice.expect_ready()
    # When alice tries to send 4001 characters
    alice.send("x" * 4001)
    # Then she is told why, nothing is sent, and her text is kept for editing
    expect(alice.page.locator("#notice")).to_have_text("Too long: 4001 characters, the limit is 4000.")
    expect(alice.page.locator("#notice")).to_have_attribute("data-level", "error")
    expect(alice.page.locator("#message-list li")).to_have_count(0)
    assert len(alice.page.locator("#composer-text").input_value()) == 4001


def test_a_narrow_screen_is_readable_and_usable_from_the_keyboard(as_user):
    # Given a phone-sized window
    alice = as_user("alice", "Alice", viewport=(380, 720))
    alice.expect_ready()
    page = alice.page
    # Then nothing overflows sideways and the channel list waits behind a button
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#sidebar")).to_be_hidden()
    # When the keyboard opens the channel list and picks #random
    page.locator("#toggle-channels").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#channel-list [data-channel=general]")).to_be_focused()
    alice.screenshot("narrow-channels")
    page.keyboard.press("Tab")
    expect(page.locator("#channel-list [data-channel=random]")).to_be_focused()
    page.keyboard.press("Enter")
    # Then the drawer closes on #random, and a message goes out with Enter
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#channel-title")).to_have_text("#random")
    alice.expect_ready()
    page.locator("#composer-text").focus()
    page.keyboard.type("hello from a small screen")
    page.keyboard.press("Enter")
    expect(page.locator('#message-list li.message[data-state="sent"] .text')).to_have_text(
        ["hello from a small screen"]
    )
    alice.screenshot("narrow")
