"""A copy of a finished span with some of its parts replaced.

``ReadableSpan`` has no setters; the limits, the batch trimmer and sampling each need a
span like the one they got with other attributes, events or status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue


def replace_span(
    span: ReadableSpan,
    *,
    attributes: Mapping[str, AttributeValue] | None = None,
    events: Sequence[Event] | None = None,
    status: Status | None = None,
) -> ReadableSpan:
    """``span`` with the parts given replaced (None: kept as they are)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes if attributes is None else attributes,
        events=span.events if events is None else events,
        links=span.links,
        kind=span.kind,
        status=span.status if status is None else status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# Honeycomb's attribute: "this span stands for N" (see letta_otel.selection.sampling).
SAMPLE_RATE_ATTRIBUTE = "SampleRate"


def with_sample_rate(spans: Sequence[ReadableSpan], rate: int) -> list[ReadableSpan]:
    """Copies of ``spans`` carrying ``SampleRate = rate``."""
    return [
        replace_span(span, attributes={**(span.attributes or {}), SAMPLE_RATE_ATTRIBUTE: rate})
        for span in spans
    ]
