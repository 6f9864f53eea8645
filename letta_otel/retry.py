"""How letta-otel waits and retries: one policy, built on tenacity's public pieces.

Three loops back off, all from :class:`Backoff` (exponential, with jitter):

* a Letta request (:class:`RetryPolicy`): a few attempts inside a total deadline; a
  server's ``Retry-After`` or ``timeToQuotaResetMs`` is waited exactly, as long as it
  ends inside the deadline, and a hint that would not ends the call at once;
* the daemon's cycle after a failed one (:func:`cycle_delay`): the poll interval while
  healthy, doubling with jitter up to a minute while failing;
* the start-up connect to the OTLP endpoint (:func:`connect_retrying`).

Why tenacity and not stamina (which is built on tenacity): what this policy needs is
expressed by tenacity's public API directly and is not by stamina's.

* The deadline must hold *before* a wait, not after it: a 90 s ``Retry-After`` with
  30 s left must end the call now. stamina's ``timeout`` is tenacity's
  ``stop_after_delay``, checked once the wait is over. tenacity gives each stop
  strategy the wait it is about to make (``RetryCallState.upcoming_sleep``), so
  :class:`stop_at_deadline` refuses that wait.
* The deadline also bounds each attempt (its timeout is what is left), so attempts and
  stop condition must read one clock, which tests replace; and tests must check that a
  hint is waited exactly without waiting it. tenacity takes ``sleep`` per retrying
  object; stamina's only test switch is global and turns every wait, hints included,
  into 0.
* stamina's backoff hook can return a wait for one exception (the Retry-After case);
  tenacity's wait strategies are composable objects, so "the hint, else exponential
  with jitter" is one small strategy (:class:`wait_hint_or`) over tenacity's own
  ``wait_exponential`` and ``wait_random_exponential``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The wait after the n-th failure in a row: ``min(maximum, initial * 2**(n-1))``,
    less a random share of at most ``jitter`` of it (so ``jitter=0.5`` waits between
    half and all of it; 0 waits exactly that).

    The jitter keeps many clients that failed together (a Letta incident, a 429 from a
    shared quota) from coming back in step.
    """

    initial: float
    maximum: float
    jitter: float = 0.0

    def wait(self) -> wait_base:
        """As a tenacity wait strategy: a fixed part plus a random one, both exponential."""
        steady = 1.0 - self.jitter
        fixed = wait_exponential(multiplier=self.initial * steady, max=self.maximum * steady)
        if not self.jitter:
            return fixed
        return fixed + wait_random_exponential(
            multiplier=self.initial * self.jitter, max=self.maximum * self.jitter
        )

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row, for a loop that counts them
        itself (the daemon's cycles): the same strategy, asked as tenacity asks it."""
        state = RetryCallState(AsyncRetrying(), None, (), {})
        state.attempt_number = max(failures, 1)
        return float(self.wait()(state))


class Retryable(Exception):
    """One failed attempt that another may fix: a timeout, a reset, a malformed answer,
    HTTP 429/5xx. ``hint``: how long the server asked us to wait, in seconds, and
    ``hint_source`` where it said so (``Retry-After``, ``timeToQuotaResetMs``)."""

    def __init__(self, detail: str, *, hint: float | None = None, hint_source: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        self.hint_source = hint_source


@dataclass(slots=True)
class Deadline:
    """When a call must be over, on ``clock``: every attempt and every wait fit in it."""

    seconds: float
    clock: Clock = time.monotonic
    end: float = field(init=False)

    def __post_init__(self) -> None:
        self.end = self.clock() + self.seconds

    def remaining(self) -> float:
        return self.end - self.clock()


class stop_at_deadline(stop_base):
    """Stop rather than start a wait that leaves no time for another attempt."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.upcoming_sleep >= self.deadline.remaining()


class wait_hint_or(wait_base):
    """The server's hint when the failure carries one (waited exactly: it says when the
    quota resets), else ``backoff``."""

    def __init__(self, backoff: wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Retryable) and error.hint is not None:
            return max(error.hint, 0.0)
        return float(self.backoff(retry_state))


# --- Letta requests ------------------------------------------------------------------

# Made once: it holds a reference cycle (its predicate is one of its own methods), which
# per call would be garbage only the cycle collector frees.
_RETRY_RETRYABLE = retry_if_exception_type(Retryable)
DEFAULT_ATTEMPTS = 5
# One call (all its attempts and waits) ends within this. Before it there was none, and
# one GET could take about 10 minutes (5 timeouts of 30 s and 4 waits of up to 120 s).
DEFAULT_DEADLINE = 120.0
LETTA_BACKOFF = Backoff(initial=0.5, maximum=30.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a Letta request is retried: at most ``attempts`` tries, all within
    ``deadline`` seconds (waits included), ``backoff`` between them unless the server
    says how long to wait."""

    attempts: int = DEFAULT_ATTEMPTS
    deadline: float = DEFAULT_DEADLINE
    backoff: Backoff = LETTA_BACKOFF

    def retrying(
        self,
        deadline: Deadline,
        *,
        sleep: Sleep = asyncio.sleep,
        before_sleep: Callable[[RetryCallState], None] | None = None,
        give_up: Callable[[RetryCallState], Any] | None = None,
    ) -> AsyncRetrying:
        """A tenacity retrying object for one call (tenacity keeps per-call state in it,
        so one is made per call, as its own decorator does). ``give_up`` is told when
        attempts or the deadline run out (it raises the error the caller sees); an
        exception other than :class:`Retryable` is never retried."""
        return AsyncRetrying(
            sleep=sleep,
            stop=stop_after_attempt(self.attempts) | stop_at_deadline(deadline),
            wait=wait_hint_or(self.backoff.wait()),
            retry=_RETRY_RETRYABLE,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            reraise=True,
        )


def why_given_up(state: RetryCallState, policy: RetryPolicy, deadline: Deadline) -> str:
    """What ended a call, for its error message: the last failure, and the attempts or
    the deadline (with the hint that would have overrun it)."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    detail = error.detail if isinstance(error, Retryable) else str(error)
    n = state.attempt_number
    tries = f"failed after {n} attempt{'s' if n > 1 else ''}: {detail}"
    if n >= policy.attempts:
        return tries
    left = max(deadline.remaining(), 0.0)
    if isinstance(error, Retryable) and error.hint is not None and error.hint > left:
        return (
            f"{tries}; the server asked to wait {error.hint:.1f}s ({error.hint_source}), "
            f"past this call's {deadline.seconds:g}s deadline ({left:.1f}s left)"
        )
    return f"{tries}; this call's {deadline.seconds:g}s deadline is reached"


# --- the daemon's cycles -------------------------------------------------------------

MAX_CYCLE_DELAY = 60.0


def cycle_delay(poll_interval: float, failures: int) -> float:
    """Poll interval while healthy; doubling (with jitter, up to 1 min) while failing.

    A backend outage or a Letta incident then costs a few requests a minute instead
    of one every poll interval, and recovery is noticed within the current delay.
    """
    if failures <= 0:
        return poll_interval
    backoff = Backoff(initial=2 * poll_interval, maximum=MAX_CYCLE_DELAY, jitter=0.2)
    return max(poll_interval, backoff.delay(failures))


# --- start-up connects ---------------------------------------------------------------

# A collector starting beside us gets a few seconds: 0.5, 1, 2, 4 s between 5 tries.
CONNECT_ATTEMPTS = 5
CONNECT_BACKOFF = Backoff(initial=0.5, maximum=4.0)


def connect_retrying(
    attempts: int = CONNECT_ATTEMPTS, *, sleep: Sleep = asyncio.sleep
) -> AsyncRetrying:
    """Retries a TCP connect that is refused or times out; the last error is raised."""
    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(attempts),
        wait=CONNECT_BACKOFF.wait(),
        retry=retry_if_exception_type((OSError, TimeoutError)),
        reraise=True,
    )
