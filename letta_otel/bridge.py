"""One poll cycle: discover → enrich → map → export → commit.

Order of a cycle, and why:

1. discovery lists new steps; they are recorded ``open`` together with the new
   cursor (nothing can be passed over by a crash);
2. every open step (new or left from earlier cycles) is brought up to date and, once
   terminal, enriched and mapped into a *unit* of spans;
3. a run becomes a unit when it is terminal and none of its steps is still open, so
   its root span arrives with or after its children, never before them;
4. units are packed into bounded batches and exported in order; each confirmed batch
   is committed in one transaction; the first failure ends the cycle (the backend
   is likely down) and what is left is retried next cycle with the same span ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.export.budget import plan_batches, trim_spans
from letta_otel.export.sink import SpanSink
from letta_otel.letta.client import LettaError
from letta_otel.letta.discovery import Discovery
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import Run, Step
from letta_otel.mapping import ids
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.spans import MappingContext, map_run, map_step
from letta_otel.mapping.timing import to_ns
from letta_otel.state import OpenStep, StateStore

log = logging.getLogger(__name__)

STATE_RETENTION = timedelta(hours=24)
MIN_BATCH_BYTES = 64 * 1024
MIN_BATCH_SCALE = 1 / 1024
GROW_AFTER_BATCHES = 8
PRUNE_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class BridgeOptions:
    pending_timeout: timedelta = timedelta(hours=1)
    enrich_grace: timedelta = timedelta(seconds=60)
    adopt_letta_trace_id: bool = False
    max_batch_spans: int = 512
    max_batch_bytes: int = 3_000_000


@dataclass
class Unit:
    """The spans of one Letta object; exported and committed all together."""

    spans: Sequence[ReadableSpan]
    step_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()


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
    newest_exported_ns: int | None = None
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
    ) -> None:
        self.discovery = discovery
        self._enricher = enricher
        self._sink = sink
        self._state = state
        self._context = context
        self._options = options
        self._clock = clock
        self._last_prune: datetime | None = None
        # Fraction of the configured batch bounds in use: halved after a failed export
        # (a batch the backend finds too large gets split), restored after successes.
        self._batch_scale = 1.0
        self._good_batches = 0

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
        settled = self._state.settled_step_ids(s.id for s in found.steps)
        fresh = list({s.id: s for s in found.steps if s.id not in settled}.values())
        self._state.record_discovered(
            [(s.id, s.run_id, s.status) for s in fresh],
            now_ns=now_ns,
            run_ids=sorted({s.run_id for s in fresh if s.run_id}),
            meta=found.meta,
        )
        report.discovered = len(fresh)
        self._enricher.new_cycle(found.runs)

        pins: dict[str, int] = {}
        known = {s.id: s for s in fresh}
        open_steps = self._state.open_steps()
        results = await asyncio.gather(
            *(
                self._step_unit(o, known.get(o.step_id), now_ns, once, pins, report)
                for o in open_steps
            )
        )
        step_units = [u for u in results if u is not None]
        settled = {sid for u in step_units for sid in u.step_ids}
        still_open = {o.run_id for o in open_steps if o.step_id not in settled and o.run_id}
        run_units = await self._run_units(still_open, now_ns, pins, report)

        if pins:
            self._state.set_run_trace_ids(
                ((rid, ids.format_trace_id(tid)) for rid, tid in pins.items()), now_ns=now_ns
            )
        await self._export(step_units + run_units, report, should_stop)
        self._maybe_prune(now)
        counts = self._state.counts()
        report.open_steps = counts.get("steps_open", 0)
        report.open_runs = counts.get("runs_open", 0)
        return report

    def _skip_invalid(self, now_ns: int, report: CycleReport) -> None:
        invalid = [
            r.record_id for r in self._enricher.drain_invalid() if r.kind == "step" and r.record_id
        ]
        if invalid:
            # Logged with its id by the client; recorded so it is counted, not lost silently.
            self._state.mark_skipped(invalid, now_ns=now_ns)
            report.skipped += len(invalid)

    # --- steps ----------------------------------------------------------------------

    async def _step_unit(  # noqa: PLR0917
        self,
        entry: OpenStep,
        step: Step | None,
        now_ns: int,
        once: bool,
        pins: dict[str, int],
        report: CycleReport,
    ) -> Unit | None:
        try:
            if step is None:
                step = await self._enricher.step(entry.step_id)
                if step is None:
                    log.warning("step %s disappeared from Letta; forgetting it", entry.step_id)
                    self._state.forget(step_ids=[entry.step_id])
                    return None
            age_ns = now_ns - entry.first_seen_ns
            incomplete = not step.is_terminal and age_ns >= _ns(self._options.pending_timeout)
            if not step.is_terminal and not incomplete:
                report.waiting += 1
                return None
            parts = await self._enricher.step_parts(step)
            if (
                parts.trace is None
                and step.is_terminal
                and not once
                and age_ns < _ns(self._options.enrich_grace)
            ):
                report.waiting += 1  # the trace is usually written moments later
                return None
            parts = await self._enricher.with_messages(step, parts)
            run = await self._enricher.run(step.run_id) if step.run_id else None
            agent = await self._enricher.agent(step.agent_id)
        except LettaError as exc:
            self._letta_error(report, f"fetching step {entry.step_id}", exc)
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
        try:
            spans = map_step(record, self._context, self._step_trace_id(step, pins))
        except Exception:
            # Bad data must not stall the daemon or the steps behind it.
            log.exception("cannot map step %s; skipping it", step.id)
            self._state.mark_skipped([step.id], now_ns=now_ns)
            report.skipped += 1
            return None
        return Unit(spans, step_ids=(step.id,))

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

    async def _run_units(
        self, busy: set[str], now_ns: int, pins: dict[str, int], report: CycleReport
    ) -> list[Unit]:
        candidates = [rid for rid in self._state.open_run_ids() if rid not in busy]
        results = await asyncio.gather(
            *(self._run_unit(rid, now_ns, pins, report) for rid in candidates)
        )
        return [u for u in results if u is not None]

    async def _run_unit(
        self, run_id: str, now_ns: int, pins: dict[str, int], report: CycleReport
    ) -> Unit | None:
        try:
            run = await self._enricher.run(run_id)
            if run is None:
                log.warning("run %s disappeared from Letta; forgetting it", run_id)
                self._state.forget(run_ids=[run_id])
                return None
            if not run.is_terminal:
                return None
            agent = await self._enricher.agent(run.agent_id)
        except LettaError as exc:
            self._letta_error(report, f"fetching run {run_id}", exc)
            return None
        try:
            span = map_run(
                RunRecord(run, agent, now_ns), self._context, self._run_trace_id(run, pins)
            )
        except Exception:
            log.exception("cannot map run %s; exporting its steps without it", run_id)
            self._state.mark_exported(step_ids=(), run_ids=(run_id,), now_ns=now_ns)
            report.skipped += 1
            return None
        return Unit([span], run_ids=(run_id,))

    def _run_trace_id(self, run: Run, pins: dict[str, int]) -> int:
        if self._options.adopt_letta_trace_id:
            if run.id in pins:
                return pins[run.id]
            pinned = self._state.run_trace_id(run.id)
            if pinned:
                return int(pinned, 16)
        return ids.trace_id_from_letta_id(run.id)

    # --- export ---------------------------------------------------------------------

    async def _export(
        self, units: list[Unit], report: CycleReport, should_stop: Callable[[], bool]
    ) -> None:
        max_spans = max(1, int(self._options.max_batch_spans * self._batch_scale))
        max_bytes = max(MIN_BATCH_BYTES, int(self._options.max_batch_bytes * self._batch_scale))
        for unit in units:
            unit.spans = trim_spans(unit.spans, self._options.max_batch_bytes)
        for batch in plan_batches(units, max_spans=max_spans, max_bytes=max_bytes):
            if should_stop():
                break
            spans = [s for unit in batch for s in unit.spans]
            report.batches += 1
            if not await asyncio.to_thread(self._sink.export, spans):
                self._export_failed(len(spans), report)
                return
            self._export_succeeded()
            step_ids = [sid for unit in batch for sid in unit.step_ids]
            run_ids = [rid for unit in batch for rid in unit.run_ids]
            self._state.mark_exported(
                step_ids=step_ids, run_ids=run_ids, now_ns=to_ns(self._clock())
            )
            report.exported_steps += len(step_ids)
            report.exported_runs += len(run_ids)
            report.spans += len(spans)
            newest = max((s.end_time or 0) for s in spans)
            report.newest_exported_ns = max(report.newest_exported_ns or 0, newest)

    def _export_failed(self, n_spans: int, report: CycleReport) -> None:
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

    def _export_succeeded(self) -> None:
        self._good_batches += 1
        if self._batch_scale < 1.0 and self._good_batches >= GROW_AFTER_BATCHES:
            self._batch_scale = min(1.0, self._batch_scale * 2)
            self._good_batches = 0

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


def _ns(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1_000_000_000)
