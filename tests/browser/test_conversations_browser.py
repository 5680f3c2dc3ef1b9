"""Direct messages, unread and mention badges (the server's read state) and mentions in the web client,
in real headless Chromium against the emulator."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ChatPage

# Pages that read the channel list again every second, so a DM someone else opened shows up quickly
# (the protocol tells a member nothing when another opens a DM with them: the next `channels` lists it).
QUICK_LIST = {"channelsRefreshMs": 1000}
# Pages that read it only when they connect: whatever changes their badges later is a pushed event.
SLOW_LIST = {"channelsRefreshMs": 600_000}


def dm_button(chat: ChatPage, shown: str):
    return chat.page.locator(f'#dm-list button.channel-button[data-name="{shown}"]')


def channel_button(chat: ChatPage, channel: str):
    return chat.page.locator(f"#channel-list [data-channel={channel}]")


def open_dm(chat: ChatPage, users: str, title: str) -> None:
    """Start (or find) a DM from the sidebar's "+", and wait until it is open and joined."""
    chat.page.locator("#new-dm").click()
    chat.page.locator("#dm-users").fill(users)
    chat.page.locator("#dm-users").press("Enter")
    expect(chat.page.locator("#channel-title")).to_have_text(title)
    chat.expect_ready()


# The page's listing entry for a channel id, or for the DM with that member.
ENTRY = """(key) => parley.client.directory.find((c) => c.id === key
  || (c.dm && c.members.some((m) => m.id === key)))"""


def expect_server_counts(page: Page, key: str, unread: int, mentions: int) -> None:
    """Wait until the server has counted: the listing (`channels`) says these counts."""
    page.wait_for_function(
        f"""([key, unread, mentions]) => {{
          const e = ({ENTRY})(key);
          return Boolean(e) && e.unread === unread && e.mentions === mentions;
        }}""",
        arg=[key, unread, mentions],
        timeout=20_000,
    )


def expect_marked_read(page: Page, key: str) -> None:
    """Wait until the server answered the page's mark at the conversation's newest message, nothing left."""
    page.wait_for_function(
        f"""(key) => {{
          const e = ({ENTRY})(key);
          const state = e && parley.client.channels.get(e.id);
          return Boolean(state) && e.readMark === state.timeline.lastId && e.unread === 0 && e.mentions === 0;
        }}""",
        arg=key,
        timeout=20_000,
    )


def test_a_dm_alice_opens_shows_in_bobs_sidebar_unread_until_he_opens_it(as_user):
    # Given alice and bob connected (bob has connected, so he is a user of the workspace)
    bob = as_user("bob", "Bob", options=QUICK_LIST)
    bob.expect_ready()
    alice = as_user("alice", "Alice")
    alice.expect_ready()
    expect(bob.page.locator("#dm-empty")).to_be_visible()
    # When alice starts a DM with bob from the sidebar's "+" and writes in it
    open_dm(alice, "bob", "Bob")
    expect(alice.page.locator("#channel-kind")).to_have_text("direct message")
    expect(alice.page.locator("#invite-form")).to_be_hidden()  # a DM's members are fixed
    alice.send("Hi Bob, a word in private?")
    expect(dm_button(alice, "Bob")).to_have_attribute("aria-current", "true")
    # Then bob's sidebar lists the DM by alice's name (not its dm. id) with one unread message
    button = dm_button(bob, "Alice")
    expect(button).to_have_attribute("aria-label", "direct message with Alice, 1 unread")
    expect(button.locator(".badge")).to_have_text("1")
    expect(bob.page.locator("#dm-empty")).to_be_hidden()
    expect(bob.page.locator("#channel-title")).to_have_text("#general")
    # When bob opens it
    button.click()
    # Then alice's message is there, the badge is gone, and the server's read state follows
    expect(bob.page.locator("#channel-title")).to_have_text("Alice")
    expect(bob.page.locator("#message-list .text")).to_have_text(["Hi Bob, a word in private?"])
    expect(button.locator(".badge")).to_have_count(0)
    expect(button).to_have_attribute("aria-label", "direct message with Alice")
    expect_marked_read(bob.page, "alice")
    # and his answer reaches alice in the same conversation
    bob.send("Sure, go ahead.")
    expect(alice.page.locator("#message-list .text")).to_have_text(
        ["Hi Bob, a word in private?", "Sure, go ahead."]
    )
    # and opening it again from alice's "+" (bob and alice, in any order) is the same conversation
    channel_button(alice, "general").click()
    alice.expect_ready()
    open_dm(alice, "bob, alice", "Bob")
    expect(alice.page.locator("#message-list .text")).to_have_count(2)
    expect(alice.page.locator("#dm-list button.channel-button")).to_have_count(1)


def test_a_mention_in_a_channel_bob_is_not_looking_at_shows_a_mention_badge(as_user):
    # Given bob, who came by #general, now reading his DM with alice
    bob = as_user("bob", "Bob", options=QUICK_LIST)
    bob.expect_ready()
    alice = as_user("alice", "Alice")
    alice.expect_ready()
    open_dm(bob, "alice", "Alice")
    # When alice writes twice in #general, mentioning bob once
    alice.send("Deploy is done.")
    alice.send("@bob, can you check the <b>dashboards</b>?")
    # Then bob's #general shows the mention apart from the unread count, and says both
    general = channel_button(bob, "general")
    expect(general).to_have_attribute("aria-label", "channel general, 2 unread, 1 mention")
    expect(general.locator(".badge")).to_have_text("@1")
    expect(general.locator(".badge")).to_have_class(re.compile(r"\bmention-badge\b"))
    # and alice's page shows the mention in her text, highlighted, not as hers
    mention = alice.page.locator("#message-list .text .mention")
    expect(mention).to_have_text("@bob")
    expect(mention).not_to_have_class(re.compile(r"\bmention-me\b"))
    # When bob opens #general
    general.click()
    # Then the badge is gone, and the mention of him is highlighted as his, its comma left as text
    expect(general.locator(".badge")).to_have_count(0)
    expect(general).to_have_attribute("aria-current", "true")
    mine = bob.page.locator("#message-list .text .mention-me")
    expect(mine).to_have_text("@bob")
    # and the text around it stays text: markup in it is shown, never parsed
    asked = bob.page.locator("#message-list .text").nth(1)
    expect(asked).to_have_text("@bob, can you check the <b>dashboards</b>?")
    expect(bob.page.locator("#message-list .text b")).to_have_count(0)


def test_reading_in_one_of_bobs_pages_clears_the_badge_in_his_other_page(as_user):
    # Given alice wrote to bob in a DM, and bob's server-side count says so
    bob_first = as_user("bob", "Bob", options=QUICK_LIST)
    bob_first.expect_ready()
    alice = as_user("alice", "Alice")
    alice.expect_ready()
    open_dm(alice, "bob", "Bob")
    alice.send("Are you free at three?")
    expect_server_counts(bob_first.page, "alice", 1, 0)
    # and bob has a second page, which reads the channel list only when it connects
    bob_second = as_user("bob", "Bob", options=SLOW_LIST)
    bob_second.expect_ready()
    badge = dm_button(bob_second, "Alice").locator(".badge")
    expect(badge).to_have_text("1")
    # When bob reads the DM in his first page
    dm_button(bob_first, "Alice").click()
    expect(bob_first.page.locator("#message-list .text")).to_have_text(["Are you free at three?"])
    # Then the badge goes in his second page too (the `read` event: that page lists nothing again)
    expect(badge).to_have_count(0)
    expect(dm_button(bob_second, "Alice")).to_have_attribute("aria-label", "direct message with Alice")
    expect(bob_second.page.locator("#channel-title")).to_have_text("#general")


def test_badges_after_a_reload_are_the_servers_read_state(as_user):
    # Given bob reading his DM with alice while alice writes twice in #general, mentioning him once
    bob = as_user("bob", "Bob", options=QUICK_LIST)
    bob.expect_ready()
    alice = as_user("alice", "Alice")
    alice.expect_ready()
    open_dm(bob, "alice", "Alice")
    alice.send("Standup moved to 10:30.")
    alice.send("@bob please share the notes")
    expect_server_counts(bob.page, "general", 2, 1)
    # When bob reloads his page (nothing counted on the page survives a reload)
    bob.page.reload()
    bob.expect_ready()
    # Then he is back in the DM and #general's badge is the server's: 2 unread, 1 mention
    expect(bob.page.locator("#channel-title")).to_have_text("Alice")
    general = channel_button(bob, "general")
    expect(general).to_have_attribute("aria-label", "channel general, 2 unread, 1 mention")
    expect(general.locator(".badge")).to_have_text("@1")
    # When he opens #general, which marks it read on the server, goes back to the DM and reloads
    general.click()
    expect(bob.page.locator("#message-list .text")).to_have_count(2)
    expect_marked_read(bob.page, "general")
    dm_button(bob, "Alice").click()
    expect(bob.page.locator("#channel-title")).to_have_text("Alice")
    bob.page.reload()
    bob.expect_ready()
    # Then #general has no badge any more
    expect(bob.page.locator("#channel-title")).to_have_text("Alice")
    expect(general).to_have_attribute("aria-label", "channel general")
    expect(general.locator(".badge")).to_have_count(0)


# The workspace is named for the README's screenshot (docs/img/chat.png is this test's chat.png).
@pytest.mark.parametrize("workspace", ["demo"])
def test_a_busy_morning_in_the_workspace(as_user):
    # Given carol, bob and alice in #general (alice's page reads its channel list every second)
    carol = as_user("carol", "Carol")
    bob = as_user("bob", "Bob")
    alice = as_user("alice", "Alice", viewport=(1100, 700), options=QUICK_LIST)
    for chat in (carol, bob, alice):
        chat.expect_ready()
    # and alice has been in #random, then came back to #general
    channel_button(alice, "random").click()
    alice.expect_ready()
    channel_button(alice, "general").click()
    alice.expect_ready()
    # When bob asks about lunch in #random, carol writes to alice, and bob writes to both of them
    channel_button(bob, "random").click()
    bob.expect_ready()
    bob.send("Lunch at the usual place?")
    open_dm(carol, "alice", "Alice")
    carol.send("Got a minute after standup?")
    open_dm(bob, "alice, carol", "Alice, Carol")
    bob.send("@alice @carol the demo is at three.")
    # Then alice's sidebar says where the news is: an unread count, a DM, a mention in a group DM
    expect(channel_button(alice, "random").locator(".badge")).to_have_text("1")
    expect(dm_button(alice, "Carol")).to_have_attribute("aria-label", "direct message with Carol, 1 unread")
    group = dm_button(alice, "Bob, Carol")
    expect(group).to_have_attribute("aria-label", "direct message with Bob, Carol, 1 unread, 1 mention")
    expect(group.locator(".badge")).to_have_text("@1")
    # When, back in #general, bob shares news alice reacts to, she fixes a message of hers, carol asks
    # her something and two replies come in its thread
    for chat in (bob, carol):
        channel_button(chat, "general").click()
        chat.expect_ready()
    bob.send("Morning! The release notes are up.")
    news = alice.page.locator("#message-list li.message").filter(has_text="release notes")
    expect(news).to_have_count(1)
    news.hover()
    news.locator(".reaction-add").click()
    alice.page.locator('#reaction-picker .reaction-choice[data-name="❤️"]').click()
    expect(news.locator('.reaction-chip[data-name="❤️"]')).to_have_text("❤️1")
    alice.send("Thanks! I will link them from the README")
    expect(alice.page.locator('#message-list li.message[data-state="sent"]')).to_have_count(2)
    box = alice.page.locator("#composer-text")
    box.press("ArrowUp")
    box.fill("Thanks! I will link them from the README.")
    box.press("Enter")
    expect(alice.page.locator("#message-list .text").nth(1)).to_have_text(
        "Thanks! I will link them from the README. (edited)"
    )
    carol.send("@alice could you review the direct messages pull request?")
    question = bob.page.locator("#message-list li.message").filter(has_text="pull request")
    question.hover()
    question.locator("button.reply").click()
    for text in ("I can take a look too.", "Mine is the part about badges."):
        bob.page.locator("#thread-text").fill(text)
        bob.page.locator("#thread-text").press("Enter")
    # Then alice sees it all: the reaction, "(edited)", the mention of her and the thread's reply count
    asked = alice.page.locator("#message-list li.message").filter(has_text="pull request")
    expect(asked.locator(".mention-me")).to_have_text("@alice")
    expect(asked.locator("button.replies")).to_have_text("2 replies")
    # and, while bob types his next message, who is typing
    expect(alice.page.locator("#notice")).to_have_text("")  # (a slow-down notice of her send has gone)
    bob.page.locator("#composer-text").type("Shall we demo the new sidebar", delay=150)
    expect(alice.page.locator("#typing")).to_have_text("Bob is typing…")
    # (the badges stayed: #general is the only conversation alice read)
    expect(group.locator(".badge")).to_have_text("@1")
    alice.screenshot("chat")
