"""Reactions in the web client, in headless Chromium against the emulator: chips with counts under a
message, yours highlighted, a click toggles yours, a small picker adds one, and history brings them back."""

from __future__ import annotations

from playwright.sync_api import expect


def _chip(chat, name: str):
    return chat.page.locator(f'#message-list .reaction-chip[data-name="{name}"]')


def test_reactions_show_as_chips_and_a_click_toggles_ones_own(alice_and_bob, as_user):
    # Given alice posted in #general, where bob is too
    alice, bob = alice_and_bob
    alice.send("Lunch at noon?")
    expect(bob.page.locator('#message-list li.message[data-state="sent"] .text')).to_have_text(
        ["Lunch at noon?"]
    )
    # When bob opens the picker under it and picks the thumbs up
    message = bob.page.locator("#message-list li.message").first
    message.hover()
    message.locator(".reaction-add").click()
    picker = bob.page.locator("#reaction-picker")
    expect(picker).to_be_visible()
    expect(picker.locator(".reaction-choice")).to_have_count(8)
    picker.locator('.reaction-choice[data-name="👍"]').click()
    # Then both pages show a chip of 1, highlighted as his on his page only, and the picker is closed
    for chat, mine in ((alice, "false"), (bob, "true")):
        expect(_chip(chat, "👍")).to_have_text("👍1")
        expect(_chip(chat, "👍")).to_have_attribute("aria-pressed", mine)
    expect(picker).to_have_count(0)
    # When alice clicks the chip, Then it counts 2 on both pages and is hers too
    _chip(alice, "👍").click()
    for chat in (alice, bob):
        expect(_chip(chat, "👍")).to_have_text("👍2")
    expect(_chip(alice, "👍")).to_have_class("reaction-chip mine")
    bob.screenshot("reactions")
    # When bob clicks his chip again, Then his reaction is taken back everywhere
    _chip(bob, "👍").click()
    for chat in (alice, bob):
        expect(_chip(chat, "👍")).to_have_text("👍1")
    expect(_chip(bob, "👍")).to_have_attribute("aria-pressed", "false")
    expect(_chip(alice, "👍")).to_have_attribute("aria-pressed", "true")
    # And a page opened afresh shows the reactions from history, with alice's own highlighted
    again = as_user("alice", "Alice")
    again.expect_ready()
    expect(_chip(again, "👍")).to_have_text("👍1")
    expect(_chip(again, "👍")).to_have_attribute("aria-pressed", "true")


def test_the_picker_closes_with_escape_and_a_click_elsewhere(alice_and_bob):
    alice, _ = alice_and_bob
    alice.send("pick something")
    message = alice.page.locator('#message-list li.message[data-state="sent"]').first
    expect(message).to_have_count(1)
    add = message.locator(".reaction-add")
    message.hover()
    add.click()
    picker = alice.page.locator("#reaction-picker")
    expect(picker).to_be_visible()
    expect(add).to_have_attribute("aria-expanded", "true")
    # Escape closes it and gives the focus back to the button
    alice.page.keyboard.press("Escape")
    expect(picker).to_have_count(0)
    expect(add).to_be_focused()
    # a click elsewhere closes it too, and nothing was reacted
    message.hover()
    add.click()
    expect(picker).to_be_visible()
    alice.page.locator("#channel-title").click()
    expect(picker).to_have_count(0)
    expect(alice.page.locator("#message-list .reaction-chip")).to_have_count(0)
