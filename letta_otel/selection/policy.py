"""Filters and sampling applied to the open steps of one poll cycle (the bridge's hook).

Each cycle the bridge hands every open step (with its current Letta view) to
:meth:`Selection.select`, which sorts them:

* **filtered** — a filter rejects it: settled as ``filtered``, never enriched. Filters
  on agent, tags, model, handle and project are decided as soon as the step is seen
  (as the server does when the filter is pushed down); the status filter once the step
  is final (or incomplete).
* **proceed** — export it as usual (the bridge still waits for pending steps and late
  provider traces), with the ``SampleRate`` its run was kept at (None: no attribute).
* **held** (sampling only) — its run is not decided yet: the run is not terminal, or
  some of its steps are not. Held steps stay open; nothing is enriched meanwhile.
* **sampled** — its run was sampled out: settled as ``sampled`` with its run.

With sampling off (ratio 1) nothing is held: no added lag.

A run's fate is remembered in the state. A late step of an exported run follows it; a
late step of a sampled-out run is dropped too, unless it is a failure: then the run is
reopened with its sampled-out steps and decided again, whole (it will be kept). A run
whose steps were all filtered out sends no root span; a late step that passes the
filters reopens it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import Run, Step
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.sampling import Sampler, StepView, decide
from letta_otel.state import OpenStep, RunSelection

log = logging.getLogger(__name__)


class SelectionObserver(Protocol):
    """Told about everything sampling settles without exporting it, so metrics still
    count it (``step_accounted`` once per sampled-out step, ``run_accounted`` once per
    sampled-out run, after the state committed the decision)."""

    def step_accounted(self, record: StepRecord) -> None: ...

    def run_accounted(self, record: RunRecord) -> None: ...


class SelectionState(Protocol):
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


@dataclass(frozen=True)
class Candidate:
    """An open step and its current Letta view."""

    entry: OpenStep
    step: Step
    incomplete: bool = False

    @property
    def step_id(self) -> str:
        return self.entry.step_id

    @property
    def run_id(self) -> str | None:
        return self.step.run_id or self.entry.run_id

    @property
    def final(self) -> bool:
        return self.step.is_terminal or self.incomplete

    @property
    def view(self) -> StepView:
        return StepView(self.step.status, self.incomplete)


@dataclass
class Plan:
    proceed: dict[str, int | None] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    filtered: list[Candidate] = field(default_factory=list)
    sampled: list[Candidate] = field(default_factory=list)
    sampled_runs: list[str] = field(default_factory=list)
    kept_runs: dict[str, int] = field(default_factory=dict)
    reopened_runs: set[str] = field(default_factory=set)
    blocked_runs: set[str] = field(default_factory=set)  # undecidable this cycle
    runs: dict[str, Run | None] = field(default_factory=dict)  # as fetched for decisions
    errors: list[tuple[str, LettaError]] = field(default_factory=list)

    @property
    def settled_ids(self) -> set[str]:
        return {c.step_id for c in (*self.filtered, *self.sampled)}

    @property
    def busy_runs(self) -> set[str]:
        """Runs whose root must not go out this cycle."""
        return self.blocked_runs | self.reopened_runs | set(self.sampled_runs)

    @property
    def changes_state(self) -> bool:
        return bool(
            self.filtered
            or self.sampled
            or self.sampled_runs
            or self.kept_runs
            or self.reopened_runs
        )


class Selection:
    def __init__(
        self,
        filters: StepFilters,
        sampler: Sampler,
        enricher: Enricher,
        *,
        pending_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        self.filters = filters
        self.sampler = sampler
        self._enricher = enricher
        self._pending_timeout_ns = int(pending_timeout.total_seconds() * 1_000_000_000)
        # Finished steps held for their run: reused next cycle instead of fetched again.
        self._held: dict[str, Step] = {}

    @property
    def active(self) -> bool:
        return self.filters.active or self.sampler.active

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
        reused while held) and added to it, so the bridge does not fetch them again.
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
        errors: list[tuple[str, LettaError]] = []
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
        candidates = [
            Candidate(o, step, incomplete=self._incomplete(step, o, now_ns))
            for o in open_steps
            if (step := known.get(o.step_id)) is not None
        ]
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

    def _incomplete(self, step: Step, entry: OpenStep, now_ns: int) -> bool:
        """As the bridge decides it: still pending ``pending_timeout`` after first seen."""
        return not step.is_terminal and now_ns - entry.first_seen_ns >= self._pending_timeout_ns

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

    async def plan(
        self,
        candidates: list[Candidate],
        state: SelectionState,
        *,
        unresolved_runs: Iterable[str] = (),
        now_ns: int,
    ) -> Plan:
        """Sort the open steps; ``unresolved_runs`` have an open step Letta did not give us."""
        plan = Plan(blocked_runs=set(unresolved_runs))
        selected = await self._apply_filters(candidates, plan)
        run_ids = {c.run_id for c in selected if c.run_id}
        infos = state.run_selection_info(run_ids) if run_ids else {}
        for run_id in run_ids:
            info = infos.get(run_id)
            # A late step passes the filters, or sampling was turned off since the run
            # was sampled out: the run goes out after all, whole.
            if info is not None and (
                info.state == "filtered" or (info.state == "sampled" and not self.sampler.active)
            ):
                plan.reopened_runs.add(run_id)
        if not self.sampler.active:
            plan.proceed.update(dict.fromkeys((c.step_id for c in selected), None))
        else:
            await self._apply_sampling(selected, infos, plan, now_ns)
        self._held = {
            c.step_id: c.step for c in selected if c.step_id in plan.held and c.step.is_terminal
        }
        return plan

    def root_rates(
        self, run_ids: list[str], kept_now: set[str], state: SelectionState
    ) -> tuple[dict[str, int | None], list[str]]:
        """Of the open runs with no open step: the ones whose root is due (with their
        SampleRate), and the ones whose steps were all filtered out (no root)."""
        if not run_ids:
            return {}, []
        infos = state.run_selection_info(run_ids)
        due: dict[str, int | None] = {}
        none_kept: list[str] = []
        for run_id in run_ids:
            info = infos.get(run_id)
            kept = run_id in kept_now or (info is not None and info.kept_steps > 0)
            if self.filters.active and not kept:
                none_kept.append(run_id)
                continue
            rate = info.sample_rate if info is not None else None
            due[run_id] = (rate or 1) if self.sampler.active else None
        return due, none_kept

    # --- filters ------------------------------------------------------------------------

    async def _apply_filters(self, candidates: list[Candidate], plan: Plan) -> list[Candidate]:
        filters = self.filters
        if not filters.active:
            return list(candidates)
        fields_ok: list[Candidate] = []
        for candidate in candidates:
            target = fields_ok if filters.matches_fields(candidate.step) else plan.filtered
            target.append(candidate)
        tags: dict[str, tuple[str, ...]] = {}
        if filters.needs_agent_tags:
            tags = await self._agent_tags({c.step.agent_id for c in fields_ok}, plan)
        passing: list[Candidate] = []
        for candidate in fields_ok:
            agent_id = candidate.step.agent_id or ""
            if filters.needs_agent_tags and agent_id and agent_id not in tags:
                if candidate.run_id:  # its agent could not be read: decide next cycle
                    plan.blocked_runs.add(candidate.run_id)
                continue
            if not filters.matches_tags(tags.get(agent_id)) or (
                candidate.final
                and not filters.matches_status(
                    candidate.step.status, incomplete=candidate.incomplete
                )
            ):
                plan.filtered.append(candidate)
            else:
                passing.append(candidate)
        return passing

    async def _agent_tags(
        self, agent_ids: set[str | None], plan: Plan
    ) -> dict[str, tuple[str, ...]]:
        ids = sorted(a for a in agent_ids if a)
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

    # --- sampling -----------------------------------------------------------------------

    async def _apply_sampling(
        self,
        selected: list[Candidate],
        infos: dict[str, RunSelection],
        plan: Plan,
        now_ns: int,
    ) -> None:
        by_run: dict[str, list[Candidate]] = defaultdict(list)
        for candidate in selected:
            if candidate.run_id:
                by_run[candidate.run_id].append(candidate)
            else:
                self._decide_alone(candidate, plan)
        runs = await self._runs([r for r in by_run if _state(infos.get(r), plan, r) == "open"])
        plan.runs.update({r: run for r, run in runs.items() if not isinstance(run, LettaError)})
        for run_id, group in by_run.items():
            state = _state(infos.get(run_id), plan, run_id)
            info = infos.get(run_id)
            if state == "exported":
                rate = (info.sample_rate if info else None) or 1
                plan.proceed.update(dict.fromkeys((c.step_id for c in group), rate))
            elif state == "sampled":
                self._late_in_sampled_run(run_id, group, plan)
            else:
                fetched = runs.get(run_id)
                if isinstance(fetched, LettaError):
                    plan.errors.append((f"fetching run {run_id}", fetched))
                    plan.blocked_runs.add(run_id)
                    plan.held.update(c.step_id for c in group)
                    continue
                self._decide_run(run_id, group, fetched, info, plan, now_ns)

    async def _runs(self, run_ids: list[str]) -> dict[str, Run | LettaError | None]:
        results = await asyncio.gather(
            *(self._enricher.run(r) for r in run_ids), return_exceptions=True
        )
        out: dict[str, Run | LettaError | None] = {}
        for run_id, result in zip(run_ids, results, strict=True):
            if isinstance(result, LettaError | Run) or result is None:
                out[run_id] = result
            else:
                raise result
        return out

    def _decide_alone(self, candidate: Candidate, plan: Plan) -> None:
        """A step without a run is its own unit."""
        if not candidate.final:
            plan.held.add(candidate.step_id)
            return
        verdict = decide(candidate.step_id, self.sampler, [candidate.view])
        if verdict.keep:
            plan.proceed[candidate.step_id] = verdict.sample_rate
        else:
            plan.sampled.append(candidate)

    def _late_in_sampled_run(self, run_id: str, group: list[Candidate], plan: Plan) -> None:
        if any(c.final and c.view.is_failure for c in group):
            plan.reopened_runs.add(run_id)  # decided again next cycle, whole
            plan.held.update(c.step_id for c in group)
            return
        for candidate in group:
            if candidate.final:
                plan.sampled.append(candidate)
            else:
                plan.held.add(candidate.step_id)  # might still fail

    def _decide_run(  # noqa: PLR0917
        self,
        run_id: str,
        group: list[Candidate],
        run: Run | None,
        info: RunSelection | None,
        plan: Plan,
        now_ns: int,
    ) -> None:
        oldest = min(c.entry.first_seen_ns for c in group)
        stuck = (
            run is not None and not run.is_terminal and now_ns - oldest >= self._pending_timeout_ns
        )
        run_done = run is None or run.is_terminal or stuck
        if not run_done or run_id in plan.blocked_runs or not all(c.final for c in group):
            plan.held.update(c.step_id for c in group)
            return
        verdict = decide(
            run_id,
            self.sampler,
            [c.view for c in group],
            run_status=run.status if run else None,
            run_incomplete=stuck,
            force_keep=info is not None and info.exported_steps > 0,
        )
        if verdict.keep:
            plan.proceed.update(dict.fromkeys((c.step_id for c in group), verdict.sample_rate))
            plan.kept_runs[run_id] = verdict.sample_rate
        else:
            plan.sampled.extend(group)
            plan.sampled_runs.append(run_id)


def _state(info: RunSelection | None, plan: Plan, run_id: str) -> str:
    if info is None or run_id in plan.reopened_runs:
        return "open"
    return info.state
