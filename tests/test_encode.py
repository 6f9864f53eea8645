"""The direct OTLP encoder writes exactly the bytes of the SDK's ``encode_spans``."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from letta_otel.export.budget import trim_spans
from letta_otel.export.encode import EncodedSpans, encode_entries, encode_request
from tests.mapping.test_spans import map_scenario
from tests.samples import SCENARIOS

SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _same(spans: list[ReadableSpan]) -> None:
    assert encode_request(spans) == encode_spans(spans).SerializeToString()


def test_every_sample_scenario_byte_for_byte() -> None:
    spans = [s for name in SCENARIOS for s in map_scenario(name)]
    _same(spans)
    _same(trim_spans(spans, 20_000))  # truncated values and the truncation marker


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_alone(name: str) -> None:
    _same(map_scenario(name))


def test_every_value_type_and_optional_field() -> None:
    resource = Resource({"service.name": "x", "n": 3}, schema_url="https://r")
    scope = InstrumentationScope("s", "1.0", "https://s", {"scope.attr": True})
    remote_parent = SpanContext(1, 2, True, SAMPLED)
    span = ReadableSpan(
        name="every-type ✓",
        context=SpanContext(2**127 + 5, 2**63 + 7, False, SAMPLED, TraceState([("k", "v")])),
        parent=remote_parent,
        resource=resource,
        attributes={
            "s": "text",
            "empty": "",
            "b": False,
            "t": True,
            "i": -42,
            "zero": 0,
            "big": 2**63 - 1,
            "f": 0.25,
            "nf": -1e300,
            "bytes": b"\x00\x01",
            "strs": ("a", "", "ü"),
            "ints": [1, -2],
            "empty_list": (),
            "map": {"nested": 1, "deeper": {"x": "y"}},
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
    _same([span, bare, span])


@pytest.mark.parametrize("key_len", [1, 100, 112, 113, 116, 117, 121, 122, 123, 124, 125, 200])
def test_one_byte_length_edges_of_every_fast_path(key_len: int) -> None:
    # Around the sizes where a KeyValue's length stops fitting one byte, the fast paths
    # must hand over to the general one with the same bytes as the SDK.
    key = "k" * key_len
    values: list[object] = ["", "x", "é" * 3, "y" * (127 - key_len), "z" * max(0, 124 - key_len)]
    values += [0, 1, 0x7F, 0x80, 300, 2**31, 2**63 - 1, -1, -(2**63)]
    values += [0.0, -2.5, 1e300, True, False]
    for i, value in enumerate(values):
        span = ReadableSpan(
            name="edges",
            context=SpanContext(1, i + 1, False, SAMPLED),
            resource=Resource({}),
            attributes={key: value, "other": value},
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=1,
            end_time=2,
        )
        _same([span])


def test_groups_by_resource_and_scope_in_first_seen_order() -> None:
    spans = [s for name in SCENARIOS[:3] for s in map_scenario(name)]
    other = Resource({"service.name": "other"})
    moved = [
        ReadableSpan(
            name=s.name,
            context=s.context,
            parent=s.parent,
            resource=other,
            attributes=s.attributes,
            kind=s.kind,
            status=s.status,
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=s.instrumentation_scope,
        )
        for s in spans[:2]
    ]
    _same([spans[0], *moved, *spans[1:]])


def test_pre_encoded_entries_give_the_same_request() -> None:
    spans = [s for name in SCENARIOS for s in map_scenario(name)]
    entries = encode_entries(spans)
    assert encode_request(EncodedSpans(spans, entries)) == encode_request(spans)
    # The entries are used as they are, not re-encoded from the spans.
    assert encode_request(EncodedSpans(spans[:1], entries[1:2])) == encode_request(spans[1:2])


def test_entries_are_what_the_request_carries_per_span() -> None:
    spans = map_scenario(SCENARIOS[0])
    request = encode_request(spans)
    for entry, span in zip(encode_entries(spans), spans, strict=True):
        assert entry in request
        assert len(entry) >= len(span.name)


def test_encoded_spans_must_match_their_entries() -> None:
    spans = map_scenario(SCENARIOS[0])
    with pytest.raises(ValueError, match="encoded entries"):
        EncodedSpans(spans, encode_entries(spans)[1:])
