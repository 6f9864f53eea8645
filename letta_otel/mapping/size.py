"""How many bytes a span takes in an OTLP request, estimated without encoding it.

The per-span budget (:mod:`.limits`), the batch bounds and the per-trace budget
(:mod:`letta_otel.export`) all measure with :func:`estimate_span_bytes`: an upper bound,
so a batch packed by it never exceeds the backend's request limit, and cheap, so every
span can be measured (encoding it would cost a third more CPU per step).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import ReadableSpan

# Protobuf framing per span and per attribute, rounded up: the estimate must not
# undershoot, or a batch could exceed the backend's request limit.
SPAN_OVERHEAD = 160
ATTR_OVERHEAD = 12


def str_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())  # isascii() is O(1)


def value_size(value: object) -> int:
    """The estimated bytes of one attribute value (strings, arrays, structured maps)."""
    if isinstance(value, str):
        return str_size(value)
    if isinstance(value, tuple | list):
        return sum(value_size(v) + 4 for v in value)
    if isinstance(value, Mapping):  # structured event values (captured content)
        return sum(ATTR_OVERHEAD + len(str(k)) + value_size(v) for k, v in value.items())
    return 10


def estimate_span_bytes(span: ReadableSpan) -> int:
    """An upper-bound estimate of the span's OTLP protobuf size, without encoding it."""
    size = SPAN_OVERHEAD + str_size(span.name)
    for key, value in (span.attributes or {}).items():
        size += ATTR_OVERHEAD + len(key)
        size += str_size(value) if type(value) is str else value_size(value)
    for event in span.events:
        size += SPAN_OVERHEAD // 2 + len(event.name)
        for key, value in (event.attributes or {}).items():
            size += ATTR_OVERHEAD + len(key) + value_size(value)
    if span.status.description:
        size += len(span.status.description.encode())
    return size
