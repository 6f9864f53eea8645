"""Client-side request-rate limit for the Letta API (``LETTA_OTEL_MAX_RPS``).

A token bucket: ``rate`` requests per second on average, bursts of at most ``burst``.
Every Letta request (retries included) takes a token first, so the daemon stays inside
a quota however many requests are allowed in flight. Waiters are served in arrival
order: each reserves the next free slot in time and sleeps until then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        """``rate`` <= 0 disables the limit."""
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self.waited = 0.0  # total seconds requests were held back

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= 1  # reserve now; a negative balance is the queue ahead of us
        if self._tokens < 0:
            delay = -self._tokens / self.rate
            self.waited += delay
            await self._sleep(delay)
