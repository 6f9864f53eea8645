"""Batch planning: units of spans packed into bounded export requests.

A unit is everything one Letta object produced (a step with its LLM and tool spans,
or a run's root span). Units are never split across requests, so a checkpoint is
all-or-nothing per Letta object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.util.types import AttributeValue

from letta_otel.mapping.clean import cut_text
from letta_otel.mapping.limits import TRUNCATED_ATTRIBUTE
from letta_otel.mapping.size import estimate_span_bytes, value_size
from letta_otel.mapping.span_copy import replace_span

_MIN_VALUE_BYTES = 64
# The request's two enclosing length fields (ResourceSpans, ScopeSpans) grow with the
# batch: up to 5 bytes each for requests below 32 GiB.
_LENGTH_GROWTH = 2 * 5


class HasSpans(Protocol):
    @property
    def spans(self) -> Sequence[ReadableSpan]: ...


U = TypeVar("U", bound=HasSpans)


def estimate_unit_bytes(unit: HasSpans) -> int:
    return sum(estimate_span_bytes(s) for s in unit.spans)


def request_overhead(span: ReadableSpan) -> int:
    """What an export request adds around spans that share ``span``'s resource and
    scope (the resource's attributes, the scope, the enclosing lengths), measured once
    with the SDK's own encoder: batch bounds leave this much room besides the spans'
    estimates."""
    request = encode_spans([span])
    entries = sum(
        s.ByteSize() for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
    )
    return int(request.ByteSize() - entries) + _LENGTH_GROWTH


class BatchPacker(Generic[U]):
    """Greedy packing in arrival order; a unit bigger than a whole batch travels alone.

    Incremental, so the bridge's pipeline can pack units as they are mapped; the bounds
    are given per unit because the bridge shrinks them after a failed export.
    """

    def __init__(self) -> None:
        self.units: list[U] = []
        self.spans = 0
        self.bytes = 0

    def fits(self, unit: U, size: int, *, max_spans: int, max_bytes: int) -> bool:
        """Whether ``unit`` (``size`` estimated bytes) joins the current batch."""
        return not self.units or (
            self.spans + len(unit.spans) <= max_spans and self.bytes + size <= max_bytes
        )

    def add(self, unit: U, size: int) -> None:
        self.units.append(unit)
        self.spans += len(unit.spans)
        self.bytes += size

    def take(self) -> list[U]:
        """The current batch; the packer starts a new one."""
        batch, self.units, self.spans, self.bytes = self.units, [], 0, 0
        return batch


def _structured(value: object) -> bool:
    if isinstance(value, Mapping):
        return True
    return isinstance(value, tuple | list) and any(
        isinstance(v, Mapping | tuple | list) for v in value
    )


def _cap_values(
    attrs: Mapping[str, AttributeValue] | None, limit: int
) -> dict[str, AttributeValue]:
    """Long strings cut; structured values (captured content on events) that are too big
    cannot be cut without breaking them, so they are left out."""
    capped: dict[str, AttributeValue] = {}
    for key, value in (attrs or {}).items():
        if isinstance(value, str):
            capped[key] = cut_text(value, limit)
        elif not (_structured(value) and value_size(value) > limit):
            capped[key] = value
    return capped


def trim_span(span: ReadableSpan, max_bytes: int) -> ReadableSpan:
    """Shorten the longest string values until the span fits ``max_bytes``; mark it.

    A span is never dropped for its size: the identifying attributes are short and
    survive, the long payload-like values are cut with a marker.
    """
    if estimate_span_bytes(span) <= max_bytes:
        return span
    longest = max(
        [value_size(v) for v in (span.attributes or {}).values() if isinstance(v, str)]
        + [
            value_size(v)
            for e in span.events
            for v in (e.attributes or {}).values()
            if isinstance(v, str) or _structured(v)
        ]
        + [_MIN_VALUE_BYTES]
    )
    limit, trimmed = longest, span
    while limit > _MIN_VALUE_BYTES and estimate_span_bytes(trimmed) > max_bytes:
        limit //= 2
        attrs = _cap_values(span.attributes, limit)
        attrs[TRUNCATED_ATTRIBUTE] = True
        trimmed = replace_span(
            span,
            attributes=attrs,
            events=[
                Event(e.name, _cap_values(e.attributes, limit), e.timestamp) for e in span.events
            ],
        )
    return trimmed


def trim_spans(spans: Sequence[ReadableSpan], max_bytes: int) -> list[ReadableSpan]:
    """Fit a unit into one request: each span gets an equal share of ``max_bytes``."""
    if sum(estimate_span_bytes(s) for s in spans) <= max_bytes:
        return list(spans)
    share = max_bytes // max(len(spans), 1)
    return [trim_span(s, share) for s in spans]
