"""Batch planning: units of spans packed into bounded export requests.

A unit is everything one Letta object produced (a step with its LLM and tool spans,
or a run's root span). Units are never split across requests, so a checkpoint is
all-or-nothing per Letta object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

# Protobuf framing per span and per attribute, rounded up: the estimate must not
# undershoot, or a batch could exceed the backend's request limit.
_SPAN_OVERHEAD = 160
_ATTR_OVERHEAD = 12


class HasSpans(Protocol):
    @property
    def spans(self) -> Sequence[ReadableSpan]: ...


U = TypeVar("U", bound=HasSpans)


def _value_size(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, tuple | list):
        return sum(_value_size(v) + 4 for v in value)
    return 10


def estimate_span_bytes(span: ReadableSpan) -> int:
    """An upper-bound estimate of the span's OTLP protobuf size, without encoding it."""
    size = _SPAN_OVERHEAD + len(span.name.encode())
    for key, value in (span.attributes or {}).items():
        size += _ATTR_OVERHEAD + len(key) + _value_size(value)
    for event in span.events:
        size += _SPAN_OVERHEAD // 2 + len(event.name)
        for key, value in (event.attributes or {}).items():
            size += _ATTR_OVERHEAD + len(key) + _value_size(value)
    if span.status.description:
        size += len(span.status.description.encode())
    return size


def estimate_unit_bytes(unit: HasSpans) -> int:
    return sum(estimate_span_bytes(s) for s in unit.spans)


def plan_batches(units: Iterable[U], *, max_spans: int, max_bytes: int) -> Iterator[list[U]]:
    """Greedy packing in order; a unit bigger than a whole batch travels alone."""
    batch: list[U] = []
    spans = size = 0
    for unit in units:
        n, b = len(unit.spans), estimate_unit_bytes(unit)
        if batch and (spans + n > max_spans or size + b > max_bytes):
            yield batch
            batch, spans, size = [], 0, 0
        batch.append(unit)
        spans += n
        size += b
    if batch:
        yield batch
