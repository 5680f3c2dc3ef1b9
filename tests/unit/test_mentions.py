"""Mention parsing (pure) and resolution against a directory: which `@user` tokens name which users."""

from __future__ import annotations

import pytest

from parley.mentions import MAX_MENTIONS, candidates, resolve


class Directory:
    """A directory of known users that records each lookup."""

    def __init__(self, *users: str) -> None:
        self.users = set(users)
        self.lookups: list[list[str]] = []

    def known_users(self, workspace: str, user_ids: list[str]) -> set[str]:
        self.lookups.append(list(user_ids))
        return self.users & set(user_ids)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @bob", [["bob"]]),
        ("@bob at the start", [["bob"]]),
        ("@bob, and @carol.", [["bob,", "bob"], ["carol.", "carol"]]),
        ("line\n@bob", [["bob"]]),
        ("mail a@bob.com", []),
        ("@ alone", []),
        ("@émile@example.com", [["émile@example.com"]]),
        ("no at sign", []),
        ("#chan @bob#1", [["bob"]]),
        ("(@bob)", []),
    ],
    ids=["after a space", "at the start", "trailing punctuation", "after a newline", "inside a word",
         "bare @", "an id with @", "none", "stops at #", "after a parenthesis"],
)  # fmt: skip
def test_candidates_follow_the_user_id_rule(text: str, expected: list[list[str]]) -> None:
    assert candidates(text) == expected


def test_a_text_without_an_at_sign_reads_nothing() -> None:
    directory = Directory("bob")
    assert resolve("hello bob", "acme", directory) == ()
    assert directory.lookups == []


def test_only_users_of_the_directory_are_kept_in_order_and_once() -> None:
    directory = Directory("bob", "carol", "bob,")
    assert resolve("@carol @dave @bob, @carol", "acme", directory) == ("carol", "bob,")
    assert len(directory.lookups) == 1  # one lookup of every candidate


def test_a_token_falls_back_to_the_id_without_its_trailing_punctuation() -> None:
    assert resolve("thanks @bob!", "acme", Directory("bob")) == ("bob",)


def test_mentions_are_bounded() -> None:
    users = [f"u{i}" for i in range(MAX_MENTIONS + 5)]
    directory = Directory(*users)
    found = resolve(" ".join(f"@{u}" for u in users), "acme", directory)
    assert found == tuple(users[:MAX_MENTIONS])
    assert len(directory.lookups) == 1 and len(directory.lookups[0]) <= 100


def test_an_id_that_breaks_the_user_id_rule_is_no_candidate() -> None:
    assert candidates("@bob\u202e") == []
