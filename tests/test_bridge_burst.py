"""The consumer's bursts: enriched steps are mapped in groups, without holding a cycle up.

``_Exporter._burst`` reads only the exporter's ``closing`` and ``stopped`` flags, so it
is driven here with a stand-in for the exporter and a real ``asyncio.Queue``; the
end-to-end tests (tests/e2e) cover the whole pipeline with bursts in it.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from letta_otel import bridge
from letta_otel.bridge import StepDraft, Unit, _Exporter
from letta_otel.mapping.records import StepRecord
from tests.samples import SCENARIOS, load_scenario

_STEP = load_scenario(SCENARIOS[0]).steps[0].step


def _draft(n: int) -> StepDraft:
    step = _STEP.model_copy(update={"id": f"step-{n}"})
    return StepDraft(StepRecord(step=step), trace_id=n + 1, sample_rate=None)


def _burst(queue: asyncio.Queue[Any], *, closing: bool = False) -> Any:
    flags = SimpleNamespace(closing=closing, stopped=False)
    return _Exporter._burst(flags, queue)  # type: ignore[arg-type]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The burst's waits, counted (each still yields to the loop; asyncio.sleep is
    patched where the bridge finds it, i.e. for everyone, until the test ends)."""
    seen: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        seen.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return seen


def test_drafts_that_arrive_within_the_window_join_the_burst(sleeps: list[float]) -> None:
    async def go() -> list[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queue.put_nowait(_draft(0))

        async def producer() -> None:
            for n in range(1, 4):
                await asyncio.sleep(0)
                queue.put_nowait(_draft(n))

        burst, _ = await asyncio.gather(_burst(queue), producer())
        return list(burst)

    burst = asyncio.run(go())
    assert [d.record.step.id for d in burst] == [f"step-{n}" for n in range(4)]
    # It waited the whole window, as fewer than GATHER_UNITS came.
    polls = [d for d in sleeps if d == bridge.GATHER_POLL]
    assert len(polls) == round(bridge.GATHER_AFTER / bridge.GATHER_POLL)


def test_a_full_burst_does_not_wait(sleeps: list[float]) -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for n in range(bridge.GATHER_UNITS + 1):
        queue.put_nowait(_draft(n))
    burst = asyncio.run(_burst(queue))
    assert len(burst) == bridge.GATHER_UNITS + 1
    assert sleeps == []


def test_a_closing_cycle_does_not_wait(sleeps: list[float]) -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queue.put_nowait(_draft(0))
    queue.put_nowait(None)
    assert [type(x).__name__ for x in asyncio.run(_burst(queue, closing=True))] == [
        "StepDraft",
        "NoneType",
    ]
    assert sleeps == []


def test_only_drafts_start_a_wait(sleeps: list[float]) -> None:
    """Run units and the flush tick are handled at once: nothing maps them later."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queue.put_nowait(Unit(spans=(), run_ids=("run-1",)))
    assert len(asyncio.run(_burst(queue))) == 1
    assert sleeps == []
