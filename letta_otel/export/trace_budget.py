"""The per-trace byte budget (``LETTA_OTEL_MAX_TRACE_BYTES``), across export cycles.

A Letta run is one trace, and its steps are exported over many cycles (and restarts),
so the bytes already confirmed per trace live in the state file
(``StateStore.trace_bytes``), added in the same transaction that marks the spans
exported. Before a cycle exports, :meth:`TraceBudget.fit` walks its spans in export
order and removes the captured content from each span that would take its trace past the
budget (``letta_otel.limits_hit`` gets ``max_trace_bytes``). Spans themselves and
their identifying attributes always go: the budget only ever costs content.

Only active while content capture is on: without content, a span's size is bounded by
its few attributes and nothing could be dropped anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.export.budget import estimate_span_bytes
from letta_otel.mapping.ids import format_trace_id
from letta_otel.mapping.limits import HIT_TRACE_BYTES, drop_content
from letta_otel.state import StateStore

log = logging.getLogger(__name__)

_LOGGED_LIMIT = 10_000


class MutableUnit(Protocol):
    spans: Sequence[ReadableSpan]


def _trace_key(span: ReadableSpan) -> str | None:
    return format_trace_id(span.context.trace_id) if span.context else None


def bytes_by_trace(spans: Iterable[ReadableSpan]) -> dict[str, int]:
    """Estimated encoded bytes per trace id (what a confirmed batch adds)."""
    totals: dict[str, int] = defaultdict(int)
    for span in spans:
        key = _trace_key(span)
        if key is not None:
            totals[key] += estimate_span_bytes(span)
    return dict(totals)


class TraceBudget:
    def __init__(self, state: StateStore, max_bytes: int) -> None:
        self._state = state
        self.max_bytes = max_bytes
        self._logged: set[str] = set()

    def fit(self, units: Sequence[MutableUnit]) -> int:
        """Strip content from each span that would take its trace past the budget, in
        export order (so earlier spans keep theirs); returns how many spans lost it."""
        keys = {k for unit in units for k in map(_trace_key, unit.spans) if k}
        used = self._state.trace_bytes(keys)
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
