"""What travels from the producing half of a cycle to the consuming half."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.mapping.records import RunRecord, StepRecord


@dataclass
class Unit:
    """The spans of one Letta object; exported and committed all together."""

    spans: Sequence[ReadableSpan]
    step_ids: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()
    records: tuple[StepRecord | RunRecord, ...] = ()  # for the observer, once committed


@dataclass(frozen=True)
class StepDraft:
    """An enriched step whose mapping waits for the consumer (it maps in bursts, see
    :mod:`letta_otel.pipeline.batches`)."""

    record: StepRecord
    trace_id: int
    sample_rate: int | None
