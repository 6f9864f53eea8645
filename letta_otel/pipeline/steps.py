"""One open step: brought up to date, enriched into a draft, then mapped into a unit.

:class:`StepDrafts` is the fetching side (network: the step, its metrics, provider
trace, messages, run and agent); :class:`DraftMapper` the consuming side (CPU: the pure
mapping), run by the batcher in bursts. A step that cannot be fetched stays open and is
tried again next cycle; one that cannot be mapped is settled as ``skipped``.

When a step is due (:meth:`StepDrafts.due`):

* a step the cycle's listing brought (a current view: no request to know its status),
  one held for its metrics, and every open step in ``--once``: at once;
* any other open step is re-read by id once it has waited a quarter of its age since
  its last read (at least ``REREAD_MIN``, at most ``REREAD_MAX``): a step pending for a
  few seconds is read again about every second, one pending for minutes every 30 s,
  not every cycle.

A terminal step goes out with what is known: its metrics (Letta answers 404 for a
moment after the step is terminal; the step is held and looked at again at the next
cycles for ``METRICS_WAIT``, then goes without them, failures included), its provider
trace when it is written, its messages when they can add a tool call. A trace not
written yet does not hold it: the draft *owes* its LLM span, which follows later
(:mod:`.owed`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.letta.models import Step
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.span_copy import with_sample_rate
from letta_otel.mapping.spans import MappingContext, map_step, tool_call_ids
from letta_otel.mapping.timing import duration_ns
from letta_otel.pipeline.checkpoint import Checkpoint
from letta_otel.pipeline.observer import BridgeObserver
from letta_otel.pipeline.owed import owed_row
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.pipeline.units import StepDraft, Unit
from letta_otel.state import OpenStep

log = logging.getLogger(__name__)

# Re-reads by id of open steps the listing does not bring (see the module docstring).
REREAD_MIN = timedelta(seconds=1)
REREAD_MAX = timedelta(seconds=30)
REREAD_SHARE = 4  # wait a quarter of the step's age between two reads
# How long a terminal step whose metrics answer 404 is held for them (and it is looked at
# twice at least): Letta writes them right after it finalises the step, so a few
# seconds; the step's alert must not wait longer than that.
METRICS_WAIT = timedelta(seconds=3)


@dataclass(frozen=True)
class _Held:
    """A terminal step waiting for its metrics: its view, when it was first seen
    terminal, how often its metrics were asked for."""

    step: Step
    seen_ns: int
    looks: int


class StepDrafts:
    """Fetches what a terminal step's spans need; waits for pending steps, gives up on a
    step still pending after ``pending_timeout``."""

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
        self._pending_timeout_ns = duration_ns(pending_timeout)
        self._owe = enrich_grace > timedelta(0)
        self._read_ns: dict[str, int] = {}  # when a waiting step's status was last read
        self._held: dict[str, _Held] = {}

    def due(self, entry: OpenStep, *, listed: bool, now_ns: int, once: bool) -> bool:
        """Whether the open step should be worked on now (see the module docstring)."""
        if once or listed or entry.step_id in self._held:
            return True
        last = self._read_ns.get(entry.step_id)
        if last is None:
            return True
        wait = (now_ns - entry.first_seen_ns) // REREAD_SHARE
        wait = min(max(wait, duration_ns(REREAD_MIN)), duration_ns(REREAD_MAX))
        return now_ns - last >= wait

    def keep_only(self, open_ids: set[str]) -> None:
        """Forget what is remembered of steps no longer open."""
        self._read_ns = {k: v for k, v in self._read_ns.items() if k in open_ids}
        self._held = {k: v for k, v in self._held.items() if k in open_ids}

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
        step_id = entry.step_id
        held = self._held.get(step_id)
        try:
            if step is None and held is not None:
                step = held.step
            if step is None:
                step = await enricher.step(step_id)
                if step is None:
                    log.warning("step %s disappeared from Letta; forgetting it", step_id)
                    self._checkpoint.forget(step_ids=[step_id])
                    return None
            age_ns = now_ns - entry.first_seen_ns
            incomplete = not step.is_terminal and age_ns >= self._pending_timeout_ns
            if not step.is_terminal and not incomplete:
                self._read_ns[step_id] = now_ns
                report.waiting += 1
                return None
            metrics = await enricher.metrics(step)
            if metrics is None and step.is_terminal and not once:
                seen_ns, looks = (held.seen_ns, held.looks + 1) if held else (now_ns, 1)
                if looks < 2 or now_ns - seen_ns < duration_ns(METRICS_WAIT):
                    self._held[step_id] = _Held(step, seen_ns, looks)
                    report.waiting += 1
                    return None
            # One request after the other: a step waits 20 ms more, but needs no task
            # of its own for a second request. Other steps' requests keep the slots busy.
            trace = await enricher.trace(step)
            parts = await enricher.with_messages(step, StepParts(trace, metrics, ()))
            run = await enricher.run(step.run_id) if step.run_id else None
            agent = await enricher.agent(step.agent_id)
        except LettaError as exc:
            report.letta_error(f"fetching step {step_id}", exc)
            return None
        except Exception as exc:
            report.unexpected_error(f"step {step_id}", exc)
            return None
        self._held.pop(step_id, None)
        self._read_ns.pop(step_id, None)
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
        # The LLM span follows later when the trace is not written yet; --once does
        # not wait (nor does a zero grace, nor a step given up on while pending).
        owes = parts.trace is None and step.is_terminal and not once and self._owe
        return StepDraft(
            record,
            trace_ids.for_step(step),
            sample_rate,
            owes=owes,
            terminal_ns=held.seen_ns if held else now_ns,
        )


class DraftMapper:
    """A draft's unit of spans (pure mapping); a draft that cannot be mapped is skipped."""

    def __init__(
        self,
        context: MappingContext,
        checkpoint: Checkpoint,
        observer: BridgeObserver,
        *,
        enrich_grace: timedelta,
    ) -> None:
        self._context = context
        self._checkpoint = checkpoint
        self._observer = observer
        self._grace = enrich_grace

    def unit(self, draft: StepDraft, report: CycleReport, now_ns: int) -> Unit | None:
        record = draft.record
        try:
            spans = map_step(record, self._context, draft.trace_id, llm=not draft.owes)
            owes = (owed_row(draft, tool_call_ids(record), self._grace),) if draft.owes else ()
        except Exception:
            # Bad data must not stall the daemon or the steps behind it.
            log.exception("cannot map step %s; skipping it", record.step.id)
            self._checkpoint.mark_skipped([record.step.id], now_ns=now_ns)
            self._observer.step_accounted(record)
            report.skipped += 1
            return None
        if draft.sample_rate is not None:
            spans = with_sample_rate(spans, draft.sample_rate)
        return Unit(spans, step_ids=(record.step.id,), records=(record,), owes=owes)
