"""GCRA rate limiting: a burst of 20, then 5 a second per user; refusals say when to retry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.ratelimit import Decision, decide

BURST = 20
RATE = 5.0
T0 = 1_790_000_000_000


def run(times_ms: list[int], *, rate: float = RATE, burst: int = BURST) -> list[Decision]:
    """Feed request times through the limiter as the service does: only an allowed request stores its TAT."""
    tat: int | None = None
    decisions = []
    for now in times_ms:
        decision = decide(tat, now, rate_per_s=rate, burst=burst)
        if decision.allowed:
            tat = decision.new_tat_ms
        decisions.append(decision)
    return decisions


def test_a_first_request_is_allowed_without_state():
    decision = decide(None, T0, rate_per_s=RATE, burst=BURST)
    assert decision == Decision(True, T0 + 200, 0)


def test_a_burst_of_20_at_once_is_allowed_and_the_21st_refused():
    decisions = run([T0] * (BURST + 1))
    assert all(d.allowed for d in decisions[:BURST])
    assert not decisions[BURST].allowed


def test_the_refusal_after_a_burst_says_retry_in_200_ms():
    refusal = run([T0] * (BURST + 1))[-1]
    assert refusal.retry_after_ms == pytest.approx(200, abs=1)


def test_retrying_after_the_advertised_delay_is_allowed_and_not_before():
    decisions = run([T0] * (BURST + 1))
    tat = decisions[BURST - 1].new_tat_ms
    retry = decisions[BURST].retry_after_ms
    assert not decide(tat, T0 + retry - 1, rate_per_s=RATE, burst=BURST).allowed
    assert decide(tat, T0 + retry, rate_per_s=RATE, burst=BURST).allowed


def test_a_refusal_leaves_the_state_unchanged():
    tat = run([T0] * BURST)[-1].new_tat_ms
    refusal = decide(tat, T0, rate_per_s=RATE, burst=BURST)
    assert refusal.new_tat_ms == tat


def test_five_a_second_is_allowed_for_ever():
    decisions = run([T0 + i * 200 for i in range(1000)])
    assert all(d.allowed for d in decisions)


def test_five_a_second_after_a_full_burst_is_still_allowed():
    times = [T0] * BURST + [T0 + 200 * i for i in range(1, 300)]
    assert all(d.allowed for d in run(times))


def test_faster_than_five_a_second_is_eventually_refused():
    decisions = run([T0 + i * 150 for i in range(200)])
    assert not all(d.allowed for d in decisions)
    # a sustained 6.67/s earns exactly the burst plus what 5/s refills
    allowed = sum(d.allowed for d in decisions)
    assert allowed <= BURST + RATE * (199 * 150) / 1000


def test_a_full_burst_is_available_again_after_four_seconds_idle():
    tat = run([T0] * BURST)[-1].new_tat_ms
    later = T0 + 4000
    times = [later] * BURST
    decisions = []
    for now in times:
        d = decide(tat, now, rate_per_s=RATE, burst=BURST)
        decisions.append(d)
        tat = d.new_tat_ms if d.allowed else tat
    assert all(d.allowed for d in decisions)
    assert not decide(tat, later, rate_per_s=RATE, burst=BURST).allowed


def test_idle_time_beyond_the_burst_does_not_bank_extra_allowance():
    tat = run([T0])[-1].new_tat_ms
    later = T0 + 3_600_000
    allowed = 0
    for _ in range(BURST * 3):
        d = decide(tat, later, rate_per_s=RATE, burst=BURST)
        if d.allowed:
            allowed += 1
            tat = d.new_tat_ms
    assert allowed == BURST


def test_a_burst_of_one_allows_one_request_per_interval():
    decisions = run([T0, T0, T0 + 199, T0 + 200], burst=1)
    assert [d.allowed for d in decisions] == [True, False, False, True]


def test_a_rate_whose_interval_is_not_whole_milliseconds_is_not_exceeded():
    # 3/s is one per 333.33 ms: rounding the stored TAT down would admit a request every 333 ms
    decisions = run([T0, T0 + 333], rate=3.0, burst=1)
    assert [d.allowed for d in decisions] == [True, False]


def test_a_sustained_sender_at_a_fractional_interval_gets_no_more_than_the_rate():
    # Given a client retrying every millisecond for ten minutes at 3/s with a burst of 20
    allowed = sum(d.allowed for d in run([T0 + ms for ms in range(600_000)], rate=3.0))
    # Then it gets at most the burst plus three a second
    assert allowed <= BURST + 3 * 600


def test_retry_after_is_never_zero_on_a_refusal():
    decisions = run([T0] * 50, rate=3.0, burst=2)
    assert all(d.retry_after_ms >= 1 for d in decisions if not d.allowed)


request_times = st.lists(st.integers(min_value=0, max_value=1500), min_size=1, max_size=300).map(
    lambda gaps: [T0 + sum(gaps[: i + 1]) for i in range(len(gaps))]
)


@settings(max_examples=300, deadline=None)
@given(request_times)
def test_allowed_requests_in_any_window_stay_within_burst_plus_rate_times_window(times):
    allowed = [t for t, d in zip(times, run(times), strict=True) if d.allowed]
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            window_s = (allowed[j] - allowed[i]) / 1000
            assert j - i + 1 <= BURST + RATE * window_s


@settings(max_examples=200, deadline=None)
@given(
    request_times,
    st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 0.3, 2.5]),
    st.integers(min_value=1, max_value=30),
)
def test_the_window_bound_holds_for_other_settings(times, rate, burst):
    allowed = [t for t, d in zip(times, run(times, rate=rate, burst=burst), strict=True) if d.allowed]
    for i in range(len(allowed)):
        for j in range(i, len(allowed)):
            assert j - i + 1 <= burst + rate * (allowed[j] - allowed[i]) / 1000


@settings(max_examples=200, deadline=None)
@given(request_times)
def test_a_refused_request_retried_after_retry_after_ms_is_allowed(times):
    tat: int | None = None
    for now in times:
        d = decide(tat, now, rate_per_s=RATE, burst=BURST)
        if d.allowed:
            tat = d.new_tat_ms
        else:
            assert decide(tat, now + d.retry_after_ms, rate_per_s=RATE, burst=BURST).allowed


# ---- per-action limits from the environment ------------------------------------------------------

ENV = {
    "STATE_TABLE": "s",
    "MESSAGES_TABLE": "m",
    "IDEMPOTENCY_TABLE": "i",
    "CONNECTIONS_ENDPOINT": "https://x",
}


def test_every_action_but_message_has_a_default_limit():
    from parley.config import Settings
    from parley.protocol import FRAMES
    from parley.ratelimit import ACTION_LIMITS

    settings = Settings.from_env(ENV)
    assert set(ACTION_LIMITS) == set(FRAMES) - {"message"}
    assert settings.rate_limit("message") == (20, 5.0)
    assert all(settings.rate_limit(a) == ACTION_LIMITS[a] for a in ACTION_LIMITS)


def test_action_rate_limits_override_only_the_actions_they_name():
    from parley.config import Settings
    from parley.ratelimit import ACTION_LIMITS

    settings = Settings.from_env(ENV | {"ACTION_RATE_LIMITS": "create_channel=5/0.05, invite=10/0.2"})
    assert settings.rate_limit("create_channel") == (5, 0.05)
    assert settings.rate_limit("invite") == (10, 0.2)
    assert settings.rate_limit("join") == ACTION_LIMITS["join"]


@pytest.mark.parametrize(
    "spec",
    ["dance=5/1", "join=5", "join=0/1", "join=5/0", "join=x/1", "join=5/nan", "message=5/1"],
    ids=["unknown action", "no rate", "zero burst", "zero rate", "not a number", "nan", "message"],
)
def test_a_bad_action_rate_limit_refuses_to_start_and_names_the_entry(spec):
    from parley.config import Settings

    with pytest.raises(RuntimeError, match="ACTION_RATE_LIMITS entry"):
        Settings.from_env(ENV | {"ACTION_RATE_LIMITS": spec})
