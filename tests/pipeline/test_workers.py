"""The long-lived workers: keyed work, bounded, a hung job delays only itself."""

from __future__ import annotations

import asyncio

from letta_otel.pipeline.units import Key
from letta_otel.pipeline.workers import Workers


def _run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))  # type: ignore[arg-type]


def test_a_busy_key_is_not_scheduled_twice_until_released() -> None:
    async def go() -> None:
        errors: list[tuple[Key, Exception]] = []
        workers = Workers(2, lambda key, exc: errors.append((key, exc)))
        ran: list[str] = []

        async def hands_on() -> bool:
            ran.append("a")
            return True  # its taker releases the key

        async def nothing() -> bool:
            ran.append("b")
            return False

        assert workers.submit(("step", "a"), hands_on)
        assert not workers.submit(("step", "a"), hands_on)  # in flight
        assert workers.submit(("step", "b"), nothing)
        await workers.until(lambda: not workers.active)
        assert sorted(ran) == ["a", "b"]
        assert workers.busy(("step", "a")) and not workers.busy(("step", "b"))
        assert workers.busy_ids("step") == {"a"}
        workers.release([("step", "a")])
        assert workers.submit(("step", "a"), hands_on)
        await workers.aclose()
        assert not errors

    _run(go())


def test_a_hung_job_delays_only_itself() -> None:
    async def go() -> None:
        workers = Workers(2, lambda key, exc: None)
        hung = asyncio.Event()
        done: list[int] = []

        async def hangs() -> bool:
            await hung.wait()
            return False

        def quick(n: int) -> object:
            async def job() -> bool:
                await asyncio.sleep(0)
                done.append(n)
                return False

            return job

        workers.submit(("step", "hung"), hangs)
        for n in range(20):
            workers.submit(("step", str(n)), quick(n))  # type: ignore[arg-type]
        await workers.until(lambda: len(done) == 20)  # the other worker did them all
        assert workers.active and workers.busy(("step", "hung"))
        await workers.aclose()  # cancels the hung job
        assert not workers.active and not workers.busy(("step", "hung"))

    _run(go())


def test_an_error_is_reported_and_a_cancelled_shared_fetch_is_retried_later() -> None:
    async def go() -> None:
        errors: list[Key] = []
        workers = Workers(1, lambda key, exc: errors.append(key))
        shared: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def fails() -> bool:
            raise TypeError("a bug met on odd data")

        async def awaits_shared() -> bool:
            await shared  # another part gives this fetch up under us
            return True

        workers.submit(("step", "bug"), fails)
        workers.submit(("run", "r"), awaits_shared)
        await workers.until(lambda: workers.queued == 0)
        shared.cancel()
        await workers.until(lambda: not workers.active)
        assert errors == [("step", "bug")]
        assert not workers.busy(("run", "r"))  # free to be scheduled again
        ran: list[bool] = []

        async def after() -> bool:
            ran.append(True)
            return False

        workers.submit(("run", "r"), after)  # the worker survived
        await workers.until(lambda: not workers.active)
        assert ran == [True]
        await workers.aclose()

    _run(go())
