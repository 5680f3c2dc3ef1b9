"""Size limits, idle and lifetime deadlines and the new-connection token bucket."""

import pytest

from ws_emulator.gateway import closing, limits


def test_token_bucket_allows_a_burst_then_refuses():
    bucket = limits.TokenBucket(rate=5, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(6)] == [True] * 5 + [False]


def test_token_bucket_refills_at_its_rate():
    bucket = limits.TokenBucket(rate=2, burst=1, now=0.0)
    assert bucket.try_take(0.0)
    assert not bucket.try_take(0.25)
    assert bucket.try_take(0.5)


def test_token_bucket_never_exceeds_its_burst():
    bucket = limits.TokenBucket(rate=10, burst=2, now=0.0)
    taken = [bucket.try_take(1000.0) for _ in range(3)]
    assert taken == [True, True, False]


def test_token_bucket_rejects_a_non_positive_rate():
    with pytest.raises(ValueError):
        limits.TokenBucket(rate=0)


def test_idle_deadline_moves_with_activity():
    when, cause = limits.next_deadline(
        connected_at=0, last_active=100, idle_timeout_s=600, max_duration_s=7200
    )
    assert (when, cause) == (700, closing.IDLE_TIMEOUT)


def test_lifetime_deadline_wins_near_the_end():
    when, cause = limits.next_deadline(
        connected_at=0, last_active=7000, idle_timeout_s=600, max_duration_s=7200
    )
    assert (when, cause) == (7200, closing.MAX_DURATION)


def test_aws_sizes():
    assert limits.FRAME_LIMIT_BYTES == 32 * 1024
    assert limits.MESSAGE_LIMIT_BYTES == 128 * 1024


def test_a_route_response_over_the_message_limit_is_refused_with_its_size():
    assert limits.oversized_reply("x" * limits.MESSAGE_LIMIT_BYTES) is None
    # 128 KB counts UTF-8 bytes, not characters
    note = limits.oversized_reply("é" * (limits.MESSAGE_LIMIT_BYTES // 2 + 1))
    assert note == (
        f"route response not sent: {limits.MESSAGE_LIMIT_BYTES + 2} bytes, "
        f"over the {limits.MESSAGE_LIMIT_BYTES}-byte message limit"
    )
