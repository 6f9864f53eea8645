"""The consumer's bursts: enriched steps are mapped in groups, without holding a cycle up.

``BatchExporter.burst`` reads only the exporter's ``closing`` and ``stopped`` flags, so it
is driven here with a stand-in for the exporter and the pipeline's plain
``asyncio.Queue``; the end-to-end tests (tests/e2e) cover the whole pipeline with bursts
in it. Where no wait is expected the window is made 30 s long: a wait shows as the
test's own timeout.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from msgspec.structs import replace

from letta_otel.mapping.records import StepRecord
from letta_otel.pipeline import batches as bridge
from letta_otel.pipeline.batches import BatchExporter
from letta_otel.pipeline.units import StepDraft, Unit
from tests.samples import SCENARIOS, load_scenario

_STEP = load_scenario(SCENARIOS[0]).steps[0].step


def _draft(n: int) -> StepDraft:
    step = replace(_STEP, id=f"step-{n}")
    return StepDraft(StepRecord(step=step), trace_id=n + 1, sample_rate=None)


def _burst(queue: asyncio.Queue[Any], *, closing: bool = False) -> Any:
    flags = SimpleNamespace(closing=closing, stopped=False)
    return asyncio.wait_for(BatchExporter.burst(flags, queue), 5)  # type: ignore[arg-type]


@pytest.fixture
def long_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge, "GATHER_AFTER", 30.0)


def _burst_while_producing(later: list[Any], pause: float) -> tuple[list[Any], float]:
    """The burst that starts with one draft queued while a producer puts ``later``, one
    item every ``pause`` seconds; and how long the burst took."""

    async def go() -> tuple[list[Any], float]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        queue.put_nowait(_draft(0))

        async def producer() -> None:
            for item in later:
                await asyncio.sleep(pause)
                queue.put_nowait(item)

        start = loop.time()
        burst, _ = await asyncio.gather(_burst(queue), producer())
        return list(burst), loop.time() - start

    return asyncio.run(go())


def test_drafts_that_arrive_within_the_window_join_the_burst(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge, "GATHER_AFTER", 0.2)
    burst, waited = _burst_while_producing([_draft(n) for n in range(1, 4)], 0.01)
    assert [d.record.step.id for d in burst] == [f"step-{n}" for n in range(4)]
    assert waited >= 0.15  # the whole window, as fewer than GATHER_UNITS came


@pytest.mark.usefixtures("long_window")
def test_a_full_burst_does_not_wait() -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for n in range(bridge.GATHER_UNITS + 1):
        queue.put_nowait(_draft(n))
    assert len(asyncio.run(_burst(queue))) == bridge.GATHER_UNITS + 1


@pytest.mark.usefixtures("long_window")
def test_the_wait_ends_when_the_burst_fills_up() -> None:
    more = [_draft(n) for n in range(1, bridge.GATHER_UNITS + 1)]
    assert len(_burst_while_producing(more, 0)[0]) == bridge.GATHER_UNITS + 1


@pytest.mark.usefixtures("long_window")
def test_a_closing_cycle_does_not_wait() -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queue.put_nowait(_draft(0))
    queue.put_nowait(None)
    assert [type(x).__name__ for x in asyncio.run(_burst(queue, closing=True))] == [
        "StepDraft",
        "NoneType",
    ]


@pytest.mark.usefixtures("long_window")
def test_the_producers_end_ends_the_wait() -> None:
    """A wait already under way when the producer finishes ends with its final None
    (``closing`` is read only before a wait starts)."""
    burst, _ = _burst_while_producing([None], 0.01)
    assert [type(x).__name__ for x in burst] == ["StepDraft", "NoneType"]


@pytest.mark.usefixtures("long_window")
def test_only_drafts_start_a_wait() -> None:
    """Run units and the flush tick are handled at once: nothing maps them later."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    queue.put_nowait(Unit(spans=(), run_ids=("run-1",)))
    assert len(asyncio.run(_burst(queue))) == 1
