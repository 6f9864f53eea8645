"""Which steps need their ``/messages``: skipping them must never change a span."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import msgspec
import pytest

from letta_otel.letta import enrich
from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.letta.models import StepMetrics
from letta_otel.mapping import ids
from letta_otel.mapping.records import needs_messages
from letta_otel.mapping.spans import map_step
from letta_otel.retry import Backoff, RetryPolicy
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.mapping.test_spans import CTX, span_dict
from tests.samples import SCENARIOS, load_scenario


@pytest.mark.parametrize("name", SCENARIOS)
def test_skipping_messages_leaves_every_span_unchanged(name: str) -> None:
    for record in load_scenario(name).steps:
        parts = StepParts(record.trace, record.metrics, record.messages)
        trace_id = ids.trace_id_from_letta_id(record.step.run_id or record.step.id)
        full = [span_dict(s) for s in map_step(record, CTX, trace_id)]
        if not needs_messages(parts):
            lean = dataclasses.replace(record, messages=())
            assert [span_dict(s) for s in map_step(lean, CTX, trace_id)] == full


def test_the_samples_cover_both_cases() -> None:
    decisions = [
        needs_messages(StepParts(r.trace, r.metrics, r.messages))
        for name in SCENARIOS
        for r in load_scenario(name).steps
    ]
    assert decisions.count(False) >= 5 and decisions.count(True) >= 5


def test_a_step_with_tool_returns_needs_its_messages() -> None:
    tool_steps = [
        r
        for name in SCENARIOS
        for r in load_scenario(name).steps
        if any(m.message_type == "tool_return_message" for m in r.messages)
    ]
    assert tool_steps
    for record in tool_steps:
        assert needs_messages(StepParts(record.trace, record.metrics, record.messages))
    stripped = StepParts(None, None, ())
    assert needs_messages(stripped)  # no trace: messages are the only source of tool calls


def test_trace_and_metrics_come_one_request_each_and_a_failure_names_its_route() -> None:
    """Enricher.trace and Enricher.metrics: a request each (the bridge makes them one
    after the other); one failing for good raises a LettaError naming what failed."""
    step_id = "step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052"
    retry = RetryPolicy(attempts=2, backoff=Backoff(initial=0.01, maximum=0.02, jitter=0.5))

    async def go(server: FakeLettaServer) -> tuple[StepParts, BaseException | None]:
        async with LettaClient(server.base_url, retry=retry, timeout=2) as client:
            enricher = Enricher(client, max_in_flight=4)
            step = await enricher.step(step_id)
            assert step is not None
            parts = StepParts(await enricher.trace(step), await enricher.metrics(step), ())
            server.faults.add(rf"^/v1/steps/{step_id}/metrics$", "500", count=10)
            error = None
            try:
                await enricher.metrics(step)
            except LettaError as exc:
                error = exc
            return parts, error

    with FakeLettaServer(FakeLettaData.from_samples()) as server:
        parts, error = asyncio.run(go(server))
        assert server.count(rf"^/v1/steps/{step_id}/trace$") == 1
        assert server.count(rf"^/v1/steps/{step_id}/metrics$") == 3  # 1, then 2 attempts
    assert parts.trace is not None and parts.trace.step_id == step_id
    assert parts.metrics is not None and parts.metrics.step_ns
    assert isinstance(error, LettaError) and "metrics" in str(error)


# ---------------------------------------------------------------------------------------
# steps without a provider trace (not written yet, or never)
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_without_a_trace_skipping_messages_leaves_every_span_unchanged(name: str) -> None:
    """The captured steps as they are before their trace is written (or when it never
    is): whenever ``needs_messages`` skips ``/messages``, the spans are the same."""
    for record in load_scenario(name).steps:
        untraced = dataclasses.replace(record, trace=None)
        trace_id = ids.trace_id_from_letta_id(record.step.run_id or record.step.id)
        full = [span_dict(s) for s in map_step(untraced, CTX, trace_id)]
        parts = StepParts(None, record.metrics, record.messages)
        if not needs_messages(parts, record.step):
            lean = dataclasses.replace(untraced, messages=())
            assert [span_dict(s) for s in map_step(lean, CTX, trace_id)] == full


def test_without_a_trace_messages_are_skipped_exactly_for_steps_that_asked_for_no_tool() -> None:
    skipped: list[str] = []
    fetched: list[str] = []
    for name in SCENARIOS:
        for record in load_scenario(name).steps:
            parts = StepParts(None, record.metrics, record.messages)
            (fetched if needs_messages(parts, record.step) else skipped).append(
                f"{name}/{record.step.stop_reason}"
            )
            no_tool_time = record.metrics is not None and not record.metrics.tool_execution_ns
            stopped = record.step.stop_reason in ("end_turn", "llm_api_error")
            assert needs_messages(parts, record.step) is not (no_tool_time and stopped)
    # Every step that ran a tool (memgpt's send_message included) still gets them; the
    # plain answers, the final steps of tool runs and the failed LLM calls do not.
    assert sorted(skipped) == [
        "async_slow_tool/end_turn",
        "fail_http500/llm_api_error",
        "fail_malformed/llm_api_error",
        "plain/end_turn",
        "slow/end_turn",
        "stream_fail/llm_api_error",
        "stream_tool/end_turn",
        "tool_two_steps/end_turn",
    ]
    assert len(fetched) == 6


def test_without_a_trace_a_refused_tool_call_keeps_its_messages() -> None:
    """A call the tool rules refused is answered with an error return without running:
    Letta records no tool time, the step goes on (no stop reason), and the error
    ``execute_tool`` span comes from the messages alone. So does an unknown stop
    reason, and metrics not written yet."""
    record = load_scenario("tool_two_steps").steps[0]
    assert record.metrics is not None and record.metrics.tool_execution_ns
    metrics = msgspec.structs.replace(record.metrics, tool_execution_ns=0)
    refused = dataclasses.replace(record, trace=None, metrics=metrics)
    parts = StepParts(None, metrics, ())
    assert needs_messages(parts, refused.step)  # stop reason None: it went on
    trace_id = ids.trace_id_from_letta_id(record.step.run_id or record.step.id)
    names = [s.name for s in map_step(refused, CTX, trace_id)]
    lean = [s.name for s in map_step(dataclasses.replace(refused, messages=()), CTX, trace_id)]
    assert any(n.startswith("execute_tool") for n in names)
    assert not any(n.startswith("execute_tool") for n in lean)
    assert needs_messages(parts, msgspec.structs.replace(refused.step, stop_reason="max_steps"))
    answered = msgspec.structs.replace(refused.step, stop_reason="end_turn")
    assert not needs_messages(parts, answered)
    assert needs_messages(StepParts(None, None, ()), answered)  # metrics not written yet
    assert needs_messages(StepParts(None, StepMetrics(), ()), answered)  # all null yet


# ---------------------------------------------------------------------------------------
# runs from listing pages
# ---------------------------------------------------------------------------------------

RUN_BY_ID = r"^/v1/runs/[^/]+$"
RUNS_LISTING = r"^/v1/runs/$"


def test_runs_come_from_the_newest_runs_page_with_their_status_of_the_cycle() -> None:
    data = FakeLettaData.from_samples()
    running = data.add_run("tool_two_steps", pending=True)
    run_ids = data.run_ids()

    async def go(server: FakeLettaServer) -> list[list[str | None]]:
        async with LettaClient(server.base_url, timeout=5) as client:
            enricher = Enricher(client, max_in_flight=4)
            statuses = []
            for cycle in range(3):
                enricher.new_cycle()
                if cycle == 0:  # the bridge asks for the cycle's runs up front
                    enricher.prefetch_runs(set(run_ids), run_ids[0])
                runs = await asyncio.gather(*(enricher.run(r) for r in run_ids * 2))
                statuses.append([r.status if r else None for r in runs[: len(run_ids)]])
                while data.advance(running):
                    pass
            return statuses

    with FakeLettaServer(data) as server:
        statuses = asyncio.run(go(server))
        assert server.count(RUN_BY_ID) == 0
        assert server.count(RUNS_LISTING) == 3  # one page a cycle, shared by every lookup
    at = run_ids.index(running)
    assert [s[at] for s in statuses] == ["running", "completed", "completed"]
    assert all(s is not None for cycle in statuses for s in cycle)


def test_a_run_beyond_the_newest_pages_is_read_by_id_after_one_page() -> None:
    data = FakeLettaData.generate(250)
    oldest, *_, newest = data.run_ids()

    async def go(server: FakeLettaServer) -> tuple[str | None, str | None]:
        async with LettaClient(server.base_url, timeout=5) as client:
            enricher = Enricher(client, max_in_flight=4)
            enricher.new_cycle()
            old = await enricher.run(oldest)
            new = await enricher.run(newest)
            return (old.id if old else None), (new.id if new else None)

    with FakeLettaServer(data) as server:
        assert asyncio.run(go(server)) == (oldest, newest)
        assert server.count(RUNS_LISTING) == 1  # no hit on it: no second page
        assert server.count(RUN_BY_ID) == 1


def test_behind_a_backlog_runs_come_from_pages_after_the_first_run() -> None:
    data = FakeLettaData.generate(250)
    wanted = data.run_ids()[:30]  # the oldest: a backlog's first slice

    async def go(server: FakeLettaServer) -> list[str | None]:
        async with LettaClient(server.base_url, timeout=5) as client:
            enricher = Enricher(client, max_in_flight=4)
            enricher.new_cycle()
            enricher.prefetch_runs(set(wanted), wanted[0])
            runs = await asyncio.gather(*(enricher.run(r) for r in wanted))
            return [r.id if r else None for r in runs]

    with FakeLettaServer(data) as server:
        assert asyncio.run(go(server)) == wanted
        assert server.count(RUN_BY_ID) == 1  # the first one, where the pages start
        # the newest page (no hit), then oldest first from the first run (on 0.16.8 the
        # cursor parameter is found out on the way: at most one listing more)
        assert 2 <= server.count(RUNS_LISTING) <= 3


def test_a_runs_listing_that_fails_for_good_leaves_the_runs_to_reads_by_id() -> None:
    data = FakeLettaData.from_samples()
    run_ids = data.run_ids()
    retry = RetryPolicy(attempts=2, backoff=Backoff(initial=0.01, maximum=0.02, jitter=0.5))

    async def go(server: FakeLettaServer) -> list[str | None]:
        async with LettaClient(server.base_url, retry=retry, timeout=2) as client:
            enricher = Enricher(client, max_in_flight=4)
            enricher.new_cycle()
            enricher.prefetch_runs(set(run_ids), run_ids[0])
            runs = await asyncio.gather(*(enricher.run(r) for r in run_ids))
            return [r.id if r else None for r in runs]

    with FakeLettaServer(data) as server:
        server.faults.add(RUNS_LISTING, "500", count=-1)
        assert asyncio.run(go(server)) == run_ids
        # The newest page and the ascending page after the first run, 2 attempts each:
        # a failed listing is not asked again by the later lookups of the cycle.
        assert server.count(RUNS_LISTING) == 4
        assert server.count(RUN_BY_ID) == len(run_ids)  # each once (the first one included)


def test_a_run_nobody_asks_for_is_not_read_by_id() -> None:
    data = FakeLettaData.generate(250)  # 3 pages: the oldest is on the last one
    oldest, *rest = data.run_ids()
    newest = rest[-5:]

    async def go(server: FakeLettaServer) -> None:
        async with LettaClient(server.base_url, timeout=5) as client:
            enricher = Enricher(client, max_in_flight=4)
            enricher.new_cycle()
            # the cycle wants an old open run too (its root is not due: nobody asks)
            enricher.prefetch_runs({oldest, *newest}, newest[0])
            assert [r.id for r in await asyncio.gather(*map(enricher.run, newest)) if r] == (newest)
            enricher.new_cycle()
            await asyncio.sleep(0.2)

    with FakeLettaServer(data) as server:
        asyncio.run(go(server))
        assert server.count(RUN_BY_ID) == 0
        assert server.count(RUNS_LISTING) == 2  # the newest page; the next brought none


def test_a_hung_runs_listing_holds_a_lookup_back_briefly_then_it_reads_by_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enrich, "LISTING_WAIT", 0.2)
    data = FakeLettaData.from_samples()
    run_ids = data.run_ids()

    async def go(server: FakeLettaServer) -> tuple[list[str | None], float]:
        async with LettaClient(server.base_url, timeout=30) as client:
            enricher = Enricher(client, max_in_flight=4)
            enricher.new_cycle()
            enricher.prefetch_runs(set(run_ids), run_ids[0])
            started = time.monotonic()
            first = asyncio.ensure_future(enricher.run(run_ids[0]))
            await asyncio.sleep(0.05)
            enricher.new_cycle()  # the next cycle begins while the lookup waits
            runs = [await first, *await asyncio.gather(*map(enricher.run, run_ids[1:]))]
            took = time.monotonic() - started
            return [r.id if r else None for r in runs], took

    with FakeLettaServer(data) as server:
        server.faults.add(RUNS_LISTING, "timeout", count=-1, seconds=5)
        found, took = asyncio.run(go(server))
        assert found == run_ids  # none cancelled, none lost
        assert took < 4  # it did not wait for the hung listing (5 s)
        assert server.count(RUN_BY_ID) == len(run_ids)


def test_expired_agents_leave_the_cache_once_it_is_large(monkeypatch: pytest.MonkeyPatch) -> None:
    # A daemon runs for months and fleets create short-lived agents: the agent cache must
    # not keep every agent it ever saw. (Unknown ids are cached too: as None.)
    monkeypatch.setattr(enrich, "AGENT_CACHE_SWEEP", 3)

    async def go(server: FakeLettaServer) -> list[int]:
        async with LettaClient(server.base_url, timeout=2) as client:
            enricher = Enricher(client, max_in_flight=4, agent_ttl=0.05)
            sizes = []
            for n in range(3):
                await enricher.lookup_agent(f"agent-gone-{n}")
            sizes.append(len(enricher._agents))  # the size is the point
            await asyncio.sleep(0.06)  # all three expire
            await enricher.lookup_agent("agent-new")
            sizes.append(len(enricher._agents))
            return sizes

    with FakeLettaServer(FakeLettaData.from_samples()) as server:
        assert asyncio.run(go(server)) == [3, 1]
