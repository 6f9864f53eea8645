"""Batch planning and trimming: bounded requests, units never split, spans never dropped."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from letta_otel.export.budget import BatchPacker, estimate_unit_bytes, trim_span, trim_spans
from letta_otel.mapping.limits import TRUNCATED_ATTRIBUTE
from letta_otel.mapping.size import estimate_span_bytes


def span(i: int, payload: int = 10) -> ReadableSpan:
    return ReadableSpan(
        name=f"span-{i}",
        context=SpanContext(1, i + 1, False, TraceFlags(1)),
        resource=Resource({"service.name": "t"}),
        attributes={"letta.step.id": f"step-{i}", "big": "x" * payload, "n": i},
        events=[Event("exception", {"exception.stacktrace": "y" * payload}, 1)],
        start_time=1,
        end_time=2,
    )


@dataclass
class Unit:
    spans: list[ReadableSpan]


def test_estimate_is_an_upper_bound_of_the_real_encoding() -> None:
    for payload in (0, 10, 1000, 100_000):
        s = span(1, payload)
        assert estimate_span_bytes(s) >= encode_spans([s]).ByteSize()


def plan_batches(units: Iterable[Unit], *, max_spans: int, max_bytes: int) -> Iterator[list[Unit]]:
    """``units`` packed by BatchPacker, sized by the estimate, as the bridge's exporter
    does for http/protobuf."""
    packer = BatchPacker[Unit]()
    for unit in units:
        size = estimate_unit_bytes(unit)
        if not packer.fits(unit, size, max_spans=max_spans, max_bytes=max_bytes):
            yield packer.take()
        packer.add(unit, size)
    if packer.units:
        yield packer.take()


def test_batches_respect_span_and_byte_bounds_and_keep_units_whole() -> None:
    units = [Unit([span(3 * i + k, 500) for k in range(3)]) for i in range(20)]
    batches = list(plan_batches(units, max_spans=10, max_bytes=6_000))
    assert [u for b in batches for u in b] == units  # order kept, nothing lost
    for batch in batches:
        spans = [s for u in batch for s in u.spans]
        assert len(spans) <= 10
        assert sum(estimate_span_bytes(s) for s in spans) <= 6_000


def test_a_unit_larger_than_a_batch_travels_alone() -> None:
    huge = Unit([span(0, 50_000)])
    batches = list(
        plan_batches([Unit([span(1)]), huge, Unit([span(2)])], max_spans=5, max_bytes=10_000)
    )
    assert [huge] in batches


def test_trimming_shrinks_long_values_keeps_ids_and_marks_the_span() -> None:
    big = span(7, 200_000)
    trimmed = trim_span(big, 20_000)
    assert estimate_span_bytes(trimmed) <= 20_000
    attrs = trimmed.attributes or {}
    assert attrs["letta.step.id"] == "step-7" and attrs["n"] == 7
    assert attrs[TRUNCATED_ATTRIBUTE] is True
    assert "bytes truncated" in str(attrs["big"])
    assert trimmed.context == big.context and trimmed.events[0].name == "exception"
    encode_spans([trimmed]).SerializeToString()


def test_small_spans_are_left_alone() -> None:
    small = [span(1), span(2)]
    assert trim_spans(small, 1_000_000) == small
    assert trim_span(small[0], 1_000_000) is small[0]
