"""Batches are sized without encoding them: the estimate must never undershoot the SDK.

Spans leave through the SDK exporters' ``export()``, which encode each batch with the
SDK's encoder (``trace_encoder.encode_spans``). The bridge packs units by
``estimate_span_bytes`` plus ``request_overhead`` instead of encoding every span a
second time, so a backend's request limit holds only if the estimate is an upper bound
of what the SDK writes: checked here on the real samples (every capture mode, whole and
trimmed) and on generated records (``tests/strategies.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace as replace_struct
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from letta_otel.export.budget import (
    BatchPacker,
    estimate_unit_bytes,
    request_overhead,
    trim_spans,
)
from letta_otel.mapping import ids
from letta_otel.mapping.capture import CaptureMode, ContentPolicy
from letta_otel.mapping.limits import Limits
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.mapping.spans import MappingContext, map_run, map_step
from tests.mapping.test_spans import CTX
from tests.samples import SCENARIOS, load_scenario
from tests.strategies import run_records, step_records

SAMPLED = TraceFlags(TraceFlags.SAMPLED)
# A resource as the daemon builds it, larger than the tests' usual one: the request
# overhead must cover it.
FAT_RESOURCE = Resource(
    {
        "service.name": "letta-otel",
        "service.version": "0.1.0",
        "service.instance.id": "0f6e0c2c-6d0a-4e55-9b8e-7f4c2a1d9e31",
        "deployment.environment.name": "production",
        "letta_otel.version": "0.1.0",
        "letta_otel.id_scheme": "v1",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.45.2",
    },
    schema_url="https://opentelemetry.io/schemas/1.41.0",
)
FAT_CTX = replace(
    CTX,
    resource=FAT_RESOURCE,
    scope=InstrumentationScope("letta-otel", "0.1.0", "https://opentelemetry.io/schemas/1.41.0"),
)


def _varint_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def assert_estimate_covers(spans: Sequence[ReadableSpan]) -> None:
    """Each span's estimate covers its entry in the SDK's request (message, tag and
    length), and the estimates plus the request overhead cover the whole request."""
    request = encode_spans(spans)
    entries = {
        int.from_bytes(s.span_id, "big"): s.ByteSize()
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
    for span in spans:
        assert span.context is not None
        size = entries[span.context.span_id]
        entry = 1 + _varint_size(size) + size
        assert estimate_span_bytes(span) >= entry, (span.name, estimate_span_bytes(span), entry)
    if spans:
        total = sum(estimate_span_bytes(s) for s in spans) + request_overhead(spans[0])
        assert total >= request.ByteSize()


def scenario_spans(name: str, ctx: MappingContext) -> list[ReadableSpan]:
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    spans = [map_run(scenario.run_record, ctx, trace_id)]
    for record in scenario.steps:
        spans.extend(map_step(record, ctx, trace_id))
    return spans


def _capture(mode: CaptureMode, ctx: MappingContext = CTX) -> MappingContext:
    return replace(ctx, content=ContentPolicy(mode))


@pytest.mark.parametrize("mode", list(CaptureMode))
@pytest.mark.parametrize("name", SCENARIOS)
def test_the_estimate_covers_every_sample_in_every_capture_mode(
    name: str, mode: CaptureMode
) -> None:
    for ctx in (CTX, FAT_CTX):
        spans = scenario_spans(name, _capture(mode, ctx))
        assert_estimate_covers(spans)
        assert_estimate_covers(trim_spans(spans, 4_000))  # cut values and the marker


@settings(max_examples=200, deadline=None)
@given(
    step=step_records(),
    run=run_records(),
    mode=st.sampled_from(list(CaptureMode)),
    limit=st.sampled_from([256, 2048, 16384, 65536]),
)
def test_the_estimate_covers_generated_records(
    step: StepRecord, run: RunRecord, mode: CaptureMode, limit: int
) -> None:
    policy = ContentPolicy(mode, limits=Limits(max_attribute_bytes=limit))
    ctx = replace(FAT_CTX, content=policy)
    trace_id = ids.trace_id_from_letta_id(run.run.id)
    # One trace per run, as the daemon builds them (a fresh memo: it caches mapping).
    step = replace(step, step=replace_struct(step.step, run_id=run.run.id), run=run.run, memo={})
    assert_estimate_covers([map_run(run, ctx, trace_id), *map_step(step, ctx, trace_id)])


def test_the_estimate_covers_every_value_type_and_optional_field() -> None:
    resource = Resource({"service.name": "x", "n": 3}, schema_url="https://r")
    scope = InstrumentationScope("s", "1.0", "https://s", {"scope.attr": True})
    span = ReadableSpan(
        name="every-type ✓",
        context=SpanContext(2**127 + 5, 2**63 + 7, False, SAMPLED, TraceState([("k", "v")])),
        parent=SpanContext(1, 2, True, SAMPLED),
        resource=resource,
        attributes={
            "s": "text",
            "empty": "",
            "b": False,
            "i": -42,
            "big": 2**63 - 1,
            "f": 0.25,
            "bytes": b"\x00\x01",
            "strs": ("a", "", "ü"),
            "ints": [1, -2],
            "empty_list": (),
            "map": {"nested": 1, "deeper": {"x": "y"}},
            "long": "é" * 20_000,
        },
        events=[
            Event("e1", {"exception.message": "boom"}, timestamp=123),
            Event("e0", None, timestamp=0),
        ],
        links=[Link(SpanContext(9, 10, True, SAMPLED), {"l": 1})],
        kind=SpanKind.PRODUCER,
        status=Status(StatusCode.ERROR, "bad"),
        start_time=1,
        end_time=2**63,
        instrumentation_scope=scope,
    )
    bare = ReadableSpan(
        name="",
        context=SpanContext(3, 4, False, SAMPLED),
        resource=Resource({}),
        kind=SpanKind.INTERNAL,
        status=Status(StatusCode.UNSET),
        start_time=0,
        end_time=0,
    )
    assert_estimate_covers([span, bare])


@dataclass
class _Unit:
    spans: list[ReadableSpan]


@pytest.mark.parametrize("max_bytes", [8_000, 30_000, 100_000])
def test_batches_packed_by_the_estimate_fit_the_limit_once_encoded(max_bytes: int) -> None:
    """As the bridge packs them: estimates within ``max_bytes - request_overhead``,
    a unit larger than that trimmed to it first. Content is captured on spans and
    events, so some units are larger than the smallest limit."""
    ctx = _capture(CaptureMode.SPAN_AND_EVENT, FAT_CTX)
    units = [
        _Unit(map_step(record, ctx, ids.trace_id_from_letta_id(record.step.id)))
        for name in SCENARIOS
        for record in load_scenario(name).steps
    ]
    overhead = request_overhead(units[0].spans[0])
    limit = max_bytes - overhead
    packer, batches = BatchPacker[_Unit](), []
    for unit in units:
        if estimate_unit_bytes(unit) > limit:
            unit.spans = trim_spans(unit.spans, limit)
        size = estimate_unit_bytes(unit)
        if not packer.fits(unit, size, max_spans=512, max_bytes=limit):
            batches.append(packer.take())
        packer.add(unit, size)
    batches.append(packer.take())
    assert len(batches) > 1
    for batch in batches:
        spans = [s for u in batch for s in u.spans]
        assert len(encode_spans(spans).SerializeToString()) <= max_bytes


def test_the_request_overhead_is_what_the_sdk_adds_around_one_span() -> None:
    span = scenario_spans(SCENARIOS[0], FAT_CTX)[0]
    request = encode_spans([span])
    entry = request.resource_spans[0].scope_spans[0].spans[0].ByteSize()
    overhead = request_overhead(span)
    assert overhead >= request.ByteSize() - entry
    # The resource is the bulk of it, and it is counted once per request, not per span.
    assert overhead >= len(FAT_RESOURCE.attributes) * 10
    assert overhead <= request.ByteSize() - entry + 10
