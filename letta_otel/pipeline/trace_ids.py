"""Which trace the spans of a step or run join.

By default a run's trace id is derived from its id (:mod:`letta_otel.mapping.ids`), so
nothing needs remembering. With ``LETTA_OTEL_ADOPT_LETTA_TRACE_ID`` a run takes the trace
id Letta gave its first step seen; that choice is *pinned* in the state file before the
first span carrying it leaves (:meth:`TraceIds.pin_new`), so its later steps and its root
join the same trace after a restart too.
"""

from __future__ import annotations

from letta_otel.letta.models import Run, Step
from letta_otel.mapping import ids
from letta_otel.pipeline.checkpoint import Checkpoint


class TraceIds:
    def __init__(self, checkpoint: Checkpoint, *, adopt_letta_trace_id: bool) -> None:
        self._checkpoint = checkpoint
        self._adopt = adopt_letta_trace_id
        self._pins: dict[str, int] = {}  # run id -> trace id chosen
        self._pinned: set[str] = set()  # ... and already written to the state file

    def for_step(self, step: Step) -> int:
        derived = ids.trace_id_from_letta_id(step.run_id or step.id)
        if not self._adopt:
            return derived
        if step.run_id is None:
            return ids.parse_letta_trace_id(step.trace_id) or derived
        if step.run_id not in self._pins:
            pinned = self._checkpoint.run_trace_id(step.run_id)
            self._pins[step.run_id] = (
                int(pinned, 16) if pinned else ids.parse_letta_trace_id(step.trace_id) or derived
            )
        return self._pins[step.run_id]

    def for_run(self, run: Run) -> int:
        if self._adopt:
            if run.id in self._pins:
                return self._pins[run.id]
            pinned = self._checkpoint.run_trace_id(run.id)
            if pinned:
                return int(pinned, 16)
        return ids.trace_id_from_letta_id(run.id)

    def pin_new(self, *, now_ns: int) -> None:
        """Write the trace ids chosen since the last call (before their spans leave)."""
        new_pins = [rid for rid in self._pins if rid not in self._pinned]
        if new_pins:
            self._checkpoint.set_run_trace_ids(
                ((rid, ids.format_trace_id(self._pins[rid])) for rid in new_pins),
                now_ns=now_ns,
            )
            self._pinned.update(new_pins)

    def forget_pinned(self) -> None:
        """Forget the choices the state file already holds (read from it again when
        needed), so a daemon running for weeks does not keep one per run ever seen."""
        for run_id in self._pinned:
            self._pins.pop(run_id, None)
        self._pinned.clear()
