"""The exporter: units packed into bounded batches, exported from a worker thread while
the fetching goes on, each confirmed batch committed. It lives as long as the pipeline,
across cycles: what the workers hand it goes out as soon as a batch is due.

* **Bursts.** Enriched steps arrive as drafts; they are mapped in bursts
  (``GATHER_UNITS`` or ``GATHER_AFTER``), not one by one between network callbacks: the
  same code run back to back finds the CPU's caches warm. Measured with
  ``benchmarks.bench``, this cuts the daemon's CPU per step by about a tenth (mapping
  alone by a third).
* **Flush.** A batch leaves when it is full, when its first unit has waited
  ``FLUSH_AFTER`` seconds (checked once per ``FLUSH_AFTER``: a unit waits at most twice
  that), or when asked (:meth:`BatchExporter.flush`: ``--once`` and the backfill at the
  end of a cycle).
* **Failure.** A failed export stops exporting (the backend is likely down): the batch
  and every unit arriving after it are dropped uncommitted, their keys released, so the
  next cycle schedules them again and they are retried with the same span ids; the
  bridge resumes exporting at its next cycle, after the daemon's backoff. The batch
  bounds are halved after a failure (:class:`BatchScale`) so a batch the backend finds
  too large gets split, and restored after successes.
* **Commit.** A confirmed batch is committed in one transaction (``mark_exported``),
  with the bytes it added per trace when the trace budget is on (:class:`TraceBudget`),
  the LLM spans its steps still owe and the owed ones it carried; then its keys are
  released and its objects accounted (metrics).
* **Stop.** Once a stop is requested no new export starts; the one in flight finishes
  and is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.export.budget import (
    BatchPacker,
    estimate_unit_bytes,
    request_overhead,
    trim_spans,
)
from letta_otel.export.sink import SpanSink
from letta_otel.export.trace_budget import MutableUnit, PerTraceBudget, bytes_by_trace, trace_keys
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.timing import to_ns
from letta_otel.pipeline.bursts import drain, take_burst
from letta_otel.pipeline.checkpoint import Checkpoint
from letta_otel.pipeline.observer import BridgeObserver
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.steps import DraftMapper
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.pipeline.units import Key, StepDraft, Unit

log = logging.getLogger(__name__)

MIN_BATCH_BYTES = 64 * 1024
MIN_BATCH_SCALE = 1 / 1024
GROW_AFTER_BATCHES = 8
# Pipeline bounds: units waiting for export, and a partial batch's wait (a live step's
# spans wait for it: short, so they reach the backend within a second).
QUEUE_UNITS = 256
FLUSH_AFTER = 0.3
# The consumer waits for this many units, or this long after the first, before mapping
# what has arrived (see the module docstring).
GATHER_UNITS = 64
GATHER_AFTER = 0.1


class _Flush:
    """Asks the consumer to flush; ``done`` resolves once it has."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done


Item = Unit | StepDraft | _Flush | None  # None: shutting down


class BatchScale:
    """The fraction of the configured batch bounds in use, across cycles: halved after a
    failed export (a batch the backend finds too large gets split), restored after
    ``GROW_AFTER_BATCHES`` successes in a row."""

    def __init__(self, max_spans: int, max_bytes: int) -> None:
        self._max_spans = max_spans
        self._max_bytes = max_bytes
        self.scale = 1.0
        self._good = 0

    def bounds(self) -> tuple[int, int]:
        """(spans, bytes) a batch may hold now."""
        max_spans = max(1, int(self._max_spans * self.scale))
        max_bytes = max(MIN_BATCH_BYTES, int(self._max_bytes * self.scale))
        return max_spans, max_bytes

    def failed(self) -> None:
        self._good = 0
        if self.scale > MIN_BATCH_SCALE:
            self.scale /= 2

    def succeeded(self) -> None:
        self._good += 1
        if self.scale < 1.0 and self._good >= GROW_AFTER_BATCHES:
            self.scale = min(1.0, self.scale * 2)
            self._good = 0


class ConfirmedBytes(Protocol):
    def trace_bytes(self, trace_ids: Iterable[str]) -> dict[str, int]: ...


class TraceBudget:
    """``LETTA_OTEL_MAX_TRACE_BYTES`` across cycles and restarts: the pure budget of
    :mod:`letta_otel.export.trace_budget`, given the bytes the state file says each
    trace's confirmed spans already took."""

    def __init__(self, confirmed: ConfirmedBytes, max_bytes: int) -> None:
        self._confirmed = confirmed
        self._budget = PerTraceBudget(max_bytes)

    def fit(self, units: Sequence[MutableUnit]) -> int:
        """Strip content from the spans that would take their trace past the budget (in
        order); returns how many lost it."""
        return self._budget.fit(units, self._confirmed.trace_bytes(trace_keys(units)))


class BatchExporter:
    """The pipeline's one consumer (see the module docstring)."""

    def __init__(
        self,
        *,
        mapper: DraftMapper,
        sink: SpanSink,
        checkpoint: Checkpoint,
        observer: BridgeObserver,
        scale: BatchScale,
        trace_budget: TraceBudget | None,
        trace_ids: TraceIds,
        clock: Callable[[], datetime],
        max_batch_bytes: int,
        settled: Callable[[Iterable[Key]], None],
        committed: Callable[[Sequence[Unit]], None] = lambda _: None,
    ) -> None:
        self.report = CycleReport("")  # the one current now (the bridge hands it out)
        self.should_stop: Callable[[], bool] = lambda: False
        self._mapper = mapper
        self._sink = sink
        self._checkpoint = checkpoint
        self._observer = observer
        self._scale = scale
        self._trace_budget = trace_budget
        self._trace_ids = trace_ids
        self._clock = clock
        self._max_batch_bytes = max_batch_bytes
        self._settled = settled
        self._committed = committed
        self._packer = BatchPacker[Unit]()
        # What a request adds to its spans (resource, scope, lengths), once per request:
        # known after the first unit (every span shares the mapping's resource and scope).
        self._framing = 0
        self._batch_since = 0.0  # loop time of the current batch's first unit
        self._timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=QUEUE_UNITS)
        self._task: asyncio.Task[None] | None = None
        self._exporting = False
        self.stopped = False  # a failed export (or a stop): units are dropped
        self.healthy = True  # no export failed since the last one that succeeded
        self.closing = False  # shutting down: nothing new is waited for

    # --- what the pipeline calls ----------------------------------------------------

    async def put(self, item: StepDraft | Unit) -> None:
        """Hand over a draft or a unit (waits while ``QUEUE_UNITS`` are queued)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.consume(self._queue))
        await self._queue.put(item)

    def resume(self) -> None:
        """Export again after a failure (the bridge calls it once the backoff passed)."""
        self.stopped = False

    @property
    def pending(self) -> bool:
        """Units queued, packed or being exported."""
        return not self._queue.empty() or bool(self._packer.units) or self._exporting

    async def flush(self) -> None:
        """Until everything handed over so far is exported and committed, or dropped."""
        if self._task is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Flush(done))
        await done

    async def aclose(self) -> None:
        """Finish the export in flight and its commit; drop what is still queued."""
        if self._task is None:
            return
        self.closing = True
        await self._queue.put(None)
        await self._task
        self._task = None

    # --- the consumer ---------------------------------------------------------------

    async def consume(self, units: asyncio.Queue[Item]) -> None:
        # A timer wakes the consumer once per FLUSH_AFTER with _TICK, rather than a
        # timeout around every get(), which cost more CPU than the batching it guards.
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(FLUSH_AFTER, self._tick, units, loop)
        try:
            while True:
                for item in await self.burst(units):
                    if item is None:
                        await self._flush()
                        return
                    if item is _TICK:
                        if self._packer.units and loop.time() - self._batch_since >= FLUSH_AFTER:
                            await self._flush()
                    elif isinstance(item, _Flush):
                        await self._flush()
                        if not item.done.done():
                            item.done.set_result(None)
                    elif self.stopped or self.closing:
                        self._settled(item.keys)  # dropped: scheduled again later
                    else:
                        try:
                            await self._take(item)
                        except Exception:
                            # One bad unit must not end the consumer, which nothing
                            # awaits until shutdown: its keys would stay busy for good.
                            log.exception("a unit could not be packed; dropped until next cycle")
                            self._settled(item.keys)
        finally:
            if self._timer is not None:
                self._timer.cancel()

    async def burst(self, units: asyncio.Queue[Item]) -> list[Item]:
        """The next item and everything queued behind it. After a draft it first waits
        until GATHER_UNITS more items have come, a final None arrives or GATHER_AFTER
        has passed (not when shutting down or the export stopped)."""
        first = await units.get()
        if isinstance(first, StepDraft) and not (self.closing or self.stopped):
            return [first, *await take_burst(units, GATHER_UNITS, GATHER_AFTER)]
        return [first, *drain(units)]

    def _tick(self, units: asyncio.Queue[Item], loop: asyncio.AbstractEventLoop) -> None:
        if not units.full():
            units.put_nowait(_TICK)
        self._timer = loop.call_later(FLUSH_AFTER, self._tick, units, loop)

    async def _take(self, item: StepDraft | Unit) -> None:
        if isinstance(item, StepDraft):
            unit = self._mapper.unit(item, self.report, to_ns(self._clock()))
            if unit is None:  # skipped: settled by the mapper
                self._settled(item.keys)
                return
        else:
            unit = item
        await self._add(unit)

    def measure(self, unit: Unit) -> int:
        """An upper bound of the unit's bytes in a request, without encoding it: the
        exporter encodes each batch once, as it sends it (sizing units by the SDK's
        encoding would encode every span twice, a third more CPU per step)."""
        if not self._framing and unit.spans:
            self._framing = request_overhead(unit.spans[0])
        return estimate_unit_bytes(unit)

    async def _add(self, unit: Unit) -> None:
        max_spans, max_bytes = self._scale.bounds()
        size = self.measure(unit)
        limit = self._max_batch_bytes - self._framing
        if size > limit:
            unit.spans = trim_spans(unit.spans, limit)
            size = self.measure(unit)
        max_bytes -= self._framing
        if not self._packer.fits(unit, size, max_spans=max_spans, max_bytes=max_bytes):
            await self._flush()
        if self.stopped:
            self._settled(unit.keys)
            return
        if not self._packer.units:
            self._batch_since = asyncio.get_running_loop().time()
        self._packer.add(unit, size)
        if self._packer.spans >= max_spans:
            await self._flush()

    async def _flush(self) -> None:
        batch = self._packer.take()
        if not batch:
            return
        try:
            await self._send(batch)
        except Exception:
            # The consumer outlives every cycle and nothing awaits it until shutdown: an
            # error here (the state file failing to commit, say) must not end it silently
            # with the batch's keys busy for good. Reported like a failed export (the
            # daemon turns unready and backs off); the batch is scheduled again with the
            # same ids, so a batch the backend took but the state did not record may be
            # sent twice, never lost.
            log.exception("exporting or committing a batch of %d units failed", len(batch))
            self._failed(sum(len(unit.spans) for unit in batch))
            self._drop(batch)

    async def _send(self, batch: list[Unit]) -> None:
        if not self.stopped and self.should_stop():
            self.stopped = True
        if self.stopped:
            self._drop(batch)
            return
        report = self.report
        # Pinned before the spans that use them leave, so a crash cannot split a run.
        self._trace_ids.pin_new(now_ns=to_ns(self._clock()))
        if self._trace_budget is not None:
            # Per batch, just before it leaves: earlier batches are committed by now, so
            # the state file holds what each trace has used. Units arrive in the order
            # their enrichment finished; the budget goes to the earliest spans first.
            batch.sort(key=_unit_start)
            self._trace_budget.fit(batch)
        spans: list[ReadableSpan] = [s for unit in batch for s in unit.spans]
        report.batches += 1
        newest = max((s.end_time or 0) for s in spans)
        self._exporting = True
        try:
            ok = await asyncio.to_thread(self._sink.export, spans)
        finally:
            self._exporting = False
        self._observer.exported(ok, len(spans), newest)
        if not ok:
            self._failed(len(spans))
            self._drop(batch)
            return
        self.healthy = True
        self._scale.succeeded()
        step_ids = [sid for unit in batch for sid in unit.step_ids]
        run_ids = [rid for unit in batch for rid in unit.run_ids]
        self._checkpoint.mark_exported(
            step_ids=step_ids,
            run_ids=run_ids,
            now_ns=to_ns(self._clock()),
            trace_bytes=bytes_by_trace(spans) if self._trace_budget else None,
            owe=[row for unit in batch for row in unit.owes],
            paid=[sid for unit in batch for sid in unit.paid],
        )
        report.exported_steps += len(step_ids)
        report.exported_runs += len(run_ids)
        report.spans += len(spans)
        report.newest_exported_ns = max(report.newest_exported_ns or 0, newest)
        self._drop(batch)  # committed: their keys are free (settled in the state)
        self._accounted(batch)
        self._committed(batch)

    def _drop(self, batch: Sequence[Unit]) -> None:
        self._settled(key for unit in batch for key in unit.keys)

    def _failed(self, n_spans: int) -> None:
        self.stopped = True
        self.healthy = False
        self.report.failed_batches += 1
        self.report.errors.append(f"export of {n_spans} spans failed")
        self._scale.failed()
        log.warning(
            "export of %d spans failed; nothing was committed, retrying next cycle with "
            "batches at %.0f%% of the configured size",
            n_spans,
            self._scale.scale * 100,
        )

    def _accounted(self, batch: Sequence[Unit]) -> None:
        for unit in batch:
            owing = {row.step_id for row in unit.owes} if unit.owes else ()
            for record in unit.records:
                if isinstance(record, StepRecord):
                    if record.step.id in owing:
                        self._observer.step_accounted(record, llm=False)
                    else:
                        self._observer.step_accounted(record)
                else:
                    self._observer.run_accounted(record)
            for record in unit.llm_records:
                self._observer.llm_accounted(record)


_TICK = Unit(spans=())  # wakes the consumer to flush a batch that has waited long enough


def _unit_start(unit: Unit) -> int:
    return min((s.start_time or 0 for s in unit.spans), default=0)
