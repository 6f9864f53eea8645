"""One open step: brought up to date, enriched into a draft, then mapped into a unit.

:class:`StepDrafts` is the producing side (network: the step, its provider trace,
metrics, messages, run and agent); :class:`DraftMapper` the consuming side (CPU: the
pure mapping), run by the batcher in bursts. A step that cannot be fetched stays open
and is tried again next cycle; one that cannot be mapped is settled as ``skipped``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.letta.models import Step
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.span_copy import with_sample_rate
from letta_otel.mapping.spans import MappingContext, map_step
from letta_otel.pipeline.checkpoint import Checkpoint
from letta_otel.pipeline.observer import BridgeObserver
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.pipeline.units import StepDraft, Unit
from letta_otel.state import OpenStep

log = logging.getLogger(__name__)


class StepDrafts:
    """Fetches what a terminal step's spans need; waits for pending steps and late
    provider traces, gives up on a step still pending after ``pending_timeout``."""

    def __init__(
        self,
        enricher: Enricher,
        checkpoint: Checkpoint,
        *,
        pending_timeout: timedelta,
        enrich_grace: timedelta,
    ) -> None:
        self._enricher = enricher
        self._checkpoint = checkpoint
        self._pending_timeout_ns = _ns(pending_timeout)
        self._enrich_grace_ns = _ns(enrich_grace)

    async def draft(  # noqa: PLR0917
        self,
        entry: OpenStep,
        step: Step | None,
        now_ns: int,
        once: bool,
        trace_ids: TraceIds,
        report: CycleReport,
        sample_rate: int | None = None,
    ) -> StepDraft | None:
        """The step's draft, or None when it waits, vanished or could not be fetched."""
        enricher = self._enricher
        try:
            if step is None:
                step = await enricher.step(entry.step_id)
                if step is None:
                    log.warning("step %s disappeared from Letta; forgetting it", entry.step_id)
                    self._checkpoint.forget(step_ids=[entry.step_id])
                    return None
            age_ns = now_ns - entry.first_seen_ns
            incomplete = not step.is_terminal and age_ns >= self._pending_timeout_ns
            if not step.is_terminal and not incomplete:
                report.waiting += 1
                return None
            # One request after the other: a step waits 20 ms more, but needs no task
            # of its own for a second request, and a trace not written yet spares the
            # metrics request. Other steps' requests keep the slots busy meanwhile.
            trace = await enricher.trace(step)
            if trace is None and step.is_terminal and not once and age_ns < self._enrich_grace_ns:
                report.waiting += 1  # the trace is usually written moments later
                return None
            metrics = await enricher.metrics(step)
            parts = await enricher.with_messages(step, StepParts(trace, metrics, ()))
            run = await enricher.run(step.run_id) if step.run_id else None
            agent = await enricher.agent(step.agent_id)
        except LettaError as exc:
            report.letta_error(f"fetching step {entry.step_id}", exc)
            return None
        except Exception as exc:
            report.unexpected_error(f"step {entry.step_id}", exc)
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
        return StepDraft(record, trace_ids.for_step(step), sample_rate)


class DraftMapper:
    """A draft's unit of spans (pure mapping); a draft that cannot be mapped is skipped."""

    def __init__(
        self, context: MappingContext, checkpoint: Checkpoint, observer: BridgeObserver
    ) -> None:
        self._context = context
        self._checkpoint = checkpoint
        self._observer = observer

    def unit(self, draft: StepDraft, report: CycleReport, now_ns: int) -> Unit | None:
        record = draft.record
        try:
            spans = map_step(record, self._context, draft.trace_id)
        except Exception:
            # Bad data must not stall the daemon or the steps behind it.
            log.exception("cannot map step %s; skipping it", record.step.id)
            self._checkpoint.mark_skipped([record.step.id], now_ns=now_ns)
            self._observer.step_accounted(record)
            report.skipped += 1
            return None
        if draft.sample_rate is not None:
            spans = with_sample_rate(spans, draft.sample_rate)
        return Unit(spans, step_ids=(record.step.id,), records=(record,))


def _ns(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1_000_000_000)
