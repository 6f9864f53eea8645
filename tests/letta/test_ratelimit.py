"""The client-side request-rate limit (``LETTA_OTEL_MAX_RPS``), on a fake clock."""

from __future__ import annotations

import asyncio

from letta_otel.letta.client import LettaClient
from letta_otel.letta.ratelimit import RateLimiter
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer


class FakeTime:
    def __init__(self, *, advance: bool = True) -> None:
        self.now = 0.0
        self.advance = advance  # False: every waiter arrives at the same instant
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.advance:
            self.now += seconds


def test_bursts_then_paces() -> None:
    t = FakeTime()
    limiter = RateLimiter(10, burst=3, clock=t.clock, sleep=t.sleep)

    async def go() -> None:
        for _ in range(13):
            await limiter.acquire()

    asyncio.run(go())
    assert len(t.slept) == 10  # 3 free, then one per 0.1 s
    assert all(abs(s - 0.1) < 1e-9 for s in t.slept)
    assert abs(t.now - 1.0) < 1e-9  # 13 requests at 10/s with a burst of 3


def test_concurrent_waiters_are_spaced() -> None:
    t = FakeTime(advance=False)
    limiter = RateLimiter(4, burst=1, clock=t.clock, sleep=t.sleep)

    async def go() -> None:
        await asyncio.gather(*(limiter.acquire() for _ in range(5)))

    asyncio.run(go())
    assert sorted(t.slept) == [0.25, 0.5, 0.75, 1.0]  # each reserves the next slot


def test_zero_means_off() -> None:
    t = FakeTime()
    limiter = RateLimiter(0, clock=t.clock, sleep=t.sleep)
    asyncio.run(limiter.acquire())
    assert not limiter.enabled and t.slept == []


def test_every_letta_request_takes_a_token() -> None:
    t = FakeTime()

    async def go(url: str) -> None:
        async with LettaClient(url, max_rps=5) as client:
            client.limiter = RateLimiter(5, burst=1, clock=t.clock, sleep=t.sleep)
            await client.health()
            await client.list_runs({"limit": 5})
            await client.get_agent("agent-00000000-0000-4000-8000-000000000000")

    with FakeLettaServer(FakeLettaData.from_samples()) as server:
        asyncio.run(go(server.base_url))
    assert t.slept == [0.2, 0.2]  # 3 requests at 5/s, burst 1
