"""One poll cycle: discover → select → enrich → map → export → commit, in that order.

Order of a cycle, and why:

1. discovery lists new steps; they are recorded ``open`` together with the new
   cursor (nothing can be passed over by a crash);
2. filters and sampling, when configured, sort the open steps and settle what they
   drop (:mod:`.selecting`);
3. every open step (new or left from earlier cycles) is brought up to date and, once
   terminal, enriched into a draft (:mod:`.steps`), at most ``2 x max_concurrency``
   at a time so memory does not grow with the backlog (each holds a provider trace);
4. a run becomes a unit when it is terminal and none of its steps is still open, so
   its root span arrives with or after its children, never before them (:mod:`.runs`);
5. drafts and units go through a bounded queue to the consumer, which maps drafts in
   bursts, packs units into bounded batches as they become ready and exports them from
   a worker thread while later steps are still being enriched; each confirmed batch is
   committed in one transaction; the first failure ends the cycle (the backend is
   likely down) and what is left is retried next cycle with the same span ids
   (:mod:`.batches`);
6. settled entries older than a day are pruned (:mod:`.checkpoint`).

Each piece keeps its own state; :class:`Bridge` only knows the order and hands each
piece its collaborators.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from letta_otel.config.shard import Shard
from letta_otel.export.sink import SpanSink
from letta_otel.letta.client import LettaError
from letta_otel.letta.discovery import Discovery
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import Step
from letta_otel.mapping.spans import MappingContext
from letta_otel.mapping.timing import to_ns
from letta_otel.pipeline.batches import QUEUE_UNITS, BatchExporter, BatchScale, Item, TraceBudget
from letta_otel.pipeline.checkpoint import Checkpoint, Pruner
from letta_otel.pipeline.observer import BridgeObserver, NullObserver
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.runs import RunRoots
from letta_otel.pipeline.selecting import Selection
from letta_otel.pipeline.steps import DraftMapper, StepDrafts
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.selection.policy import Plan
from letta_otel.selection.sharding import keep_own
from letta_otel.state import OpenStep


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


@dataclass(frozen=True)
class _Work:
    """What one cycle's producer works through."""

    open_steps: list[OpenStep]
    todo: list[OpenStep]  # the open steps selection let through
    known: dict[str, Step]
    rates: dict[str, int | None]
    plan: Plan
    now_ns: int
    once: bool
    edge_run: str | None  # the run of a cut-off listing's last step (see runs.py)


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
        self._sink = sink
        self._state = state
        self._options = options
        self._clock = clock
        self._observer = observer or NullObserver()
        self._selection = selection if selection is not None and selection.active else None
        self._pruner = Pruner(state)
        self._scale = BatchScale(options.max_batch_spans, options.max_batch_bytes)
        self._trace_budget = (
            TraceBudget(state, options.max_trace_bytes) if options.max_trace_bytes else None
        )
        self._steps = StepDrafts(
            enricher,
            state,
            pending_timeout=options.pending_timeout,
            enrich_grace=options.enrich_grace,
        )
        self._mapper = DraftMapper(context, state, self._observer)
        self._runs = RunRoots(enricher, context, state, self._observer, self._selection)
        # Steps enriched at once: enough to keep every request slot busy, few enough
        # that memory does not grow with the backlog (each holds a provider trace).
        self._steps_in_flight = max(4, 2 * enricher.max_in_flight)

    async def cycle(
        self, *, once: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> CycleReport:
        report = CycleReport(self.discovery.name)
        now = self._clock()
        now_ns = to_ns(now)
        state = self._state
        try:
            found = await self.discovery.discover(state, now)
        except LettaError as exc:
            report.letta_error("discovering steps", exc)
            return report
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
        report.discovered = len(fresh)
        report.more = found.more
        self._enricher.new_cycle(found.runs)

        trace_ids = TraceIds(state, adopt_letta_trace_id=self._options.adopt_letta_trace_id)
        known = {s.id: s for s in fresh}
        open_steps = state.open_steps()
        first_run = next((s.run_id for s in fresh if s.run_id), None)
        if first_run:
            wanted = {o.run_id for o in open_steps if o.run_id} | set(state.open_run_ids())
            self._enricher.prefetch_runs(wanted, first_run)
        todo, rates, plan = open_steps, dict[str, int | None](), Plan()
        if self._selection is not None:
            plan = await self._select(self._selection, open_steps, known, now_ns, report)
            todo, rates = [o for o in open_steps if o.step_id in plan.proceed], plan.proceed
        exporter = BatchExporter(
            report,
            should_stop,
            trace_ids,
            now_ns,
            mapper=self._mapper,
            sink=self._sink,
            checkpoint=state,
            observer=self._observer,
            scale=self._scale,
            trace_budget=self._trace_budget,
            clock=self._clock,
            max_batch_bytes=self._options.max_batch_bytes,
        )
        units: asyncio.Queue[Item] = asyncio.Queue(maxsize=QUEUE_UNITS)
        consumer = asyncio.create_task(exporter.consume(units))
        # Behind a backlog the listing stopped mid-stream: a run may have steps beyond
        # this slice. Its root waits unless it ended before the slice's last step began.
        edge_run = next((s.run_id for s in reversed(found.steps) if s.run_id), None)
        work = _Work(
            open_steps, todo, known, rates, plan, now_ns, once, edge_run if found.more else None
        )
        try:
            await self._produce(work, trace_ids, report, units, exporter)
        finally:
            exporter.closing = True
            await units.put(None)
            await consumer
        self._pruner.maybe_prune(now)
        counts = state.counts()
        report.open_steps = counts.get("steps_open", 0)
        report.open_runs = counts.get("runs_open", 0)
        return report

    async def _produce(
        self,
        work: _Work,
        trace_ids: TraceIds,
        report: CycleReport,
        units: asyncio.Queue[Item],
        exporter: BatchExporter,
    ) -> None:
        """Enrich open steps, a bounded number at a time, handing them over as drafts
        as they are ready (the consumer maps them); then the runs none of whose steps is
        still open, as units."""
        settled: set[str] = set(work.plan.settled_ids)
        kept_now: set[str] = set()  # runs with a step exported this cycle (for selection)
        todo = iter(work.todo)

        async def worker() -> None:
            # A fixed set of workers, each taking the next step when done with one: no
            # task per step (creating and finishing one costs as much as a request).
            for entry in todo:
                if exporter.stopped or exporter.should_stop():
                    return
                draft = await self._steps.draft(
                    entry,
                    work.known.get(entry.step_id),
                    work.now_ns,
                    work.once,
                    trace_ids,
                    report,
                    work.rates.get(entry.step_id),
                )
                if draft is not None:
                    settled.add(draft.record.step.id)
                    kept_now.add(entry.run_id or "")
                    await units.put(draft)

        loop = asyncio.get_running_loop()
        workers = [
            loop.create_task(worker()) for _ in range(min(self._steps_in_flight, len(work.todo)))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        if exporter.stopped:
            return
        still_open = {o.run_id for o in work.open_steps if o.step_id not in settled and o.run_id}
        busy = still_open | work.plan.busy_runs
        roots = await self._runs.units(
            busy, work.edge_run, work.now_ns, trace_ids, report, kept_now
        )
        for unit in roots:
            await units.put(unit)

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
