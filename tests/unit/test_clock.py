"""Timestamps and message ids: ISO-8601 UTC with milliseconds; 17-digit ids that sort by time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parley.clock import SystemClock, iso_ms
from parley.ids import message_id_for, message_id_ms, next_message_id

T0 = 1_790_000_000_000
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# from 2001-09-09 (13-digit epoch ms) to 2286 (ids stay 17 digits throughout)
epoch_ms = st.integers(min_value=1_000_000_000_000, max_value=9_999_999_900_000)


def test_iso_ms_of_a_known_instant():
    assert iso_ms(T0) == "2026-09-21T14:13:20.000Z"
    assert iso_ms(T0 + 7) == "2026-09-21T14:13:20.007Z"
    assert iso_ms(T0 + 999) == "2026-09-21T14:13:20.999Z"


def test_iso_ms_of_the_epoch():
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"


@given(epoch_ms)
def test_iso_ms_agrees_with_exact_integer_arithmetic(ms):
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    text = iso_ms(ms)
    assert ISO_MS.match(text)
    assert text == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"


@given(epoch_ms, epoch_ms)
def test_iso_ms_strings_sort_like_the_instants(a, b):
    assert (iso_ms(a) < iso_ms(b)) == (a < b)


def test_system_clock_is_epoch_milliseconds():
    before = datetime.now(UTC).timestamp() * 1000
    now = SystemClock().now_ms()
    after = datetime.now(UTC).timestamp() * 1000
    assert isinstance(now, int)
    assert before - 1 <= now <= after + 1


@given(epoch_ms)
def test_a_message_id_is_17_digits(ms):
    message_id = message_id_for(ms)
    assert re.fullmatch(r"[0-9]{17}", message_id)


@given(epoch_ms)
def test_a_message_id_records_its_millisecond(ms):
    assert message_id_ms(message_id_for(ms)) == ms


@given(epoch_ms, epoch_ms)
def test_ids_of_different_milliseconds_sort_by_time_as_strings(a, b):
    if a != b:
        assert (message_id_for(a) < message_id_for(b)) == (a < b)


@given(epoch_ms, st.integers(min_value=-5000, max_value=5000))
def test_next_message_id_is_strictly_greater_and_not_earlier_than_now(ms, skew):
    after = message_id_for(ms)
    now = ms + skew
    nxt = next_message_id(after, now)
    assert len(nxt) == 17
    assert nxt > after
    assert int(nxt) > int(after)
    assert message_id_ms(nxt) >= min(now, message_id_ms(after))
    assert message_id_ms(nxt) >= now or message_id_ms(nxt) == message_id_ms(after)


def test_next_message_id_in_the_same_millisecond_is_the_successor():
    after = message_id_for(T0)
    assert next_message_id(after, T0) == f"{int(after) + 1:017d}"


def test_next_message_id_jumps_to_a_later_millisecond():
    assert next_message_id(message_id_for(T0), T0 + 5) == f"{(T0 + 5) * 10_000:017d}"


def test_many_bumps_in_one_millisecond_keep_ids_increasing_and_unique():
    ids = [message_id_for(T0)]
    for _ in range(5000):
        ids.append(next_message_id(ids[-1], T0))
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(message_id_ms(i) == T0 for i in ids)
