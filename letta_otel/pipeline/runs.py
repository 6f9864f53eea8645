"""Run roots: a run becomes a unit (its ``invoke_agent`` span) once it is terminal and
none of its steps is still open, so the root arrives with or after its children.

Behind a backlog the steps listing stops mid-stream (a *slice*): a run may have steps
beyond the slice, so its root waits unless the run ended before the run of the slice's
last step began (:meth:`RunRoots.edge_time`). A run's root waits for its step spans,
not for LLM spans its steps still owe (:mod:`.owed`): those join the trace later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime

from letta_otel.letta.client import LettaError
from letta_otel.letta.enrich import Enricher
from letta_otel.mapping.records import RunRecord
from letta_otel.mapping.span_copy import with_sample_rate
from letta_otel.mapping.spans import MappingContext, map_run
from letta_otel.pipeline.checkpoint import Checkpoint
from letta_otel.pipeline.observer import BridgeObserver
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.selecting import Selection
from letta_otel.pipeline.trace_ids import TraceIds
from letta_otel.pipeline.units import Unit

log = logging.getLogger(__name__)


class RunRoots:
    def __init__(
        self,
        enricher: Enricher,
        context: MappingContext,
        checkpoint: Checkpoint,
        observer: BridgeObserver,
        selection: Selection | None,
    ) -> None:
        self._enricher = enricher
        self._context = context
        self._checkpoint = checkpoint
        self._observer = observer
        self._selection = selection

    def due(
        self, busy: set[str], among: set[str] | None = None
    ) -> tuple[dict[str, int | None], list[str]]:
        """Of the open runs (``among`` these) not in ``busy`` (a step of theirs is still
        open, selection holds them, or their root is on its way): the ones whose root is
        due, with their SampleRate, and the ones whose steps were all filtered out."""
        state = self._checkpoint
        runs = state.open_run_ids() if among is None else sorted(among)
        candidates = [
            rid
            for rid in runs
            if rid not in busy and (among is None or state.run_state(rid) == "open")
        ]
        if self._selection is None:
            return dict.fromkeys(candidates), []
        # Steps exported earlier are committed by now: the state file counts them.
        return self._selection.root_rates(candidates, set(), self._checkpoint)

    async def edge_time(self, edge_run: str, report: CycleReport) -> datetime:
        """When the run of the slice's last step began (its steps began no earlier)."""
        try:
            run = await self._enricher.run(edge_run)
        except LettaError as exc:
            report.letta_error(f"fetching run {edge_run}", exc)
            run = None
        # Unknown: hold every root back until the listing has caught up.
        return (
            run.created_at
            if run is not None and run.created_at
            else datetime.min.replace(tzinfo=UTC)
        )

    async def settle_filtered(self, run_id: str, now_ns: int, report: CycleReport) -> None:
        """A run whose steps were all filtered out gets no root; settled once terminal."""
        try:
            run = await self._enricher.run(run_id)
        except LettaError as exc:
            report.letta_error(f"fetching run {run_id}", exc)
            return
        if run is None or run.is_terminal:
            self._checkpoint.record_selection(now_ns=now_ns, filtered_runs=[run_id])
            report.filtered_runs += 1

    async def unit(  # noqa: PLR0917
        self,
        run_id: str,
        edge: Awaitable[datetime] | None,
        now_ns: int,
        trace_ids: TraceIds,
        report: CycleReport,
        sample_rate: int | None = None,
    ) -> Unit | None:
        """The run's root unit when it is due, else None (tried again at a later cycle)."""
        try:
            run = await self._enricher.run(run_id)
            if run is None:
                log.warning("run %s disappeared from Letta; forgetting it", run_id)
                self._checkpoint.forget(run_ids=[run_id])
                return None
            if not run.is_terminal:
                return None
            edge_at = await edge if edge is not None else None
            if edge_at is not None and (run.completed_at is None or run.completed_at >= edge_at):
                return None  # may still have steps beyond this slice: next cycle
            agent = await self._enricher.agent(run.agent_id)
        except LettaError as exc:
            report.letta_error(f"fetching run {run_id}", exc)
            return None
        except Exception as exc:
            report.unexpected_error(f"run {run_id}", exc)
            return None
        record = RunRecord(run, agent, now_ns)
        try:
            span = map_run(record, self._context, trace_ids.for_run(run))
        except Exception:
            log.exception("cannot map run %s; exporting its steps without it", run_id)
            self._checkpoint.mark_exported(step_ids=(), run_ids=(run_id,), now_ns=now_ns)
            self._observer.run_accounted(record)
            report.skipped += 1
            return None
        spans = [span] if sample_rate is None else with_sample_rate([span], sample_rate)
        return Unit(spans, run_ids=(run_id,), records=(record,))
