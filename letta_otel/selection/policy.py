"""Filters and sampling applied to the open steps of one poll cycle: the decisions (pure).

Each cycle the pipeline (:mod:`letta_otel.pipeline.selecting`) gets every open step's
current Letta view and what the state file knows of their runs, and sorts the steps
with :class:`Policy` into a :class:`Plan`:

* **filtered** — a filter rejects it: settled as ``filtered``, never enriched. Filters
  on agent, tags, model, handle and project are decided as soon as the step is seen
  (as the server does when the filter is pushed down); the status filter once the step
  is final (or incomplete).
* **proceed** — export it as usual (the pipeline still waits for pending steps and late
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

The decisions need data fetched in between (an agent's tags only for the steps whose
own fields pass; a run only while its fate is open), so :class:`Policy` offers them in
the order the pipeline asks: :meth:`~Policy.by_fields`, :meth:`~Policy.tag_lookups`,
:meth:`~Policy.by_tags_and_status`, :meth:`~Policy.reopen`, then either
:meth:`~Policy.proceed_all` (no sampling) or :meth:`~Policy.by_run`,
:meth:`~Policy.runs_to_fetch` and :meth:`~Policy.decide_runs`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from letta_otel.letta.models import Run, Step
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.sampling import Sampler, StepView, decide


class OpenEntry(Protocol):
    """An open step as the state file has it."""

    @property
    def step_id(self) -> str: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def first_seen_ns(self) -> int: ...


class RunFate(Protocol):
    """What the state file knows about a run: its state, the SampleRate it was kept at,
    and how many of its steps went out (exported) or were settled as kept (exported or
    skipped)."""

    @property
    def state(self) -> str: ...
    @property
    def sample_rate(self) -> int | None: ...
    @property
    def exported_steps(self) -> int: ...
    @property
    def kept_steps(self) -> int: ...


@dataclass(frozen=True)
class Candidate:
    """An open step and its current Letta view."""

    entry: OpenEntry
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
    # What could not be fetched (the pipeline's Letta errors): its runs wait.
    errors: list[tuple[str, Exception]] = field(default_factory=list)

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


class Policy:
    def __init__(
        self,
        filters: StepFilters,
        sampler: Sampler,
        *,
        pending_timeout: timedelta = timedelta(hours=1),
    ) -> None:
        self.filters = filters
        self.sampler = sampler
        self._pending_timeout_ns = int(pending_timeout.total_seconds() * 1_000_000_000)

    @property
    def active(self) -> bool:
        return self.filters.active or self.sampler.active

    def candidates(
        self, open_steps: Iterable[OpenEntry], known: Mapping[str, Step], now_ns: int
    ) -> list[Candidate]:
        """The open steps whose Letta view is known, each marked incomplete as the
        pipeline decides it: still pending ``pending_timeout`` after first seen."""
        return [
            Candidate(o, step, incomplete=self._incomplete(step, o, now_ns))
            for o in open_steps
            if (step := known.get(o.step_id)) is not None
        ]

    def _incomplete(self, step: Step, entry: OpenEntry, now_ns: int) -> bool:
        return not step.is_terminal and now_ns - entry.first_seen_ns >= self._pending_timeout_ns

    # --- filters ------------------------------------------------------------------------

    def by_fields(self, candidates: Sequence[Candidate], plan: Plan) -> list[Candidate]:
        """The candidates whose own fields pass (all of them with no filter); the others
        are filtered."""
        filters = self.filters
        if not filters.active:
            return list(candidates)
        fields_ok: list[Candidate] = []
        for candidate in candidates:
            target = fields_ok if filters.matches_fields(candidate.step) else plan.filtered
            target.append(candidate)
        return fields_ok

    def tag_lookups(self, fields_ok: Iterable[Candidate]) -> list[str]:
        """The agents whose tags the tag filter needs (none when it is off)."""
        if not self.filters.needs_agent_tags:
            return []
        return sorted({c.step.agent_id for c in fields_ok if c.step.agent_id})

    def by_tags_and_status(
        self, fields_ok: Iterable[Candidate], tags: Mapping[str, tuple[str, ...]], plan: Plan
    ) -> list[Candidate]:
        """Of the candidates whose fields pass, those whose agent's ``tags`` and (once
        final) status pass too; the others are filtered. A candidate whose agent could
        not be read waits: its run is blocked this cycle."""
        filters = self.filters
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

    # --- runs already decided -----------------------------------------------------------

    def reopen(self, run_ids: Iterable[str], fates: Mapping[str, RunFate], plan: Plan) -> None:
        """A late step passes the filters, or sampling was turned off since the run was
        sampled out: the run goes out after all, whole."""
        for run_id in run_ids:
            fate = fates.get(run_id)
            if fate is not None and (
                fate.state == "filtered" or (fate.state == "sampled" and not self.sampler.active)
            ):
                plan.reopened_runs.add(run_id)

    def held_steps(self, selected: Iterable[Candidate], plan: Plan) -> dict[str, Step]:
        """Finished steps held for their run: the pipeline reuses them next cycle instead
        of fetching them again."""
        return {
            c.step_id: c.step for c in selected if c.step_id in plan.held and c.step.is_terminal
        }

    def root_rates(
        self, run_ids: Sequence[str], kept_now: set[str], fates: Mapping[str, RunFate]
    ) -> tuple[dict[str, int | None], list[str]]:
        """Of the open runs with no open step: the ones whose root is due (with their
        SampleRate), and the ones whose steps were all filtered out (no root)."""
        due: dict[str, int | None] = {}
        none_kept: list[str] = []
        for run_id in run_ids:
            fate = fates.get(run_id)
            kept = run_id in kept_now or (fate is not None and fate.kept_steps > 0)
            if self.filters.active and not kept:
                none_kept.append(run_id)
                continue
            rate = fate.sample_rate if fate is not None else None
            due[run_id] = (rate or 1) if self.sampler.active else None
        return due, none_kept

    # --- sampling -----------------------------------------------------------------------

    def proceed_all(self, selected: Iterable[Candidate], plan: Plan) -> None:
        """Sampling off: every selected step goes on, without a SampleRate."""
        plan.proceed.update(dict.fromkeys((c.step_id for c in selected), None))

    def by_run(self, selected: Iterable[Candidate], plan: Plan) -> dict[str, list[Candidate]]:
        """The selected steps grouped by run; a step without a run is decided at once."""
        by_run: dict[str, list[Candidate]] = defaultdict(list)
        for candidate in selected:
            if candidate.run_id:
                by_run[candidate.run_id].append(candidate)
            else:
                self._decide_alone(candidate, plan)
        return by_run

    def runs_to_fetch(
        self, by_run: Mapping[str, object], fates: Mapping[str, RunFate], plan: Plan
    ) -> list[str]:
        """The runs whose fate is open: deciding them needs their Letta view."""
        return [r for r in by_run if _state(fates.get(r), plan, r) == "open"]

    def decide_runs(
        self,
        by_run: Mapping[str, list[Candidate]],
        fates: Mapping[str, RunFate],
        runs: Mapping[str, Run | Exception | None],
        plan: Plan,
        now_ns: int,
    ) -> None:
        """Keep or drop each run whole; ``runs`` holds the fetched open ones (an
        exception: it could not be read, its steps wait)."""
        plan.runs.update({r: run for r, run in runs.items() if not isinstance(run, Exception)})
        for run_id, group in by_run.items():
            state = _state(fates.get(run_id), plan, run_id)
            fate = fates.get(run_id)
            if state == "exported":
                rate = (fate.sample_rate if fate else None) or 1
                plan.proceed.update(dict.fromkeys((c.step_id for c in group), rate))
            elif state == "sampled":
                self._late_in_sampled_run(run_id, group, plan)
            else:
                fetched = runs.get(run_id)
                if isinstance(fetched, Exception):
                    plan.errors.append((f"fetching run {run_id}", fetched))
                    plan.blocked_runs.add(run_id)
                    plan.held.update(c.step_id for c in group)
                    continue
                self._decide_run(run_id, group, fetched, fate, plan, now_ns)

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
        fate: RunFate | None,
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
            force_keep=fate is not None and fate.exported_steps > 0,
        )
        if verdict.keep:
            plan.proceed.update(dict.fromkeys((c.step_id for c in group), verdict.sample_rate))
            plan.kept_runs[run_id] = verdict.sample_rate
        else:
            plan.sampled.extend(group)
            plan.sampled_runs.append(run_id)


def _state(fate: RunFate | None, plan: Plan, run_id: str) -> str:
    if fate is None or run_id in plan.reopened_runs:
        return "open"
    return fate.state
