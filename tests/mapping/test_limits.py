"""Budgets in isolation: cutting text, fitting JSON, and the per-span limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from letta_otel.export.budget import trim_span
from letta_otel.export.trace_budget import drop_content
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.clean import cut_text
from letta_otel.mapping.fit_json import fit_json, json_size
from letta_otel.mapping.limits import Captured, ContentValue, Limits, finalize
from letta_otel.mapping.redact import Redactor
from letta_otel.mapping.size import estimate_span_bytes
from tests.semconv_schemas import validate

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


@given(text=TEXT, limit=st.integers(40, 500), tail=st.booleans())
def test_cut_text_fits_and_marks(text: str, limit: int, tail: bool) -> None:
    cut = cut_text(text, limit, keep_tail=tail)
    assert len(cut.encode()) <= limit
    if cut != text:
        assert "bytes truncated]…" in cut
        kept = cut.split("]…", 1)[1] if tail else cut.rsplit("…[", 1)[0]
        assert text.endswith(kept) if tail else text.startswith(kept)


def test_cut_text_counts_removed_bytes() -> None:
    cut = cut_text("é" * 100, 60)  # 200 bytes; never half a character
    kept = cut.split("…[")[0]
    removed = int(cut.split("…[")[1].split(" ")[0])
    assert len(kept.encode()) + removed == 200


_parts = st.one_of(
    st.builds(lambda t: {"type": "text", "content": t}, TEXT),
    st.builds(
        lambda i, n, a: {"type": "tool_call", "id": i, "name": n, "arguments": a},
        st.text(max_size=30),
        st.text(max_size=30),
        st.dictionaries(st.text(max_size=10), TEXT | st.integers(), max_size=4),
    ),
    st.builds(
        lambda i, r: {"type": "tool_call_response", "id": i, "response": r},
        st.text(max_size=30),
        TEXT | st.lists(TEXT, max_size=3),
    ),
    st.builds(lambda t: {"type": "reasoning", "content": t}, TEXT),
)
_messages = st.lists(
    st.builds(
        lambda r, p: {"role": r, "parts": p},
        st.sampled_from(["system", "user", "assistant", "tool"]),
        st.lists(_parts, max_size=4),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(messages=_messages, limit=st.integers(256, 4096))
def test_fit_json_keeps_input_messages_valid_and_bounded(
    messages: list[dict[str, Any]], limit: int
) -> None:
    fitted, truncated = fit_json(messages, limit, "input")
    if fitted is None:
        assert truncated
        return
    assert json_size(fitted) <= limit
    validate("gen_ai.input.messages", fitted)
    assert truncated == (fitted != messages)
    if not truncated:
        return
    # structure is never cut: ids, names, roles are whole or the message is gone
    originals = {json.dumps(m["role"]) for m in messages} | {'"letta_otel"'}
    assert {json.dumps(m["role"]) for m in fitted} <= originals


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        TEXT | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=30,
    ),
    limit=st.integers(64, 2048),
)
def test_fit_json_values_are_bounded(value: Any, limit: int) -> None:
    fitted, _ = fit_json(value, limit)
    if fitted is not None:
        size = len(fitted.encode()) if isinstance(fitted, str) else json_size(fitted)
        assert size <= limit


def test_output_messages_drop_extra_choices_without_marker() -> None:
    choice = {
        "role": "assistant",
        "parts": [{"type": "text", "content": "x" * 300}],
        "finish_reason": "stop",
    }
    fitted, truncated = fit_json([dict(choice) for _ in range(20)], 400, "output")
    assert truncated and fitted
    validate("gen_ai.output.messages", fitted)
    assert all(m["role"] == "assistant" for m in fitted)


def test_tool_definitions_keep_first_and_mark() -> None:
    tools = [{"type": "function", "name": f"tool_{i:03d}"} for i in range(200)]
    fitted, truncated = fit_json(tools, 512, "tools")
    assert truncated
    validate("gen_ai.tool.definitions", fitted)
    assert fitted[0]["name"] == "tool_000"
    assert fitted[-1]["type"] == "letta_otel.truncated"
    assert json_size(fitted) <= 512


# --- finalize ---------------------------------------------------------------------------

RESOURCE = Resource({"service.name": "t"})
SCOPE = InstrumentationScope("t")


def make_span(
    attrs: dict[str, Any], events: list[Event] | None = None, status: str | None = None
) -> ReadableSpan:
    ctx = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED))
    return ReadableSpan(
        name="chat m",
        context=ctx,
        resource=RESOURCE,
        attributes=attrs,
        events=events or [],
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, status) if status else Status(StatusCode.UNSET),
        start_time=1,
        end_time=2,
        instrumentation_scope=SCOPE,
    )


CORE = {"letta.step.id": "step-1", "gen_ai.operation.name": "chat", "error.type": "x"}
MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "hello " * 200}]}]


def test_untouched_span_is_returned_as_is() -> None:
    span = make_span(dict(CORE))
    assert finalize(span, None, Limits(), Redactor()) is span


def test_count_limit_evicts_content_then_others_largest_first() -> None:
    attrs = {**CORE, "server.address": "a", "other.small": "s", "other.big": "y" * 100}
    captured = Captured(span=(ContentValue(sc.INPUT_MESSAGES, MESSAGES, "input"),))
    # 6 + content + the redaction count = 8: fits exactly
    span = finalize(make_span(attrs), captured, Limits(max_attributes=8), Redactor())
    assert sc.INPUT_MESSAGES in (span.attributes or {})
    # one less: content goes first, then the largest other; the two markers count too
    span = finalize(make_span(attrs), captured, Limits(max_attributes=7), Redactor())
    out = span.attributes or {}
    dropped = set(out["letta_otel.dropped_attributes"])  # type: ignore[arg-type]
    assert dropped == {sc.INPUT_MESSAGES, "other.big", "server.address"}
    assert out["letta_otel.limits_hit"] == ("max_attributes",)
    assert all(out[k] == v for k, v in CORE.items())
    assert len(out) <= 7
    # core is kept even when it alone exceeds the limit
    span = finalize(make_span(attrs), captured, Limits(max_attributes=1), Redactor())
    out = span.attributes or {}
    assert all(out[k] == v for k, v in CORE.items())
    assert not set(out) - set(CORE) - {k for k in out if k.startswith("letta_otel.")}


def test_span_budget_drops_event_copy_before_span_copy() -> None:
    # 150 short attributes: content alone cannot be shrunk enough, it has to go.
    attrs = {**CORE, **{f"x.k{i:03d}": "v" * 30 for i in range(150)}}
    value = ContentValue(sc.INPUT_MESSAGES, MESSAGES, "input")
    captured = Captured(
        span=(value,),
        event_name=sc.INFERENCE_DETAILS_EVENT,
        event_attributes={"gen_ai.operation.name": "chat"},
        event_content=(value,),
    )
    base = estimate_span_bytes(make_span(attrs))
    limits = Limits(max_span_bytes=base + 700, max_attributes=1000)
    span = finalize(make_span(attrs), captured, limits, Redactor())
    out = span.attributes or {}
    assert estimate_span_bytes(span) <= base + 700
    assert sc.INPUT_MESSAGES in out  # the span copy survived ...
    (event,) = span.events
    assert sc.INPUT_MESSAGES not in (event.attributes or {})  # ... the event copy went
    assert "max_span_bytes" in out["letta_otel.limits_hit"]  # type: ignore[operator]


def test_drop_content_keeps_identity_and_marks() -> None:
    captured = Captured(
        span=(ContentValue(sc.INPUT_MESSAGES, MESSAGES, "input"),),
        event_name=sc.INFERENCE_DETAILS_EVENT,
        event_attributes={"gen_ai.operation.name": "chat"},
        event_content=(ContentValue(sc.INPUT_MESSAGES, MESSAGES, "input"),),
    )
    exception = Event("exception", {"exception.message": "m"}, 1)
    span = finalize(make_span(dict(CORE), [exception], "boom"), captured, Limits(), Redactor())
    stripped = drop_content(span, "max_trace_bytes")
    out = stripped.attributes or {}
    assert not set(out) & sc.CONTENT_ATTRIBUTES
    assert [e.name for e in stripped.events] == ["exception"]
    assert all(out[k] == v for k, v in CORE.items())
    assert out["letta_otel.limits_hit"] == ("max_trace_bytes",)
    assert drop_content(stripped, "max_trace_bytes") is stripped


def test_batch_trim_leaves_out_structured_values_it_cannot_cut() -> None:
    event = Event(sc.INFERENCE_DETAILS_EVENT, {sc.INPUT_MESSAGES: tuple(MESSAGES * 20)}, 1)  # type: ignore[dict-item]
    span = make_span(dict(CORE), [event])
    trimmed = trim_span(span, 2048)
    assert estimate_span_bytes(trimmed) <= 2048
    assert sc.INPUT_MESSAGES not in (trimmed.events[0].attributes or {})


@pytest.mark.parametrize("limit", [256, 1000])
def test_plain_strings_and_string_arrays_are_capped(limit: int) -> None:
    attrs = {**CORE, "a": "z" * 5000, "b": ("q" * 5000, "ok")}
    span = finalize(make_span(attrs), None, Limits(max_attribute_bytes=limit), Redactor())
    out = span.attributes or {}
    assert len(str(out["a"]).encode()) <= limit
    assert all(len(v.encode()) <= limit for v in out["b"])  # type: ignore[union-attr]
    assert out["b"][1] == "ok"  # type: ignore[index]
    assert out["letta_otel.truncated"] is True
