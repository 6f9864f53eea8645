"""One poll cycle: discover → enrich → map → export → commit.

Order of a cycle, and why:

1. discovery lists new steps; they are recorded ``open`` together with the new
   cursor (nothing can be passed over by a crash);
2. every open step (new or left from earlier cycles) is brought up to date and, once
   terminal, enriched and mapped into a *unit* of spans;
3. a run becomes a unit when it is terminal and none of its steps is still open, so
   its root span arrives with or after its children, never before them;
4. units are packed into bounded batches as they become ready and exported from a
   worker thread while later steps are still being enriched (a pipeline: at most
   ``2 x max_concurrency`` steps in enrichment, ``QUEUE_UNITS`` units waiting, so
   memory does not grow with the backlog); each confirmed batch is committed in one
   transaction; the first failure ends the cycle (the backend is likely down) and what
   is left is retried next cycle with the same span ids.

Enriched steps are mapped by the consumer in bursts (``GATHER_UNITS`` or
``GATHER_AFTER``), not one by one between network callbacks: the same code run
back to back finds the CPU's caches warm. Measured with ``benchmarks.bench``, this
cuts the daemon's CPU per step by about a tenth (mapping alone by a third).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel._aio import drain, take_burst
from letta_otel.export.budget import (
    BatchPacker,
    estimate_unit_bytes,
    request_overhead,
    trim_spans,
)
from letta_otel.export.sink import SpanSink
from letta_otel.export.trace_budget import TraceBudget, bytes_by_trace
from letta_otel.letta.client import LettaError
from letta_otel.letta.discovery import Discovery
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.letta.models import Run, Step
from letta_otel.mapping import ids
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.spans import MappingContext, map_run, map_step
from letta_otel.mapping.timing import to_ns
from letta_otel.observer import BridgeObserver, NullObserver
from letta_otel.selection.policy import Plan, Selection
from letta_otel.selection.sampling import with_sample_rate
from letta_otel.sharding import Shard, keep_own
from letta_otel.state import OpenStep, StateStore

log = logging.getLogger(__name__)

STATE_RETENTION = timedelta(hours=24)
MIN_BATCH_BYTES = 64 * 1024
MIN_BATCH_SCALE = 1 / 1024
GROW_AFTER_BATCHES = 8
PRUNE_EVERY = timedelta(minutes=10)
# Pipeline bounds: units waiting for export, and a partial batch's longest wait.
QUEUE_UNITS = 256
FLUSH_AFTER = 1.0
# The consumer waits for this many units, or this long after the first, before mapping
# what has arrived (see the module docstring).
GATHER_UNITS = 64
GATHER_AFTER = 0.1


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


@dataclass
class Unit:
    """The spans of one Letta object; exported and committed all together."""

    spans: Sequence[ReadableSpan]
    step_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    records: tuple[StepRecord | RunRecord, ...] = ()  # for the observer, once committed


@dataclass(frozen=True)
class StepDraft:
    """An enriched step whose mapping waits for the consumer (see the module docstring)."""

    record: StepRecord
    trace_id: int
    sample_rate: int | None


@dataclass
class CycleReport:
    discovery: str
    discovered: int = 0
    exported_steps: int = 0
    exported_runs: int = 0
    spans: int = 0
    batches: int = 0
    failed_batches: int = 0
    waiting: int = 0
    skipped: int = 0
    letta_errors: int = 0
    open_steps: int = 0
    open_runs: int = 0
    # Filters and sampling (letta_otel.selection): settled without being exported.
    filtered_steps: int = 0
    filtered_runs: int = 0
    sampled_out_steps: int = 0
    sampled_out_runs: int = 0
    held_steps: int = 0  # finished, waiting for their run's sampling decision
    newest_exported_ns: int | None = None
    more: bool = False  # discovery stopped at its page budget: poll again at once
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_batches == 0 and self.letta_errors == 0


class Bridge:
    def __init__(
        self,
        *,
        discovery: Discovery,
        enricher: Enricher,
        sink: SpanSink,
        state: StateStore,
        context: MappingContext,
        options: BridgeOptions,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observer: BridgeObserver | None = None,
        selection: Selection | None = None,
    ) -> None:
        self.discovery = discovery
        self._observer = observer or NullObserver()
        self._enricher = enricher
        self._sink = sink
        self._state = state
        self._context = context
        self._options = options
        self._clock = clock
        self._selection = selection if selection is not None and selection.active else None
        self._last_prune: datetime | None = None
        # Fraction of the configured batch bounds in use: halved after a failed export
        # (a batch the backend finds too large gets split), restored after successes.
        self._batch_scale = 1.0
        self._good_batches = 0
        self._trace_budget = (
            TraceBudget(state, options.max_trace_bytes) if options.max_trace_bytes else None
        )
        # Steps enriched at once: enough to keep every request slot busy, few enough
        # that memory does not grow with the backlog (each holds a provider trace).
        self._steps_in_flight = max(4, 2 * enricher.max_in_flight)
        self._slice_edge_run: str | None = None
        self._slice_edge: datetime | None = None
        self._pending_timeout_ns = _ns(options.pending_timeout)
        self._enrich_grace_ns = _ns(options.enrich_grace)

    async def cycle(
        self, *, once: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> CycleReport:
        report = CycleReport(self.discovery.name)
        now = self._clock()
        now_ns = to_ns(now)
        try:
            found = await self.discovery.discover(self._state, now)
        except LettaError as exc:
            self._letta_error(report, "discovering steps", exc)
            return report
        self._skip_invalid(now_ns, report)
        found.steps = keep_own(self._options.shard, found.steps)
        self._observer.polled(found.steps)
        settled = self._state.settled_step_ids(s.id for s in found.steps)
        fresh = list({s.id: s for s in found.steps if s.id not in settled}.values())
        self._state.record_discovered(
            [(s.id, s.run_id, s.status) for s in fresh],
            now_ns=now_ns,
            run_ids=sorted({s.run_id for s in fresh if s.run_id}),
            meta=found.meta,
        )
        report.discovered = len(fresh)
        report.more = found.more
        self._enricher.new_cycle(found.runs)

        pins: dict[str, int] = {}
        known = {s.id: s for s in fresh}
        open_steps = self._state.open_steps()
        first_run = next((s.run_id for s in fresh if s.run_id), None)
        if first_run:
            wanted = {o.run_id for o in open_steps if o.run_id} | set(self._state.open_run_ids())
            self._enricher.prefetch_runs(wanted, first_run)
        todo, rates, plan = open_steps, dict[str, int | None](), Plan()
        if self._selection is not None:
            plan = await self._select(self._selection, open_steps, known, now_ns, report)
            todo, rates = [o for o in open_steps if o.step_id in plan.proceed], plan.proceed
        exporter = _Exporter(
            self,
            report,
            should_stop,
            pins,
            now_ns,
            sink=self._sink,
            state=self._state,
            observer=self._observer,
            trace_budget=self._trace_budget,
            clock=self._clock,
            max_batch_bytes=self._options.max_batch_bytes,
        )
        units: asyncio.Queue[Unit | StepDraft | None] = asyncio.Queue(maxsize=QUEUE_UNITS)
        consumer = asyncio.create_task(exporter.consume(units))
        # Behind a backlog the listing stopped mid-stream: a run may have steps beyond
        # this slice. Its root waits unless it ended before the slice's last step began.
        edge_run = next((s.run_id for s in reversed(found.steps) if s.run_id), None)
        self._slice_edge_run = edge_run if found.more else None
        work = _Work(open_steps, todo, known, rates, plan, now_ns, once, pins)
        try:
            await self._produce(work, report, units, exporter)
        finally:
            exporter.closing = True
            await units.put(None)
            await consumer
        self._maybe_prune(now)
        counts = self._state.counts()
        report.open_steps = counts.get("steps_open", 0)
        report.open_runs = counts.get("runs_open", 0)
        return report

    async def _produce(
        self,
        work: _Work,
        report: CycleReport,
        units: asyncio.Queue[Unit | StepDraft | None],
        exporter: _Exporter,
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
                draft = await self._step_draft(
                    entry,
                    work.known.get(entry.step_id),
                    work.now_ns,
                    work.once,
                    work.pins,
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
        self._slice_edge = await self._edge_time(report)
        busy = still_open | work.plan.busy_runs
        for unit in await self._run_units(busy, work.now_ns, work.pins, report, kept_now):
            await units.put(unit)

    def _skip_invalid(self, now_ns: int, report: CycleReport) -> None:
        invalid = [
            r.record_id for r in self._enricher.drain_invalid() if r.kind == "step" and r.record_id
        ]
        if invalid:
            # Logged with its id by the client; recorded so it is counted, not lost silently.
            self._state.mark_skipped(invalid, now_ns=now_ns)
            report.skipped += len(invalid)

    # --- filters and sampling ----------------------------------------------------------

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
            self._letta_error(report, doing, exc)
        report.filtered_steps += len(plan.filtered)
        report.sampled_out_steps += len(plan.sampled)
        report.sampled_out_runs += len(plan.sampled_runs)
        report.held_steps += len(plan.held)
        report.waiting += len(plan.held)
        await selection.account(plan, self._observer, now_ns=now_ns)
        return plan

    # --- steps ----------------------------------------------------------------------

    async def _step_draft(  # noqa: PLR0917
        self,
        entry: OpenStep,
        step: Step | None,
        now_ns: int,
        once: bool,
        pins: dict[str, int],
        report: CycleReport,
        sample_rate: int | None = None,
    ) -> StepDraft | None:
        try:
            if step is None:
                step = await self._enricher.step(entry.step_id)
                if step is None:
                    log.warning("step %s disappeared from Letta; forgetting it", entry.step_id)
                    self._state.forget(step_ids=[entry.step_id])
                    return None
            age_ns = now_ns - entry.first_seen_ns
            incomplete = not step.is_terminal and age_ns >= self._pending_timeout_ns
            if not step.is_terminal and not incomplete:
                report.waiting += 1
                return None
            # One request after the other: a step waits 20 ms more, but needs no task
            # of its own for a second request, and a trace not written yet spares the
            # metrics request. Other steps' requests keep the slots busy meanwhile.
            trace = await self._enricher.trace(step)
            if trace is None and step.is_terminal and not once and age_ns < self._enrich_grace_ns:
                report.waiting += 1  # the trace is usually written moments later
                return None
            metrics = await self._enricher.metrics(step)
            parts = await self._enricher.with_messages(step, StepParts(trace, metrics, ()))
            run = await self._enricher.run(step.run_id) if step.run_id else None
            agent = await self._enricher.agent(step.agent_id)
        except LettaError as exc:
            self._letta_error(report, f"fetching step {entry.step_id}", exc)
            return None
        except Exception as exc:
            self._unexpected_error(report, f"step {entry.step_id}", exc)
            return None
        record = StepRecord(
            step=step,
            trace=parts.trace,
            metrics=parts.metrics,
            messages=parts.messages,
            run=run,
            agent=agent,
            observed_ns=entry.first_seen_ns,
            incomplete=incomplete,
            missing=parts.missing,
        )
        return StepDraft(record, self._step_trace_id(step, pins), sample_rate)

    def map_draft(self, draft: StepDraft, report: CycleReport, now_ns: int) -> Unit | None:
        """The draft's unit of spans; None when it cannot be mapped (then skipped)."""
        record = draft.record
        try:
            spans = map_step(record, self._context, draft.trace_id)
        except Exception:
            # Bad data must not stall the daemon or the steps behind it.
            log.exception("cannot map step %s; skipping it", record.step.id)
            self._state.mark_skipped([record.step.id], now_ns=now_ns)
            self._observer.step_accounted(record)
            report.skipped += 1
            return None
        if draft.sample_rate is not None:
            spans = with_sample_rate(spans, draft.sample_rate)
        return Unit(spans, step_ids=(record.step.id,), records=(record,))

    def _step_trace_id(self, step: Step, pins: dict[str, int]) -> int:
        derived = ids.trace_id_from_letta_id(step.run_id or step.id)
        if not self._options.adopt_letta_trace_id:
            return derived
        if step.run_id is None:
            return ids.parse_letta_trace_id(step.trace_id) or derived
        if step.run_id not in pins:
            pinned = self._state.run_trace_id(step.run_id)
            pins[step.run_id] = (
                int(pinned, 16) if pinned else ids.parse_letta_trace_id(step.trace_id) or derived
            )
        return pins[step.run_id]

    # --- runs -----------------------------------------------------------------------

    async def _edge_time(self, report: CycleReport) -> datetime | None:
        """When the run of the slice's last step began (its steps began no earlier)."""
        if self._slice_edge_run is None:
            return None
        try:
            run = await self._enricher.run(self._slice_edge_run)
        except LettaError as exc:
            self._letta_error(report, f"fetching run {self._slice_edge_run}", exc)
            run = None
        # Unknown: hold every root back until the listing has caught up.
        return (
            run.created_at
            if run is not None and run.created_at
            else datetime.min.replace(tzinfo=UTC)
        )

    async def _run_units(
        self,
        busy: set[str],
        now_ns: int,
        pins: dict[str, int],
        report: CycleReport,
        kept_now: set[str],
    ) -> list[Unit]:
        candidates = [rid for rid in self._state.open_run_ids() if rid not in busy]
        rates: dict[str, int | None] = {}
        none_kept: list[str] = []
        if self._selection is not None:
            rates, none_kept = self._selection.root_rates(candidates, kept_now, self._state)
            candidates = [rid for rid in candidates if rid in rates]
        results = await asyncio.gather(
            *(self._run_unit(rid, now_ns, pins, report, rates.get(rid)) for rid in candidates)
        )
        done = await asyncio.gather(*(self._run_without_steps(rid, report) for rid in none_kept))
        filtered = [rid for rid in done if rid is not None]
        if filtered:
            self._state.record_selection(now_ns=now_ns, filtered_runs=filtered)
            report.filtered_runs += len(filtered)
        return [u for u in results if u is not None]

    async def _run_without_steps(self, run_id: str, report: CycleReport) -> str | None:
        """A run whose steps were all filtered out gets no root; settled once terminal."""
        try:
            run = await self._enricher.run(run_id)
        except LettaError as exc:
            self._letta_error(report, f"fetching run {run_id}", exc)
            return None
        return run_id if run is None or run.is_terminal else None

    async def _run_unit(
        self,
        run_id: str,
        now_ns: int,
        pins: dict[str, int],
        report: CycleReport,
        sample_rate: int | None = None,
    ) -> Unit | None:
        try:
            run = await self._enricher.run(run_id)
            if run is None:
                log.warning("run %s disappeared from Letta; forgetting it", run_id)
                self._state.forget(run_ids=[run_id])
                return None
            if not run.is_terminal:
                return None
            edge = self._slice_edge
            if edge is not None and (run.completed_at is None or run.completed_at >= edge):
                return None  # may still have steps beyond this slice: next cycle
            agent = await self._enricher.agent(run.agent_id)
        except LettaError as exc:
            self._letta_error(report, f"fetching run {run_id}", exc)
            return None
        except Exception as exc:
            self._unexpected_error(report, f"run {run_id}", exc)
            return None
        record = RunRecord(run, agent, now_ns)
        try:
            span = map_run(record, self._context, self._run_trace_id(run, pins))
        except Exception:
            log.exception("cannot map run %s; exporting its steps without it", run_id)
            self._state.mark_exported(step_ids=(), run_ids=(run_id,), now_ns=now_ns)
            self._observer.run_accounted(record)
            report.skipped += 1
            return None
        spans = [span] if sample_rate is None else with_sample_rate([span], sample_rate)
        return Unit(spans, run_ids=(run_id,), records=(record,))

    def _run_trace_id(self, run: Run, pins: dict[str, int]) -> int:
        if self._options.adopt_letta_trace_id:
            if run.id in pins:
                return pins[run.id]
            pinned = self._state.run_trace_id(run.id)
            if pinned:
                return int(pinned, 16)
        return ids.trace_id_from_letta_id(run.id)

    # --- export ---------------------------------------------------------------------

    def account_exported(self, batch: Sequence[Unit]) -> None:
        for unit in batch:
            for record in unit.records:
                if isinstance(record, StepRecord):
                    self._observer.step_accounted(record)
                else:
                    self._observer.run_accounted(record)

    def export_failed(self, n_spans: int, report: CycleReport) -> None:
        report.failed_batches += 1
        report.errors.append(f"export of {n_spans} spans failed")
        self._good_batches = 0
        if self._batch_scale > MIN_BATCH_SCALE:
            self._batch_scale /= 2
        log.warning(
            "export of %d spans failed; nothing was committed, retrying next cycle with "
            "batches at %.0f%% of the configured size",
            n_spans,
            self._batch_scale * 100,
        )

    def export_succeeded(self) -> None:
        self._good_batches += 1
        if self._batch_scale < 1.0 and self._good_batches >= GROW_AFTER_BATCHES:
            self._batch_scale = min(1.0, self._batch_scale * 2)
            self._good_batches = 0

    def batch_bounds(self) -> tuple[int, int]:
        max_spans = max(1, int(self._options.max_batch_spans * self._batch_scale))
        max_bytes = max(MIN_BATCH_BYTES, int(self._options.max_batch_bytes * self._batch_scale))
        return max_spans, max_bytes

    def _maybe_prune(self, now: datetime) -> None:
        if self._last_prune and now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        removed = self._state.prune(older_than_ns=to_ns(now - STATE_RETENTION))
        if removed:
            log.debug("pruned %d exported entries older than %s", removed, STATE_RETENTION)

    def _letta_error(self, report: CycleReport, doing: str, exc: LettaError) -> None:
        report.letta_errors += 1
        report.errors.append(f"{doing}: {exc}")
        log.warning("%s failed: %s", doing, exc)

    def _unexpected_error(self, report: CycleReport, what: str, exc: Exception) -> None:
        """Fetching ``what`` raised something other than a LettaError: a bug met on odd
        data, or a transport error nobody foresaw. Reported here with its traceback (not
        left as a task exception nobody retrieves); the object stays open and is tried
        again next cycle, so nothing is lost if the cause was transient."""
        report.letta_errors += 1
        report.errors.append(f"fetching {what}: {type(exc).__name__}: {exc}")
        log.exception("fetching %s failed unexpectedly; retrying next cycle", what)


class _Exporter:
    """The consuming half of a cycle: packs units into bounded batches and exports them
    in a worker thread while enrichment goes on; commits each confirmed batch.

    A batch leaves when it is full, when its first unit has waited ``FLUSH_AFTER``
    seconds (checked once per ``FLUSH_AFTER``), or at the end of the cycle. The first
    failed export stops the cycle (the backend is likely down); the units still arriving
    are dropped uncommitted and are retried next cycle with the same span ids.
    """

    def __init__(
        self,
        bridge: Bridge,
        report: CycleReport,
        should_stop: Callable[[], bool],
        pins: dict[str, int],
        now_ns: int,
        *,
        sink: SpanSink,
        state: StateStore,
        observer: BridgeObserver,
        trace_budget: TraceBudget | None,
        clock: Callable[[], datetime],
        max_batch_bytes: int,
    ) -> None:
        self._bridge = bridge
        self._sink = sink
        self._state = state
        self._observer = observer
        self._trace_budget = trace_budget
        self._clock = clock
        self._max_batch_bytes = max_batch_bytes
        self._report = report
        self.should_stop = should_stop
        self._pins = pins
        self._pinned: set[str] = set()
        self._now_ns = now_ns
        self._packer = BatchPacker[Unit]()
        # What a request adds to its spans (resource, scope, lengths), once per request:
        # known after the first unit (every span shares the mapping's resource and scope).
        self._framing = 0
        self._batch_since = 0.0  # loop time of the current batch's first unit
        self._timer: asyncio.TimerHandle | None = None
        self.stopped = False
        self.closing = False  # set by the producer before its final None

    async def consume(self, units: asyncio.Queue[Unit | StepDraft | None]) -> None:
        # A timer wakes the consumer once per FLUSH_AFTER with _TICK, rather than a
        # timeout around every get(), which cost more CPU than the batching it guards.
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(FLUSH_AFTER, self._tick, units, loop)
        try:
            while True:
                for item in await self._burst(units):
                    if item is None:
                        await self._flush()
                        return
                    if item is _TICK:
                        if self._packer.units and loop.time() - self._batch_since >= FLUSH_AFTER:
                            await self._flush()
                        continue
                    if self.stopped:
                        continue  # drain: the producer must never block on a full queue
                    unit = (
                        self._bridge.map_draft(item, self._report, self._now_ns)
                        if isinstance(item, StepDraft)
                        else item
                    )
                    if unit is not None:
                        await self._add(unit)
        finally:
            if self._timer is not None:
                self._timer.cancel()

    async def _burst(
        self, units: asyncio.Queue[Unit | StepDraft | None]
    ) -> list[Unit | StepDraft | None]:
        """The next item and everything queued behind it. After a draft it first waits
        until GATHER_UNITS more items have come, the producer's final None arrives or
        GATHER_AFTER has passed (not when the cycle is ending or the export stopped)."""
        first = await units.get()
        if isinstance(first, StepDraft) and not (self.closing or self.stopped):
            return [first, *await take_burst(units, GATHER_UNITS, GATHER_AFTER)]
        return [first, *drain(units)]

    def _tick(
        self, units: asyncio.Queue[Unit | StepDraft | None], loop: asyncio.AbstractEventLoop
    ) -> None:
        if not units.full():
            units.put_nowait(_TICK)
        self._timer = loop.call_later(FLUSH_AFTER, self._tick, units, loop)

    def measure(self, unit: Unit) -> int:
        """An upper bound of the unit's bytes in a request, without encoding it: the
        exporter encodes each batch once, as it sends it (sizing units by the SDK's
        encoding would encode every span twice, a third more CPU per step)."""
        if not self._framing and unit.spans:
            self._framing = request_overhead(unit.spans[0])
        return estimate_unit_bytes(unit)

    async def _add(self, unit: Unit) -> None:
        max_spans, max_bytes = self._bridge.batch_bounds()
        size = self.measure(unit)
        limit = self._max_batch_bytes - self._framing
        if size > limit:
            unit.spans = trim_spans(unit.spans, limit)
            size = self.measure(unit)
        max_bytes -= self._framing
        if not self._packer.fits(unit, size, max_spans=max_spans, max_bytes=max_bytes):
            await self._flush()
        if self.stopped:
            return
        if not self._packer.units:
            self._batch_since = asyncio.get_running_loop().time()
        self._packer.add(unit, size)
        if self._packer.spans >= max_spans:
            await self._flush()

    async def _flush(self) -> None:
        batch = self._packer.take()
        if not batch or self.stopped:
            return
        if self.should_stop():
            self.stopped = True
            return
        bridge, report = self._bridge, self._report
        new_pins = [rid for rid in self._pins if rid not in self._pinned]
        if new_pins:
            # Pinned before the spans that use them leave, so a crash cannot split a run.
            self._state.set_run_trace_ids(
                ((rid, ids.format_trace_id(self._pins[rid])) for rid in new_pins),
                now_ns=self._now_ns,
            )
            self._pinned.update(new_pins)
        if self._trace_budget is not None:
            # Per batch, just before it leaves: earlier batches are committed by now, so
            # the state file holds what each trace has used. Units arrive in the order
            # their enrichment finished; the budget goes to the earliest spans first.
            batch.sort(key=_unit_start)
            self._trace_budget.fit(batch)
        spans: list[ReadableSpan] = [s for unit in batch for s in unit.spans]
        report.batches += 1
        newest = max((s.end_time or 0) for s in spans)
        ok = await asyncio.to_thread(self._sink.export, spans)
        self._observer.exported(ok, len(spans), newest)
        if not ok:
            bridge.export_failed(len(spans), report)
            self.stopped = True
            return
        bridge.export_succeeded()
        step_ids = [sid for unit in batch for sid in unit.step_ids]
        run_ids = [rid for unit in batch for rid in unit.run_ids]
        self._state.mark_exported(
            step_ids=step_ids,
            run_ids=run_ids,
            now_ns=to_ns(self._clock()),
            trace_bytes=bytes_by_trace(spans) if self._trace_budget else None,
        )
        report.exported_steps += len(step_ids)
        report.exported_runs += len(run_ids)
        report.spans += len(spans)
        bridge.account_exported(batch)
        report.newest_exported_ns = max(report.newest_exported_ns or 0, newest)


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
    pins: dict[str, int]


_TICK = Unit(spans=())  # wakes the consumer to flush a batch that has waited long enough


def _unit_start(unit: Unit) -> int:
    return min((s.start_time or 0 for s in unit.spans), default=0)


def _ns(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1_000_000_000)
