"""LLM spans still owed: a step that left without its provider trace gets its ``chat``
span later, exactly once.

Letta writes a step's provider trace from a background task, seconds after the step is
terminal, and for some steps (a failed LLM call above all) never. A step does not wait
for it: its ``agent_step`` span (status, error, model, provider) and its tool spans go
out as soon as it is terminal, and the commit that marks it exported also writes an
``owed_llm`` row (:class:`~letta_otel.state.OwedLlm`): what the mapping needs to build
the LLM span later (:class:`OwedRecord`: the step, its metrics and run, as JSON), the
trace its step span joined, when it was seen terminal.

:class:`LlmChecks` looks for the trace of each owed span when it is due, backing off
(:func:`next_check_ns`: 2 s, 4 s, 8 s ... after the step was seen terminal). When the
trace is there, the ``chat`` span is mapped (``ids.span_id("llm", step)``, a child of
the step span, in its trace) and exported; the row leaves in the same commit. Once
``LETTA_OTEL_ENRICH_GRACE`` has passed since the step was seen terminal, the span is
built from the step's metrics alone (``letta.provider_trace.missing=true``) when Letta
timed an LLM call, else nothing is sent; the row goes either way. A step that never gets
a trace costs seven trace requests over the default one-minute grace, not one per cycle.
``--once`` does not wait: every owed span is settled at its one look.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import msgspec

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher
from letta_otel.letta.models import ProviderTrace, Run, Step, StepMetrics
from letta_otel.mapping import ids
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.span_copy import with_sample_rate
from letta_otel.mapping.spans import MappingContext, map_llm
from letta_otel.mapping.timing import duration_ns
from letta_otel.pipeline.checkpoint import Checkpoint
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.units import StepDraft, Unit
from letta_otel.state import OwedLlm

log = logging.getLogger(__name__)

# The first look for an owed span's trace after the step was seen terminal (the step's
# own enrichment was the look before it); each later one waits twice as long, the last
# one at the grace.
FIRST_CHECK = timedelta(seconds=2)
# While the trace request fails (rather than answering "not written yet"), looks go on
# until this many graces after the step was terminal; then the span is built from the
# step's metrics, as for a trace that never came.
ERROR_GRACE_FACTOR = 2


class OwedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What building a step's LLM span later needs (kept in the state file as JSON)."""

    step: Step
    metrics: StepMetrics | None = None
    run: Run | None = None
    observed_ns: int = 0
    sample_rate: int | None = None
    sent_tools: tuple[str, ...] = ()  # tool calls the step's own unit carried

    def record(self, trace: ProviderTrace | None) -> StepRecord:
        missing = {"trace"} if trace is None else set()
        if self.metrics is None or self.metrics.step_ns is None:
            missing.add("metrics")
        return StepRecord(
            step=self.step,
            trace=trace,
            metrics=self.metrics,
            run=self.run,
            observed_ns=self.observed_ns,
            missing=frozenset(missing),
        )


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(OwedRecord)


def next_check_ns(terminal_ns: int, checks: int, grace: timedelta) -> int:
    """When to look for the trace after ``checks`` looks found none: 2 s, 4 s, 8 s ...
    after the step was seen terminal, the last one at the grace."""
    return terminal_ns + min(duration_ns(FIRST_CHECK) << min(checks, 32), duration_ns(grace))


def owed_row(draft: StepDraft, sent_tools: tuple[str, ...], grace: timedelta) -> OwedLlm:
    """The state's row for the LLM span ``draft``'s step leaves out."""
    record = draft.record
    payload = OwedRecord(
        step=record.step,
        metrics=record.metrics,
        run=record.run,
        observed_ns=record.observed_ns,
        sample_rate=draft.sample_rate,
        sent_tools=sent_tools,
    )
    return OwedLlm(
        step_id=record.step.id,
        run_id=record.step.run_id,
        trace_id=ids.format_trace_id(draft.trace_id),
        record=_ENCODER.encode(payload),
        terminal_ns=draft.terminal_ns,
        next_check_ns=next_check_ns(draft.terminal_ns, 0, grace),
    )


class LlmChecks:
    """Looks for the provider traces of owed LLM spans (see the module docstring)."""

    def __init__(
        self,
        enricher: Enricher,
        context: MappingContext,
        checkpoint: Checkpoint,
        *,
        grace: timedelta,
    ) -> None:
        self._enricher = enricher
        self._context = context
        self._checkpoint = checkpoint
        self._grace = grace

    def due(self, now_ns: int, *, once: bool) -> list[OwedLlm]:
        """The owed spans to look at now (``--once``: all of them)."""
        return self._checkpoint.owed_llm(due_by_ns=None if once else now_ns)

    def _look_later(self, row: OwedLlm) -> None:
        checks = row.checks + 1
        self._checkpoint.owe_later(
            row.step_id,
            next_check_ns=next_check_ns(row.terminal_ns, checks, self._grace),
            checks=checks,
        )

    async def check(
        self, row: OwedLlm, now_ns: int, *, once: bool, report: CycleReport
    ) -> Unit | None:
        """The owed span's unit when it can be sent now, else None (looked again later,
        or settled with nothing to send)."""
        try:
            owed = _DECODER.decode(row.record)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning(
                "the owed LLM span of step %s cannot be read (%s); dropping it", row.step_id, exc
            )
            self._checkpoint.settle_owed([row.step_id])
            return None
        grace_ns = duration_ns(self._grace)
        final = once or now_ns >= row.terminal_ns + grace_ns
        try:
            trace = await self._enricher.trace(owed.step)
        except LettaError as exc:
            report.letta_error(f"fetching the provider trace of step {row.step_id}", exc)
            if once:
                return None  # owed still: the next run looks again
            if now_ns < row.terminal_ns + ERROR_GRACE_FACTOR * grace_ns:
                self._look_later(row)  # with back-off, not at every cycle
                return None
            # A trace that cannot be read for this long (a body Letta keeps answering
            # malformed, say) must not cost a request each cycle until the row is pruned,
            # and then take the LLM call's span and metrics with it.
            log.warning(
                "the provider trace of step %s could not be read within %s; its LLM span is "
                "built from the step's metrics",
                row.step_id,
                self._grace * ERROR_GRACE_FACTOR,
            )
            trace = None
        if trace is None and not final:
            self._look_later(row)
            return None
        record = owed.record(trace)
        try:
            spans = map_llm(
                record, self._context, int(row.trace_id, 16), sent_tools=owed.sent_tools
            )
        except Exception:
            log.exception("cannot map the LLM span of step %s; dropping it", row.step_id)
            self._checkpoint.settle_owed([row.step_id])
            return None
        if not spans:  # no trace within the grace, and Letta timed no LLM call
            self._checkpoint.settle_owed([row.step_id])
            return None
        if owed.sample_rate is not None:
            spans = with_sample_rate(spans, owed.sample_rate)
        return Unit(spans, paid=(row.step_id,), llm_records=(record,))
