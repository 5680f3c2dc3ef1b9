"""TTL expiry rules and the marks that tag sweeper deletions (pure parts of ttl.py)."""

from types import SimpleNamespace

import pytest

from ws_emulator.aws.ttl import TtlMarks, TtlSweeper, is_expired

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"expiresAt": {"N": str(NOW - 1)}}, True),
        ({"expiresAt": {"N": str(NOW)}}, True),
        ({"expiresAt": {"N": f"{NOW - 0.5}"}}, True),
        ({"expiresAt": {"N": str(NOW + 1)}}, False),
        ({"expiresAt": {"S": str(NOW - 1)}}, False),  # not a Number: ignored, as by AWS
        ({"expiresAt": {"N": "not-a-number"}}, False),
        ({}, False),
        ({"expiresAt": {"N": str((NOW - 1) * 1000)}}, False),  # milliseconds: far in the future
        ({"expiresAt": {"N": str(NOW - 6 * 365 * 86400)}}, False),  # more than 5 years ago: skipped
    ],
)
def test_is_expired(item: dict, expected: bool) -> None:
    assert is_expired(item, "expiresAt", NOW) is expected


def test_every_consumer_sees_a_mark_once() -> None:
    marks = TtlMarks()
    a, b = marks.register(), marks.register()
    keys = {"PK": {"S": "x"}, "SK": {"S": "y"}}
    marks.mark("t", keys)
    assert marks.take(a, "t", {"SK": {"S": "y"}, "PK": {"S": "x"}})  # key order does not matter
    assert not marks.take(a, "t", keys)
    assert marks.take(b, "t", keys)
    assert not marks.take(b, "other", keys)


def test_unmark_withdraws_a_failed_deletion() -> None:
    marks = TtlMarks()
    a = marks.register()
    marks.mark("t", {"PK": {"S": "x"}})
    marks.unmark("t", {"PK": {"S": "x"}})
    assert not marks.take(a, "t", {"PK": {"S": "x"}})


def test_binary_keys_can_be_marked() -> None:
    marks = TtlMarks()
    a = marks.register()
    marks.mark("t", {"PK": {"B": b"\x00\x01"}})
    assert marks.take(a, "t", {"PK": {"B": b"\x00\x01"}})


@pytest.mark.parametrize(
    ("pass_seconds", "pause"),
    [(0.01, 1.0), (0.1, 1.0), (0.5, 4.5), (2.0, 18.0)],
)
def test_a_long_sweep_pass_spaces_out_the_next(pass_seconds: float, pause: float) -> None:
    # The sweep holds the embedded DynamoDB: never more than a tenth of its time on a large table.
    sweeper = TtlSweeper(
        SimpleNamespace(tables={}),  # type: ignore[arg-type]
        lambda: None,
        TtlMarks(),
        interval_s=1.0,
    )
    assert sweeper.pause_after(pass_seconds) == pytest.approx(pause)
