"""What the pipeline tells whoever watches it (metrics, health); no-ops by default.

The pipeline calls these at fixed points of a cycle, from the event loop thread:

* ``polled(steps)`` — discovery answered; ``steps`` is everything it listed (also
  steps already exported, e.g. from a re-read), so feedback given later is seen;
* ``exported(ok, spans, newest_end_ns)`` — one OTLP export attempt of a span batch;
* ``step_accounted(record)`` / ``run_accounted(record)`` — the object is done for good:
  its batch was confirmed AND committed (or it was settled without export). Called
  exactly once per object, so counters fed from here never double count a retried
  export. A caller that settles an object without exporting it (e.g. a sampled-out
  run) calls these right after committing that decision. ``llm=False``: the step's
  span left without its LLM span, which is owed; its LLM call is accounted by
* ``llm_accounted(record)`` — once, when that LLM span is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from letta_otel.letta.models import Step
from letta_otel.mapping.records import RunRecord, StepRecord


class BridgeObserver(Protocol):
    def polled(self, steps: Sequence[Step]) -> None: ...

    def exported(self, ok: bool, spans: int, newest_end_ns: int) -> None: ...

    def step_accounted(self, record: StepRecord, llm: bool = True) -> None: ...

    def llm_accounted(self, record: StepRecord) -> None: ...

    def run_accounted(self, record: RunRecord) -> None: ...


class NullObserver:
    """Watches nothing (tests, embedded use)."""

    def polled(self, steps: Sequence[Step]) -> None:
        pass

    def exported(self, ok: bool, spans: int, newest_end_ns: int) -> None:
        pass

    def step_accounted(self, record: StepRecord, llm: bool = True) -> None:
        pass

    def llm_accounted(self, record: StepRecord) -> None:
        pass

    def run_accounted(self, record: RunRecord) -> None:
        pass
