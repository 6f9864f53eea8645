"""What travels from the fetching workers to the exporter, and the keys that keep one
Letta object from being worked on twice at once (:mod:`.workers`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.state import OwedLlm

# What a piece of work is about: ("step", id), ("llm", step id) for an owed LLM span,
# ("run", id) for a run root. A key is busy from the moment its work is scheduled until
# its unit is committed or dropped (or the work ended without one).
Key = tuple[str, str]


@dataclass
class Unit:
    """The spans of one Letta object; exported and committed all together."""

    spans: Sequence[ReadableSpan]
    step_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    records: tuple[StepRecord | RunRecord, ...] = ()  # for the observer, once committed
    # LLM spans these steps still owe (their chat span was left out): rows written in
    # the commit, so the span is built later, also after a restart.
    owes: tuple[OwedLlm, ...] = ()
    # Steps whose owed LLM span this unit carries: their rows go in the commit.
    paid: tuple[str, ...] = ()
    llm_records: tuple[StepRecord, ...] = ()  # the LLM calls of ``paid``, for the observer

    @property
    def keys(self) -> tuple[Key, ...]:
        return (
            *(("step", s) for s in self.step_ids),
            *(("run", r) for r in self.run_ids),
            *(("llm", s) for s in self.paid),
        )


@dataclass(frozen=True)
class StepDraft:
    """An enriched step whose mapping waits for the consumer (it maps in bursts, see
    :mod:`letta_otel.pipeline.batches`). ``owes``: the provider trace was not written
    yet; the step goes out without its LLM span, which is owed from ``terminal_ns``
    (when the step was seen terminal)."""

    record: StepRecord
    trace_id: int
    sample_rate: int | None
    owes: bool = False
    terminal_ns: int = 0

    @property
    def keys(self) -> tuple[Key, ...]:
        return (("step", self.record.step.id),)
