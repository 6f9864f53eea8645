"""The pipeline's order: a cycle discovers and schedules; the work outlives it.

A cycle, each poll:

1. discovery lists new steps (and, on the steps route, current views of recent ones);
   they are recorded ``open`` together with the new cursor (nothing can be passed over
   by a crash);
2. filters and sampling, when configured, sort the open steps that are due and settle
   what they drop (:mod:`.selecting`);
3. every open step that is due and not already in flight is scheduled: brought up to
   date and, once terminal, enriched into a draft (:mod:`.steps`); a step the listing
   did not bring is re-read by id with back-off, not every cycle;
4. every owed LLM span whose next look is due is scheduled (:mod:`.owed`);
5. a run whose steps are all settled gets its root scheduled, so its root span arrives
   with or after its children, never before them (:mod:`.runs`);
6. settled entries older than a day are pruned (:mod:`.checkpoint`).

The scheduled work runs on long-lived workers (:mod:`.workers`, at most
``2 x max_concurrency`` objects in flight, ``max_concurrency`` requests), and what they
make goes to the long-lived exporter (:mod:`.batches`), which maps drafts in bursts,
packs units into bounded batches, exports them from a worker thread and commits each
confirmed batch. Neither waits for the cycle, nor the cycle for them: the next
discovery starts after the poll interval whether or not a hung request has come back,
and a slow request delays only its own object. A failed export stops exporting until
the next cycle (after the daemon's backoff); what it dropped is scheduled again then,
with the same span ids.

``--once`` and the backfill (``once=True``) wait within the cycle until everything it
scheduled is done and committed, steps before run roots, and do not wait for late data:
a step goes out without a trace not written yet, with its LLM span from its metrics.

Each piece keeps its own state; :class:`Bridge` only knows the order and hands each
piece its collaborators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from letta_otel.config.shard import Shard
from letta_otel.export.sink import SpanSink
from letta_otel.letta.client import LettaError
from letta_otel.letta.discovery import Discovered, Discovery
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import Step
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.spans import MappingContext
from letta_otel.mapping.timing import to_ns
from letta_otel.pipeline.batches import BatchExporter, BatchScale, TraceBudget
from letta_otel.pipeline.checkpoint import Checkpoint, Pruner
from letta_otel.pipeline.observer import BridgeObserver, NullObserver
from letta_otel.pipeline.owed import LlmChecks
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.runs import RunRoots
from letta_otel.pipeline.selecting import Selection
from letta_otel.pipeline.steps import DraftMapper, StepDrafts
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.pipeline.units import Key, Unit
from letta_otel.pipeline.workers import Workers
from letta_otel.selection.policy import Plan
from letta_otel.selection.sharding import keep_own
from letta_otel.state import OpenStep, OwedLlm

# Behind a backlog (the listing's pages came back full), the next discovery waits until
# the work scheduled is down to this many jobs not started: the backlog streams through
# in slices, so memory stays flat, and the workers never run dry meanwhile.
BACKLOG_QUEUED = 256
# How often a wait inside a cycle looks at the stop flag.
STOP_CHECK = 0.2
# After a failed export, how long a cycle waits to see whether the backend takes its
# first batch again (the work in flight may include a hung request).
PROBE_WAIT = 10.0


@dataclass(frozen=True)
class BridgeOptions:
    pending_timeout: timedelta = timedelta(hours=1)
    enrich_grace: timedelta = timedelta(seconds=60)
    adopt_letta_trace_id: bool = False
    max_batch_spans: int = 512
    max_batch_bytes: int = 3_000_000
    # Per-trace byte budget for captured content; None = not tracked (capture off).
    max_trace_bytes: int | None = None
    shard: Shard | None = None


class Bridge:
    def __init__(
        self,
        *,
        discovery: Discovery,
        enricher: Enricher,
        sink: SpanSink,
        state: Checkpoint,
        context: MappingContext,
        options: BridgeOptions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: BridgeObserver | None = None,
        selection: Selection | None = None,
    ) -> None:
        self.discovery = discovery
        self._enricher = enricher
        self._state = state
        self._options = options
        self._clock = clock
        self._observer = observer or NullObserver()
        self._selection = selection if selection is not None and selection.active else None
        self._pruner = Pruner(state)
        self._trace_ids = TraceIds(state, adopt_letta_trace_id=options.adopt_letta_trace_id)
        self._steps = StepDrafts(
            enricher,
            state,
            pending_timeout=options.pending_timeout,
            enrich_grace=options.enrich_grace,
        )
        self._llm = LlmChecks(enricher, context, state, grace=options.enrich_grace)
        self._runs = RunRoots(enricher, context, state, self._observer, self._selection)
        # Objects in flight at once: enough to keep every request slot busy, few enough
        # that memory does not grow with the backlog (each holds a provider trace).
        self._workers = Workers(max(4, 2 * enricher.max_in_flight), self._job_failed)
        self._exporter = BatchExporter(
            mapper=DraftMapper(context, state, self._observer, enrich_grace=options.enrich_grace),
            sink=sink,
            checkpoint=state,
            observer=self._observer,
            scale=BatchScale(options.max_batch_spans, options.max_batch_bytes),
            trace_budget=TraceBudget(state, options.max_trace_bytes)
            if options.max_trace_bytes
            else None,
            trace_ids=self._trace_ids,
            clock=clock,
            max_batch_bytes=options.max_batch_bytes,
            settled=self._workers.release,
            committed=self._committed,
        )
        # One report, added to by every piece whenever its work ends; each cycle hands
        # out what it holds (CycleReport.take).
        self._report = self._exporter.report
        self._report.discovery = discovery.name
        # From the last cycle, for roots scheduled as their steps commit: the run of the
        # slice's last step behind a backlog (its start, once fetched), the runs
        # selection holds, and whether that cycle was a --once one.
        self._edge_run: str | None = None
        self._edge: asyncio.Task[datetime] | None = None
        self._held_runs: set[str] = set()

    async def cycle(
        self, *, once: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> CycleReport:
        """One poll; the report of what happened since the previous one."""
        exporter, state, workers = self._exporter, self._state, self._workers
        exporter.should_stop = should_stop
        # After a failed export: this cycle comes after the daemon's backoff.
        probing = not exporter.healthy
        exporter.resume()
        if not once:
            await self._until(lambda: workers.queued <= BACKLOG_QUEUED, should_stop)
        now = self._clock()
        now_ns = to_ns(now)
        try:
            found = await self.discovery.discover(state, now)
        except LettaError as exc:
            self._report.letta_error("discovering steps", exc)
            return self._hand_out()
        known = self._record(found, now_ns)
        # Behind a backlog the listing stopped mid-stream: a run may have steps beyond
        # this slice. Its root waits unless it ended before the slice's last step began
        # (also a root scheduled as its steps commit, from now on).
        edge_run = next((s.run_id for s in reversed(found.steps) if s.run_id), None)
        self._edge_run = edge_run if found.more else None
        self._edge = None
        open_steps = state.open_steps()
        plan = await self._schedule_steps(open_steps, known, now_ns, once)
        self._held_runs = plan.busy_runs
        if once:
            await self._settle(should_stop)
            open_steps = state.open_steps()
        busy = {o.run_id for o in open_steps if o.run_id and o.step_id not in plan.settled_ids}
        self._schedule_roots(busy | plan.busy_runs, None, now_ns)
        if once:
            await self._settle(should_stop)
        elif probing:
            # The backend failed last time: see whether it takes this cycle's first
            # batch before reporting, so the daemon's backoff ends as soon as it does
            # (and doubles while it does not). Only while failing does a cycle wait.
            await self._until(
                lambda: (
                    exporter.healthy or exporter.stopped or not (workers.active or exporter.pending)
                ),
                should_stop,
                timeout=PROBE_WAIT,
            )
        self._pruner.maybe_prune(now)
        return self._hand_out()

    def _record(self, found: Discovered, now_ns: int) -> dict[str, Step]:
        """Record what discovery found as open, with its cursors; the current views of
        the steps still to be settled, by id."""
        state, report = self._state, self._report
        self._skip_invalid(now_ns, report)
        found.steps = keep_own(self._options.shard, found.steps)
        self._observer.polled(found.steps)
        settled = state.settled_step_ids(s.id for s in found.steps)
        fresh = list({s.id: s for s in found.steps if s.id not in settled}.values())
        state.record_discovered(
            [(s.id, s.run_id, s.status) for s in fresh],
            now_ns=now_ns,
            run_ids=sorted({s.run_id for s in fresh if s.run_id}),
            meta=found.meta,
        )
        report.discovered += len(fresh)
        report.more = found.more
        self._enricher.new_cycle(found.runs)
        self._trace_ids.forget_pinned()
        first_run = next((s.run_id for s in fresh if s.run_id), None)
        if first_run:
            wanted = {s.run_id for s in fresh if s.run_id} | set(state.open_run_ids())
            self._enricher.prefetch_runs(wanted, first_run)
        return {s.id: s for s in fresh}

    async def _schedule_steps(
        self, open_steps: list[OpenStep], known: dict[str, Step], now_ns: int, once: bool
    ) -> Plan:
        """Schedule the open steps that are due and not in flight (through filters and
        sampling, when configured), and the owed LLM spans whose look is due."""
        workers = self._workers
        self._steps.keep_only({o.step_id for o in open_steps})
        due = [
            o
            for o in open_steps
            if not workers.busy(("step", o.step_id))
            and self._steps.due(o, listed=o.step_id in known, now_ns=now_ns, once=once)
        ]
        todo, rates, plan = due, dict[str, int | None](), Plan()
        if self._selection is not None:
            plan = await self._select(self._selection, due, known, now_ns, self._report)
            todo, rates = [o for o in due if o.step_id in plan.proceed], plan.proceed
        for entry in todo:
            step_id = entry.step_id
            job = partial(
                self._step_job, entry, known.get(step_id), now_ns, once, rates.get(step_id)
            )
            workers.submit(("step", step_id), job)
        for row in self._llm.due(now_ns, once=once):
            workers.submit(("llm", row.step_id), partial(self._llm_job, row, once))
        return plan

    async def aclose(self) -> CycleReport:
        """Stop: cancel the work in flight (a hung request included: its object stays
        open for the next start), let the export in flight finish and be committed,
        drop the rest. The report of what happened since the last cycle's."""
        await self._workers.aclose()
        if self._edge is not None:
            self._edge.cancel()
        self._exporter.closing = True
        await self._exporter.aclose()
        self._enricher.new_cycle()  # gives up the run prefetch still under way
        return self._hand_out()

    # --- the work --------------------------------------------------------------------

    async def _step_job(
        self,
        entry: OpenStep,
        step: Step | None,
        now_ns: int,
        once: bool,
        sample_rate: int | None,
    ) -> bool:
        if self._exporter.stopped:
            return False  # the export failed: scheduled again next cycle
        draft = await self._steps.draft(
            entry, step, now_ns, once, self._trace_ids, self._report, sample_rate
        )
        if draft is None:
            return False
        await self._exporter.put(draft)
        return True

    async def _llm_job(self, row: OwedLlm, once: bool) -> bool:
        if self._exporter.stopped:
            return False
        unit = await self._llm.check(row, to_ns(self._clock()), once=once, report=self._report)
        if unit is None:
            return False
        await self._exporter.put(unit)
        return True

    async def _root_job(
        self, run_id: str, edge: Awaitable[datetime] | None, now_ns: int, rate: int | None
    ) -> bool:
        if self._exporter.stopped:
            return False
        unit = await self._runs.unit(run_id, edge, now_ns, self._trace_ids, self._report, rate)
        if unit is None:
            return False
        await self._exporter.put(unit)
        return True

    async def _filtered_job(self, run_id: str, now_ns: int) -> bool:
        await self._runs.settle_filtered(run_id, now_ns, self._report)
        return False

    def _job_failed(self, key: Key, exc: Exception) -> None:
        self._report.unexpected_error(f"{key[0]} {key[1]}", exc)

    def _committed(self, batch: Sequence[Unit]) -> None:
        """Steps were committed: a run none of whose steps is open any more gets its root
        scheduled now, not at the next cycle."""
        runs = {
            record.step.run_id
            for unit in batch
            for record in unit.records
            if isinstance(record, StepRecord) and record.step.run_id
        }
        if not runs or self._exporter.stopped or self._exporter.closing:
            return
        busy = self._state.runs_with_open_steps(runs) | self._held_runs
        self._schedule_roots(busy, runs, to_ns(self._clock()))

    def _schedule_roots(self, busy: set[str], among: set[str] | None, now_ns: int) -> None:
        workers = self._workers
        rates, none_kept = self._runs.due(busy | workers.busy_ids("run"), among)
        edge: asyncio.Task[datetime] | None = None
        if self._edge_run is not None and rates:
            if self._edge is None:  # fetched once per cycle, shared by its roots
                self._edge = asyncio.ensure_future(
                    self._runs.edge_time(self._edge_run, self._report)
                )
            edge = self._edge
        for run_id, rate in rates.items():
            workers.submit(("run", run_id), partial(self._root_job, run_id, edge, now_ns, rate))
        for run_id in none_kept:
            workers.submit(("run", run_id), partial(self._filtered_job, run_id, now_ns))

    # --- waiting ---------------------------------------------------------------------

    async def _settle(self, should_stop: Callable[[], bool]) -> None:
        """``once``: until everything scheduled is done, exported and committed."""
        await self._until(lambda: not self._workers.active, should_stop)
        if not should_stop():
            await self._exporter.flush()

    async def _until(
        self,
        done: Callable[[], bool],
        should_stop: Callable[[], bool],
        timeout: float | None = None,
    ) -> None:
        """Until ``done()`` (looked at as work ends, and every ``STOP_CHECK``), a stop is
        requested, or ``timeout`` seconds have passed."""
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while not done() and not should_stop() and (end is None or loop.time() < end):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._workers.until(done), STOP_CHECK)

    def _hand_out(self) -> CycleReport:
        """The report so far, with the state's counts; the next one starts from zero."""
        counts = self._state.counts()
        report = self._report
        report.open_steps = counts.get("steps_open", 0)
        report.open_runs = counts.get("runs_open", 0)
        report.llm_owed = counts.get("llm_owed", 0)
        exporter = self._exporter
        report.export_failing = not exporter.healthy and (
            exporter.stopped or exporter.pending or self._workers.active
        )
        return report.take()

    # --- selection -------------------------------------------------------------------

    def _skip_invalid(self, now_ns: int, report: CycleReport) -> None:
        invalid = [
            r.record_id for r in self._enricher.drain_invalid() if r.kind == "step" and r.record_id
        ]
        if invalid:
            # Logged with its id by the client; recorded so it is counted, not lost silently.
            self._state.mark_skipped(invalid, now_ns=now_ns)
            report.skipped += len(invalid)

    async def _select(
        self,
        selection: Selection,
        open_steps: list[OpenStep],
        known: dict[str, Step],
        now_ns: int,
        report: CycleReport,
    ) -> Plan:
        """Filters and sampling sort the open steps and settle what they drop."""
        plan = await selection.select(open_steps, known, self._state, now_ns=now_ns)
        for doing, exc in plan.errors:
            report.letta_error(doing, exc)
        report.filtered_steps += len(plan.filtered)
        report.sampled_out_steps += len(plan.sampled)
        report.sampled_out_runs += len(plan.sampled_runs)
        report.held_steps += len(plan.held)
        report.waiting += len(plan.held)
        await selection.account(plan, self._observer, now_ns=now_ns)
        return plan
