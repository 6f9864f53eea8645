"""The per-trace byte budget (``LETTA_OTEL_MAX_TRACE_BYTES``), given what each trace used.

A Letta run is one trace, and its steps are exported over many cycles (and restarts),
so the bytes already confirmed per trace are kept by the pipeline (in the state file,
added in the same transaction that marks the spans exported: :func:`bytes_by_trace`).
Before a batch leaves, :meth:`PerTraceBudget.fit` walks its spans in export order and
removes the captured content from each span that would take its trace past the budget
(:func:`drop_content`; ``letta_otel.limits_hit`` gets ``max_trace_bytes``). Spans
themselves and their identifying attributes always go: the budget only ever costs
content.

Only active while content capture is on: without content, a span's size is bounded by
its few attributes and nothing could be dropped anyway. Pure given the bytes used.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, cast

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.mapping import semconv as sc
from letta_otel.mapping.ids import format_trace_id
from letta_otel.mapping.limits import DROPPED_ATTRIBUTES, LIMITS_HIT
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.mapping.span_copy import replace_span

log = logging.getLogger(__name__)

HIT_TRACE_BYTES = "max_trace_bytes"
_LOGGED_LIMIT = 10_000


class MutableUnit(Protocol):
    spans: Sequence[ReadableSpan]


def _trace_key(span: ReadableSpan) -> str | None:
    return format_trace_id(span.context.trace_id) if span.context else None


def trace_keys(units: Iterable[MutableUnit]) -> set[str]:
    """The trace ids (hex) of the units' spans: whose used bytes :meth:`fit` needs."""
    return {k for unit in units for k in map(_trace_key, unit.spans) if k}


def bytes_by_trace(spans: Iterable[ReadableSpan]) -> dict[str, int]:
    """Estimated encoded bytes per trace id (what a confirmed batch adds)."""
    totals: dict[str, int] = defaultdict(int)
    for span in spans:
        key = _trace_key(span)
        if key is not None:
            totals[key] += estimate_span_bytes(span)
    return dict(totals)


class PerTraceBudget:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._logged: set[str] = set()

    def fit(self, units: Sequence[MutableUnit], used: Mapping[str, int]) -> int:
        """Strip content from each span that would take its trace past the budget, in
        export order (so earlier spans keep theirs), ``used`` being what each trace's
        confirmed spans already took; returns how many spans lost it."""
        planned: dict[str, int] = defaultdict(int)
        stripped = 0
        for unit in units:
            spans = list(unit.spans)
            for index, span in enumerate(spans):
                key = _trace_key(span)
                if key is None:
                    continue
                size = estimate_span_bytes(span)
                if used.get(key, 0) + planned[key] + size > self.max_bytes:
                    lean = drop_content(span, HIT_TRACE_BYTES)
                    if lean is not span:
                        spans[index] = lean
                        size = estimate_span_bytes(lean)
                        stripped += 1
                        self._note(key)
                planned[key] += size
            if any(a is not b for a, b in zip(spans, unit.spans, strict=True)):
                unit.spans = spans
        return stripped

    def _note(self, key: str) -> None:
        if key in self._logged:
            return
        if len(self._logged) >= _LOGGED_LIMIT:
            self._logged.clear()
        self._logged.add(key)
        log.info(
            "trace %s reached LETTA_OTEL_MAX_TRACE_BYTES (%d bytes): its further spans "
            "are exported without captured content",
            key,
            self.max_bytes,
        )


def drop_content(span: ReadableSpan, reason: str) -> ReadableSpan:
    """The span without any captured content (span attributes and event copies), marked.

    Identifying attributes and the span itself stay.
    """
    attrs = dict(span.attributes or {})
    removed = [k for k in attrs if k in sc.CONTENT_ATTRIBUTES]
    events = []
    for event in span.events:
        event_attrs = dict(event.attributes or {})
        removed += [k for k in event_attrs if k in sc.CONTENT_ATTRIBUTES]
        if event.name == sc.INFERENCE_DETAILS_EVENT:
            continue  # the event only exists to carry content
        events.append(event)
    if not removed and len(events) == len(span.events):
        return span
    for key in removed:
        attrs.pop(key, None)
    dropped = set(cast(Sequence[str], attrs.get(DROPPED_ATTRIBUTES, ()))) | set(removed)
    hit = set(cast(Sequence[str], attrs.get(LIMITS_HIT, ()))) | {reason}
    attrs[DROPPED_ATTRIBUTES] = tuple(sorted(dropped))
    attrs[LIMITS_HIT] = tuple(sorted(hit))
    return replace_span(span, attributes=attrs, events=events)
