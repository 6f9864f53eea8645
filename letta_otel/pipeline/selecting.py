"""Filters and sampling in a cycle: fetch what the decisions need, ask the pure policy
(:mod:`letta_otel.selection.policy`), record what it settled.

:meth:`Selection.select` gets every open step's current Letta view (the listing's, a
held one, or fetched by id), the tags of their agents (tag filter) and the runs whose
fate is open (sampling), in that order and only as far as the policy needs them; then
it records the filtered and sampled-out steps and runs, the SampleRate of kept runs and
the runs reopened, in one transaction. Sampled-out work still counts in the metrics
(:meth:`Selection.account`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Protocol

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import Run, Step
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.policy import Candidate, Plan, Policy
from letta_otel.selection.sampling import Sampler
from letta_otel.state import OpenStep, RunSelection

log = logging.getLogger(__name__)


class SelectionObserver(Protocol):
    """Told about everything sampling settles without exporting it, so metrics still
    count it (``step_accounted`` once per sampled-out step, ``run_accounted`` once per
    sampled-out run, after the state committed the decision)."""

    def step_accounted(self, record: StepRecord) -> None: ...

    def run_accounted(self, record: RunRecord) -> None: ...


class SelectionState(Protocol):
    """The part of the pipeline's checkpoint selection reads and writes."""

    def run_selection_info(self, run_ids: Iterable[str]) -> dict[str, RunSelection]: ...

    def forget(self, *, step_ids: Iterable[str] = (), run_ids: Iterable[str] = ()) -> None: ...

    def record_selection(
        self,
        *,
        now_ns: int,
        filtered: Iterable[tuple[str, str | None]] = (),
        sampled: Iterable[tuple[str, str | None]] = (),
        sampled_runs: Iterable[str] = (),
        filtered_runs: Iterable[str] = (),
        kept_runs: Mapping[str, int] | None = None,
        reopened_runs: Iterable[str] = (),
    ) -> None: ...


class Selection:
    def __init__(
        self,
        filters: StepFilters,
        sampler: Sampler,
        enricher: Enricher,
        *,
        pending_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        self.policy = Policy(filters, sampler, pending_timeout=pending_timeout)
        self._enricher = enricher
        # Finished steps held for their run: reused next cycle instead of fetched again.
        self._held: dict[str, Step] = {}

    @property
    def filters(self) -> StepFilters:
        return self.policy.filters

    @property
    def sampler(self) -> Sampler:
        return self.policy.sampler

    @property
    def active(self) -> bool:
        return self.policy.active

    async def select(
        self,
        open_steps: list[OpenStep],
        known: dict[str, Step],
        state: SelectionState,
        *,
        now_ns: int,
    ) -> Plan:
        """One cycle: get every open step's current view, sort, settle what is dropped.

        ``known`` holds the steps a listing just returned; the others are fetched (or
        reused while held) and added to it, so the pipeline does not fetch them again.
        Failed fetches are in ``plan.errors``; their runs wait.
        """
        for entry in open_steps:
            held = self._held.get(entry.step_id)
            if entry.step_id not in known and held is not None:
                known[entry.step_id] = held
        to_fetch = [o for o in open_steps if o.step_id not in known]
        fetched = await asyncio.gather(
            *(self._enricher.step(o.step_id) for o in to_fetch), return_exceptions=True
        )
        errors: list[tuple[str, Exception]] = []
        unresolved: set[str] = set()
        gone: list[str] = []
        for entry, result in zip(to_fetch, fetched, strict=True):
            if isinstance(result, LettaError):
                errors.append((f"fetching step {entry.step_id}", result))
                if entry.run_id:
                    unresolved.add(entry.run_id)
            elif isinstance(result, BaseException):
                raise result
            elif result is None:
                log.warning("step %s disappeared from Letta; forgetting it", entry.step_id)
                gone.append(entry.step_id)
            else:
                known[entry.step_id] = result
        if gone:
            state.forget(step_ids=gone)
        candidates = self.policy.candidates(open_steps, known, now_ns)
        plan = await self.plan(candidates, state, unresolved_runs=unresolved, now_ns=now_ns)
        plan.errors[:0] = errors
        if plan.changes_state:
            state.record_selection(
                now_ns=now_ns,
                filtered=[(c.step_id, c.run_id) for c in plan.filtered],
                sampled=[(c.step_id, c.run_id) for c in plan.sampled],
                sampled_runs=plan.sampled_runs,
                kept_runs=plan.kept_runs,
                reopened_runs=plan.reopened_runs,
            )
        return plan

    async def plan(
        self,
        candidates: list[Candidate],
        state: SelectionState,
        *,
        unresolved_runs: Iterable[str] = (),
        now_ns: int,
    ) -> Plan:
        """Sort the open steps; ``unresolved_runs`` have an open step Letta did not give us."""
        policy = self.policy
        plan = Plan(blocked_runs=set(unresolved_runs))
        selected = policy.by_fields(candidates, plan)
        if policy.filters.active:
            tags = await self._agent_tags(policy.tag_lookups(selected), plan)
            selected = policy.by_tags_and_status(selected, tags, plan)
        run_ids = {c.run_id for c in selected if c.run_id}
        fates = state.run_selection_info(run_ids) if run_ids else {}
        policy.reopen(run_ids, fates, plan)
        if not policy.sampler.active:
            policy.proceed_all(selected, plan)
        else:
            by_run = policy.by_run(selected, plan)
            runs = await self._runs(policy.runs_to_fetch(by_run, fates, plan))
            policy.decide_runs(by_run, fates, runs, plan, now_ns)
        self._held = policy.held_steps(selected, plan)
        return plan

    def root_rates(
        self, run_ids: list[str], kept_now: set[str], state: SelectionState
    ) -> tuple[dict[str, int | None], list[str]]:
        """Of the open runs with no open step: the ones whose root is due (with their
        SampleRate), and the ones whose steps were all filtered out (no root)."""
        if not run_ids:
            return {}, []
        return self.policy.root_rates(run_ids, kept_now, state.run_selection_info(run_ids))

    async def account(self, plan: Plan, observer: SelectionObserver, *, now_ns: int) -> None:
        """Sampled-out work still counts: hand it to the observer (metrics), after the
        state committed the decision (so a crash can lose a count, never double it)."""
        for candidate in plan.sampled:
            step = candidate.step
            observer.step_accounted(
                StepRecord(
                    step=step,
                    run=plan.runs.get(candidate.run_id or ""),
                    agent=await self._enricher.agent(step.agent_id),
                    observed_ns=candidate.entry.first_seen_ns,
                    incomplete=candidate.incomplete,
                    missing=frozenset({"trace", "metrics", "messages"}),
                )
            )
        for run_id in plan.sampled_runs:
            run = plan.runs.get(run_id)
            if run is not None:
                observer.run_accounted(
                    RunRecord(run, await self._enricher.agent(run.agent_id), now_ns)
                )

    # --- fetching what the policy needs -------------------------------------------------

    async def _agent_tags(self, ids: list[str], plan: Plan) -> dict[str, tuple[str, ...]]:
        results = await asyncio.gather(
            *(self._enricher.lookup_agent(a) for a in ids), return_exceptions=True
        )
        tags: dict[str, tuple[str, ...]] = {}
        for agent_id, result in zip(ids, results, strict=True):
            if isinstance(result, LettaError):
                plan.errors.append((f"fetching agent {agent_id} for the tag filter", result))
            elif isinstance(result, BaseException):
                raise result
            else:
                # An agent that no longer exists has no tags.
                tags[agent_id] = tuple(result.tags or ()) if result is not None else ()
        return tags

    async def _runs(self, run_ids: list[str]) -> dict[str, Run | Exception | None]:
        results = await asyncio.gather(
            *(self._enricher.run(r) for r in run_ids), return_exceptions=True
        )
        out: dict[str, Run | Exception | None] = {}
        for run_id, result in zip(run_ids, results, strict=True):
            if isinstance(result, LettaError | Run) or result is None:
                out[run_id] = result
            else:
                raise result
        return out
