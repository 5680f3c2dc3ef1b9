"""Edits, deletes and threads in the web client, in real headless Chromium against the emulator."""

from __future__ import annotations

from playwright.sync_api import expect


def test_up_arrow_edits_your_last_message_in_both_pages(alice_and_bob):
    # Given alice sent a message with a typo, which bob sees
    alice, bob = alice_and_bob
    alice.send("helo everyone")
    expect(bob.page.locator("#message-list .text")).to_have_text(["helo everyone"])
    # When she presses Up in the empty composer, fixes the text and presses Enter
    box = alice.page.locator("#composer-text")
    box.press("ArrowUp")
    expect(box).to_have_value("helo everyone")
    box.fill("hello everyone")
    box.press("Enter")
    # Then both pages show the new text marked as edited, and the composer is empty again
    for chat in (alice, bob):
        expect(chat.page.locator("#message-list .text")).to_have_text(["hello everyone (edited)"])
    expect(box).to_have_value("")


def test_escape_cancels_an_edit(alice_and_bob):
    alice, bob = alice_and_bob
    alice.send("keep me")
    expect(bob.page.locator("#message-list .text")).to_have_text(["keep me"])
    box = alice.page.locator("#composer-text")
    box.press("ArrowUp")
    box.fill("changed my mind")
    box.press("Escape")
    expect(box).to_have_value("")
    alice.send("next")
    expect(bob.page.locator("#message-list .text")).to_have_text(["keep me", "next"])


def test_delete_asks_first_and_leaves_a_tombstone_for_everyone(alice_and_bob):
    # Given alice's message, seen by bob
    alice, bob = alice_and_bob
    alice.send("oops, wrong channel")
    expect(bob.page.locator("#message-list .text")).to_have_text(["oops, wrong channel"])
    item = alice.page.locator("#message-list li.message").first
    # When she clicks Delete and dismisses the confirmation, nothing happens
    alice.page.once("dialog", lambda dialog: dialog.dismiss())
    item.hover()
    item.locator("button.delete").click()
    expect(bob.page.locator("#message-list .text")).to_have_text(["oops, wrong channel"])
    # When she confirms
    alice.page.once("dialog", lambda dialog: dialog.accept())
    item.hover()
    item.locator("button.delete").click()
    # Then both pages show a tombstone in its place
    for chat in (alice, bob):
        expect(chat.page.locator("#message-list li.message.deleted .text")).to_have_text(
            ["This message was deleted."]
        )
    # and bob, who is not its author, is offered no edit or delete of alice's messages
    alice.send("still here")
    expect(bob.page.locator("#message-list li.message")).to_have_count(2)
    expect(bob.page.locator("#message-list button.delete")).to_have_count(0)


def test_a_thread_panel_shows_replies_and_the_count_on_the_parent(alice_and_bob):
    # Given alice asks a question
    alice, bob = alice_and_bob
    alice.send("Lunch at noon?")
    parent = bob.page.locator("#message-list li.message").first
    expect(parent.locator(".text")).to_have_text("Lunch at noon?")
    # When bob opens its thread and replies twice
    parent.hover()
    parent.locator("button.reply").click()
    expect(bob.page.locator("#thread-panel")).to_be_visible()
    for text in ("Yes!", "I'll book a table."):
        bob.page.locator("#thread-text").fill(text)
        bob.page.locator("#thread-text").press("Enter")
    # Then alice sees the reply count on her message, replies stay out of the channel's list, and her
    # thread panel shows the question and both replies
    replies = alice.page.locator("#message-list button.replies")
    expect(replies).to_have_text("2 replies")
    expect(alice.page.locator("#message-list .text")).to_have_text(["Lunch at noon?"])
    replies.click()
    expect(alice.page.locator("#thread-list .text")).to_have_text(
        ["Lunch at noon?", "Yes!", "I'll book a table."]
    )
    alice.screenshot("thread")
