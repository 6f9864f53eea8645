"""The one retry policy (letta_otel/retry.py), on an injected clock and sleep: nothing
here waits for real."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import RetryCallState

from letta_otel import daemon
from letta_otel.retry import (
    CONNECT_BACKOFF,
    LETTA_BACKOFF,
    MAX_CYCLE_DELAY,
    Backoff,
    Deadline,
    Retryable,
    RetryPolicy,
    connect_retrying,
    cycle_delay,
    why_given_up,
)

SAMPLES = 300


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_letta_backoff_doubles_with_up_to_half_of_it_as_jitter() -> None:
    for n in range(1, 10):
        cap = min(30.0, 0.5 * 2 ** (n - 1))
        delays = [LETTA_BACKOFF.delay(n) for _ in range(SAMPLES)]
        assert all(cap / 2 <= d <= cap for d in delays), n
        assert max(delays) - min(delays) > cap / 4  # really jittered, over the whole range


def test_a_backoff_without_jitter_is_exact() -> None:
    assert [CONNECT_BACKOFF.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert Backoff(1.0, 10.0).delay(10_000) == 10.0  # no overflow far out


@pytest.mark.parametrize("poll", [0.5, 5.0, 30.0, 90.0])
def test_cycle_delay_is_the_poll_interval_then_doubles_to_a_minute(poll: float) -> None:
    assert cycle_delay(poll, 0) == poll
    for failures in range(1, 12):
        top = min(poll * 2**failures, MAX_CYCLE_DELAY)
        for _ in range(50):
            delay = cycle_delay(poll, failures)
            assert max(poll, top * 0.8) <= delay <= max(poll, top)
    assert daemon.retry_delay is cycle_delay  # the daemon and backfill use this one


def call_with_policy(
    policy: RetryPolicy, outcomes: list[BaseException | str], t: FakeTime
) -> tuple[object, int]:
    """Runs a call whose attempts raise or return ``outcomes`` in turn."""
    calls = 0

    async def attempt() -> object:
        nonlocal calls
        outcome = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    deadline = Deadline(policy.deadline, t.clock)

    def give_up(state: RetryCallState) -> object:
        raise RuntimeError(why_given_up(state, policy, deadline))

    async def go() -> object:
        retrying = policy.retrying(deadline, sleep=t.sleep, give_up=give_up)
        return await retrying(attempt)

    return asyncio.run(go()), calls


def test_retryable_failures_are_retried_with_backoff() -> None:
    t = FakeTime()
    policy = RetryPolicy(attempts=5, backoff=Backoff(1.0, 8.0))
    result, calls = call_with_policy(policy, [Retryable("x"), Retryable("y"), "done"], t)
    assert (result, calls, t.slept) == ("done", 3, [1.0, 2.0])


def test_other_exceptions_are_not_retried() -> None:
    t = FakeTime()
    with pytest.raises(KeyError):
        call_with_policy(RetryPolicy(), [KeyError("no"), "done"], t)
    assert t.slept == []


def test_attempts_run_out() -> None:
    t = FakeTime()
    policy = RetryPolicy(attempts=3, backoff=Backoff(1.0, 8.0))
    with pytest.raises(RuntimeError, match=r"^failed after 3 attempts: HTTP 503$"):
        call_with_policy(policy, [Retryable("HTTP 503")], t)
    assert t.slept == [1.0, 2.0]  # no wait after the last attempt


def test_a_hint_is_waited_exactly_instead_of_the_backoff() -> None:
    t = FakeTime()
    hinted = Retryable("HTTP 429", hint=7.25, hint_source="Retry-After")
    result, _ = call_with_policy(RetryPolicy(), [hinted, hinted, "ok"], t)
    assert result == "ok" and t.slept == [7.25, 7.25]


def test_a_hint_in_the_past_is_no_wait() -> None:
    t = FakeTime()
    result, _ = call_with_policy(RetryPolicy(), [Retryable("x", hint=-3.0), "ok"], t)
    assert result == "ok" and t.slept == [0.0]


def test_a_hint_that_would_overrun_the_deadline_ends_the_call_now() -> None:
    t = FakeTime()
    long = Retryable("HTTP 429", hint=121.0, hint_source="timeToQuotaResetMs")
    with pytest.raises(RuntimeError) as info:
        call_with_policy(RetryPolicy(deadline=120.0), [long], t)
    assert t.slept == []
    assert str(info.value) == (
        "failed after 1 attempt: HTTP 429; the server asked to wait 121.0s "
        "(timeToQuotaResetMs), past this call's 120s deadline (120.0s left)"
    )


def test_time_spent_in_attempts_counts_against_the_deadline() -> None:
    t = FakeTime()
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        t.now += 25.0  # each attempt times out after 25 s
        raise Retryable("timed out")

    policy = RetryPolicy(attempts=10, deadline=60.0, backoff=Backoff(1.0, 1.0))
    deadline = Deadline(policy.deadline, t.clock)

    def give_up(state: RetryCallState) -> None:
        raise RuntimeError(why_given_up(state, policy, deadline))

    async def go() -> None:
        await policy.retrying(deadline, sleep=t.sleep, give_up=give_up)(attempt)

    with pytest.raises(RuntimeError, match="failed after 3 attempts: timed out; this call's 60s"):
        asyncio.run(go())
    # 25 + 1 + 25 + 1 + 25 = 77 > 60: the third attempt already ran into the deadline,
    # where the client cuts it (its timeout is what is left); no fourth.
    assert calls == 3 and t.slept == [1.0, 1.0]


def test_the_deadline_counts_from_when_the_call_began() -> None:
    t = FakeTime()
    deadline = Deadline(10.0, t.clock)
    t.now += 4
    assert deadline.remaining() == 6.0


def test_connect_retrying_backs_off_then_raises_the_last_error() -> None:
    t = FakeTime()
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")

    async def go() -> None:
        await connect_retrying(5, sleep=t.sleep)(refused)

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(go())
    assert attempts == 5 and t.slept == [0.5, 1.0, 2.0, 4.0]


def test_connect_retrying_stops_at_the_first_success() -> None:
    t = FakeTime()
    outcomes: list[Exception | None] = [TimeoutError(), OSError(113, "No route"), None]

    async def connect() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "connected"

    async def go() -> str:
        result: str = await connect_retrying(5, sleep=t.sleep)(connect)
        return result

    assert asyncio.run(go()) == "connected" and t.slept == [0.5, 1.0]
