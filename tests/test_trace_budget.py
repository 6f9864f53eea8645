"""The per-trace budget across export cycles and restarts (state file), in isolation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

from letta_otel.export.trace_budget import bytes_by_trace
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.ids import format_trace_id
from letta_otel.mapping.limits import Captured, ContentValue, Limits, finalize
from letta_otel.mapping.redact import Redactor
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.pipeline.batches import TraceBudget
from letta_otel.state import StateStore

MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "x" * 8000}]}]


def span(trace_id: int, span_id: int) -> ReadableSpan:
    raw = ReadableSpan(
        name="chat m",
        context=SpanContext(trace_id, span_id, False, TraceFlags(TraceFlags.SAMPLED)),
        resource=Resource({}),
        attributes={"letta.step.id": f"step-{span_id}", "gen_ai.operation.name": "chat"},
        kind=SpanKind.CLIENT,
        status=Status(),
        start_time=1,
        end_time=2,
        instrumentation_scope=InstrumentationScope("t"),
    )
    captured = Captured(span=(ContentValue(sc.INPUT_MESSAGES, MESSAGES, "input"),))
    return finalize(raw, captured, Limits(), Redactor())


@dataclass
class Unit:
    spans: list[ReadableSpan]


def has_content(s: ReadableSpan) -> bool:
    return sc.INPUT_MESSAGES in (s.attributes or {})


def test_budget_survives_a_restart(tmp_path: Path) -> None:
    size = estimate_span_bytes(span(1, 1))
    budget = size * 3 + size // 2  # room for three and a half spans per trace
    state = StateStore(tmp_path / "s.db")
    first = [Unit([span(1, i), span(2, 10 + i)]) for i in range(2)]
    assert TraceBudget(state, budget).fit(first) == 0
    state.mark_exported(
        step_ids=["a"],
        run_ids=[],
        now_ns=5,
        trace_bytes=bytes_by_trace(s for u in first for s in u.spans),
    )
    state.close()

    state = StateStore(tmp_path / "s.db")  # a restart
    assert state.trace_bytes([format_trace_id(1)]) == {format_trace_id(1): 2 * size}
    later = [Unit([span(1, 3), span(1, 4)]), Unit([span(3, 5)])]
    assert TraceBudget(state, budget).fit(later) == 1
    kept, lean = later[0].spans
    assert has_content(kept)  # the third span of trace 1 still fits ...
    assert not has_content(lean)  # ... the fourth does not
    assert lean.attributes["letta_otel.limits_hit"] == ("max_trace_bytes",)  # type: ignore[index]
    assert lean.attributes["letta.step.id"] == "step-4"  # type: ignore[index]
    assert has_content(later[1].spans[0])  # another trace has its own budget
    state.close()


def test_confirmed_bytes_add_up_and_are_pruned(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "s.db")
    state.mark_exported(step_ids=[], run_ids=[], now_ns=10, trace_bytes={"t": 100})
    state.mark_exported(step_ids=[], run_ids=[], now_ns=20, trace_bytes={"t": 50, "u": 7})
    assert state.trace_bytes(["t", "u", "v"]) == {"t": 150, "u": 7}
    state.prune(older_than_ns=30)
    assert state.trace_bytes(["t", "u"]) == {}
    state.close()
