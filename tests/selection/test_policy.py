"""The per-cycle policy on a real state file: runs decided whole, late failures, filters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from letta_otel.letta.client import LettaError
from letta_otel.letta.models import Agent, Run, Step, convert
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.pipeline.selecting import Selection
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.policy import Plan
from letta_otel.selection.sampling import Sampler
from letta_otel.state import StateStore

AGENT = "agent-11111111-1111-4111-8111-111111111111"
NS = 1_000_000_000
HOUR = 3600 * NS


def _run_id(kept_at_half: bool) -> str:
    sampler = Sampler(0.5)
    return next(rid for i in range(1000) if sampler.keeps(rid := f"run-{i:04d}") is kept_at_half)


class FakeEnricher:
    """The three lookups the policy makes, from dicts; a value that is an exception raises."""

    def __init__(self) -> None:
        self.runs: dict[str, Any] = {}
        self.steps: dict[str, Any] = {}
        self.agents: dict[str, Any] = {AGENT: Agent(id=AGENT, name="a", tags=["prod"])}
        self.step_fetches: list[str] = []

    @staticmethod
    def _answer(value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value

    async def run(self, run_id: str) -> Run | None:
        return self._answer(self.runs.get(run_id))

    async def step(self, step_id: str) -> Step | None:
        self.step_fetches.append(step_id)
        return self._answer(self.steps.get(step_id))

    async def lookup_agent(self, agent_id: str | None) -> Agent | None:
        return self._answer(self.agents.get(agent_id or ""))

    async def agent(self, agent_id: str | None) -> Agent | None:
        try:
            return await self.lookup_agent(agent_id)
        except LettaError:
            return None


class Harness:
    def __init__(self, state: StateStore, selection: Selection, enricher: FakeEnricher) -> None:
        self.state, self.selection, self.enricher = state, selection, enricher
        self.now_ns = 10 * NS

    def run(self, run_id: str, status: str) -> None:
        self.enricher.runs[run_id] = Run(id=run_id, status=status, agent_id=AGENT)

    def step(self, step_id: str, run_id: str | None, status: str, **fields: Any) -> Step:
        step = convert(
            Step, {"id": step_id, "run_id": run_id, "status": status, "agent_id": AGENT, **fields}
        )
        self.enricher.steps[step_id] = step
        self.state.record_discovered(
            [(step_id, run_id, status)], now_ns=self.now_ns, run_ids=[run_id] if run_id else []
        )
        return step

    def cycle(self, *, advance: int = NS) -> Plan:
        """One cycle's selection; nothing listed, so every open step is fetched (or held)."""
        self.now_ns += advance
        plan = self.selection.select(self.state.open_steps(), {}, self.state, now_ns=self.now_ns)
        return asyncio.run(plan)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "s.db")
    yield store
    store.close()


def _harness(
    state: StateStore, *, ratio: float = 0.5, filters: StepFilters | None = None
) -> Harness:
    enricher = FakeEnricher()
    selection = Selection(
        filters or StepFilters(),
        Sampler(ratio),
        enricher,  # type: ignore[arg-type]
        pending_timeout=timedelta(hours=1),
    )
    return Harness(state, selection, enricher)


@pytest.mark.parametrize("kept", [True, False])
def test_steps_wait_for_their_run_then_go_together(state: StateStore, kept: bool) -> None:
    h = _harness(state)
    run_id = _run_id(kept)
    h.run(run_id, "running")
    h.step("s1", run_id, "success")
    h.step("s2", run_id, "pending")
    plan = h.cycle()
    assert plan.held == {"s1", "s2"} and not plan.proceed and not plan.sampled
    h.enricher.steps["s2"] = Step(id="s2", run_id=run_id, status="success", agent_id=AGENT)
    plan = h.cycle()
    assert plan.held == {"s1", "s2"}  # both finished, the run is still running
    assert h.enricher.step_fetches.count("s1") == 1  # a held finished step is not re-read
    h.run(run_id, "completed")
    plan = h.cycle()
    if kept:
        assert plan.proceed == {"s1": 2, "s2": 2}
        assert plan.kept_runs == {run_id: 2}
        assert state.run_selection_info([run_id])[run_id].sample_rate == 2
    else:
        assert {c.step_id for c in plan.sampled} == {"s1", "s2"}
        assert plan.sampled_runs == [run_id]
        assert (state.step_state("s1"), state.run_state(run_id)) == ("sampled", "sampled")
        assert state.open_steps() == []


@pytest.mark.parametrize(
    ("run_status", "step_status"),
    [("failed", "success"), ("completed", "failed"), ("cancelled", "cancelled")],
)
def test_a_failure_keeps_the_whole_run_at_rate_one(
    state: StateStore, run_status: str, step_status: str
) -> None:
    h = _harness(state, ratio=0.0)
    run_id = _run_id(False)
    h.run(run_id, run_status)
    h.step("s1", run_id, "success")
    h.step("s2", run_id, step_status)
    plan = h.cycle()
    assert plan.proceed == {"s1": 1, "s2": 1}
    assert plan.kept_runs == {run_id: 1}


def test_a_late_failure_reopens_a_sampled_out_run(state: StateStore) -> None:
    h = _harness(state)
    run_id = _run_id(False)
    h.run(run_id, "completed")
    h.step("s1", run_id, "success")
    assert h.cycle().sampled_runs == [run_id]
    h.step("s2", run_id, "success")  # a late success follows the run
    plan = h.cycle()
    assert [c.step_id for c in plan.sampled] == ["s2"] and not plan.sampled_runs
    h.step("s3", run_id, "failed")  # a late failure brings the run back
    plan = h.cycle()
    assert plan.reopened_runs == {run_id} and plan.held == {"s3"}
    assert run_id in plan.busy_runs
    assert {o.step_id for o in state.open_steps()} == {"s1", "s2", "s3"}
    plan = h.cycle()
    assert plan.proceed == {"s1": 1, "s2": 1, "s3": 1}


def test_a_late_step_of_an_exported_run_follows_it(state: StateStore) -> None:
    h = _harness(state)
    run_id = _run_id(True)
    h.run(run_id, "completed")
    h.step("s1", run_id, "success")
    assert h.cycle().proceed == {"s1": 2}
    state.mark_exported(step_ids=["s1"], run_ids=[run_id], now_ns=h.now_ns)
    h.step("s2", run_id, "pending")
    assert h.cycle().proceed == {"s2": 2}  # the bridge waits for it to finish, then exports


def test_a_run_that_never_finishes_is_kept_after_the_pending_timeout(state: StateStore) -> None:
    h = _harness(state, ratio=0.0)
    run_id = _run_id(False)
    h.run(run_id, "running")
    h.step("s1", run_id, "success")
    assert h.cycle().held == {"s1"}
    plan = h.cycle(advance=HOUR)
    assert plan.proceed == {"s1": 1}


def test_a_step_without_run_is_decided_alone(state: StateStore) -> None:
    h = _harness(state)
    kept = next(f"step-{i}" for i in range(100) if Sampler(0.5).keeps(f"step-{i}"))
    dropped = next(f"step-{i}" for i in range(100) if not Sampler(0.5).keeps(f"step-{i}"))
    failed = next(f"step-{i}" for i in range(100, 200) if not Sampler(0.5).keeps(f"step-{i}"))
    for step_id, status in ((kept, "success"), (dropped, "success"), (failed, "failed")):
        h.step(step_id, None, status)
    plan = h.cycle()
    assert plan.proceed == {kept: 2, failed: 1}
    assert [c.step_id for c in plan.sampled] == [dropped] and not plan.sampled_runs


def test_an_unreadable_run_or_step_blocks_only_its_run(state: StateStore) -> None:
    h = _harness(state)
    h.run("run-a", "completed")
    h.enricher.runs["run-b"] = LettaError("boom")
    h.step("a1", "run-a", "failed")
    h.step("b1", "run-b", "failed")
    h.step("c1", "run-c", "failed")
    h.enricher.steps["c1"] = LettaError("step down")
    h.run("run-c", "completed")
    plan = h.cycle()
    assert plan.proceed == {"a1": 1}
    assert plan.held == {"b1"}
    assert {"run-b", "run-c"} <= plan.busy_runs
    assert [doing for doing, _ in plan.errors] == ["fetching step c1", "fetching run run-b"]


def test_sampling_off_adds_nothing_and_reopens_sampled_runs(state: StateStore) -> None:
    h = _harness(state)
    run_id = _run_id(False)
    h.run(run_id, "completed")
    h.step("s1", run_id, "success")
    assert h.cycle().sampled_runs == [run_id]
    off = _harness(state, ratio=1.0, filters=StepFilters.of(models=["m"]))
    off.enricher.runs = h.enricher.runs
    off.step("s2", run_id, "pending", model="m")
    plan = off.cycle()
    assert plan.proceed == {"s2": None}  # not held: no added lag at ratio 1
    assert plan.reopened_runs == {run_id}  # the run goes out whole after all


def test_filters_settle_what_they_drop(state: StateStore) -> None:
    h = _harness(state, ratio=1.0, filters=StepFilters.of(models=["a"], step_statuses=["failed"]))
    h.run("run-1", "running")
    h.step("s1", "run-1", "pending", model="b")  # wrong model: dropped while still pending
    h.step("s2", "run-1", "pending", model="a")  # right model, status not final yet
    h.step("s3", "run-1", "success", model="a")  # right model, wrong status
    h.step("s4", "run-1", "failed", model="a")
    plan = h.cycle()
    assert {c.step_id for c in plan.filtered} == {"s1", "s3"}
    assert plan.proceed == {"s2": None, "s4": None}
    assert (state.step_state("s1"), state.step_state("s3")) == ("filtered", "filtered")
    state.mark_exported(step_ids=["s4"], run_ids=[], now_ns=h.now_ns)
    due, none_kept = h.selection.root_rates(["run-1"], set(), state)
    assert (due, none_kept) == ({"run-1": None}, [])


def test_a_run_with_every_step_filtered_gets_no_root(state: StateStore) -> None:
    h = _harness(state, ratio=1.0, filters=StepFilters.of(step_statuses=["failed"]))
    h.step("s1", "run-1", "success")
    assert [c.step_id for c in h.cycle().filtered] == ["s1"]
    assert h.selection.root_rates(["run-1"], set(), state) == ({}, ["run-1"])
    assert h.selection.root_rates(["run-1"], {"run-1"}, state) == ({"run-1": None}, [])
    state.record_selection(now_ns=h.now_ns, filtered_runs=["run-1"])
    h.step("s2", "run-1", "failed")  # a late failure passes: the run is reopened
    plan = h.cycle()
    assert plan.reopened_runs == {"run-1"} and plan.proceed == {"s2": None}
    assert state.run_state("run-1") == "open"


def test_agent_tags_are_looked_up_and_errors_are_not_guesses(state: StateStore) -> None:
    other = "agent-22222222-2222-4222-8222-222222222222"
    gone = "agent-33333333-3333-4333-8333-333333333333"
    h = _harness(state, ratio=1.0, filters=StepFilters.of(agent_tags=["prod"]))
    h.enricher.agents[other] = LettaError("agents down")
    h.step("s1", "run-1", "success")
    h.step("s2", "run-2", "success", agent_id=other)
    h.step("s3", "run-3", "success", agent_id=gone)
    plan = h.cycle()
    assert plan.proceed == {"s1": None}  # its agent is tagged prod
    assert [c.step_id for c in plan.filtered] == ["s3"]  # a deleted agent has no tags
    assert "run-2" in plan.busy_runs  # undecided, retried next cycle
    assert state.step_state("s2") == "open"
    assert [doing for doing, _ in plan.errors] == [f"fetching agent {other} for the tag filter"]


class Recorder:
    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.runs: list[RunRecord] = []

    def step_accounted(self, record: StepRecord) -> None:
        self.steps.append(record)

    def run_accounted(self, record: RunRecord) -> None:
        self.runs.append(record)


def test_sampled_out_work_is_handed_to_the_observer(state: StateStore) -> None:
    h = _harness(state)
    run_id = _run_id(False)
    h.run(run_id, "completed")
    h.step("s1", run_id, "success", prompt_tokens=7)
    plan = h.cycle()
    recorder = Recorder()
    asyncio.run(h.selection.account(plan, recorder, now_ns=h.now_ns))
    (record,) = recorder.steps
    assert (record.step.id, record.step.prompt_tokens, record.run) == (
        "s1",
        7,
        h.enricher.runs[run_id],
    )
    assert record.agent is not None and record.agent.id == AGENT
    assert [r.run.id for r in recorder.runs] == [run_id]


run_shapes = st.lists(
    st.tuples(
        st.sampled_from(("completed", "failed", "cancelled", "running")),
        st.lists(
            st.sampled_from(("success", "failed", "cancelled", "pending")), min_size=1, max_size=4
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shapes=run_shapes, n=st.sampled_from((1, 2, 3, 10)))
def test_every_run_is_decided_whole(
    tmp_path_factory: pytest.TempPathFactory, shapes: list[tuple[str, list[str]]], n: int
) -> None:
    path = tmp_path_factory.mktemp("prop") / "s.db"
    store = StateStore(path)
    try:
        h = _harness(store, ratio=1 / n if n > 1 else 0.0)
        runs: dict[str, list[str]] = {}
        for r, (run_status, statuses) in enumerate(shapes):
            run_id = f"run-{r}"
            h.run(run_id, run_status)
            runs[run_id] = [f"step-{r}-{i}" for i in range(len(statuses))]
            for step_id, status in zip(runs[run_id], statuses, strict=True):
                h.step(step_id, run_id, status)
        plan = h.cycle()
        sampled = {c.step_id for c in plan.sampled}
        for run_id, step_ids in runs.items():
            fates = {
                ("proceed", plan.proceed[s])
                if s in plan.proceed
                else ("sampled", None)
                if s in sampled
                else ("held", None)
                if s in plan.held
                else ("?", None)
                for s in step_ids
            }
            assert len(fates) == 1, (run_id, fates)  # all steps of a run share one fate
            (fate, rate) = fates.pop()
            run_status, statuses = shapes[int(run_id.split("-")[1])]
            finished = run_status != "running" and "pending" not in statuses
            failure = run_status in ("failed", "cancelled") or {"failed", "cancelled"} & set(
                statuses
            )
            if not finished:
                assert fate == "held"
            elif failure:
                assert (fate, rate) == ("proceed", 1)  # failures are never sampled out
            else:
                kept = n > 1 and Sampler(1 / n).keeps(run_id)
                assert (fate, rate) == (("proceed", n) if kept else ("sampled", None))
            assert (run_id in plan.sampled_runs) is (fate == "sampled")
    finally:
        store.close()
