"""``letta_otel.demo.render`` on spans decoded from OTLP, and the receiver's decoding.

The spans are the real mapping of five captured Letta runs, encoded by the SDK's OTLP
encoder and decoded by the demo's receiver, so the golden file pins what a user sees.
Regenerate with ``UPDATE_GOLDEN=1 pytest tests/demo`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from letta_otel.demo.received import Event, Metric, Point, Span
from letta_otel.demo.receiver import decode_spans
from letta_otel.demo.render import (
    format_duration,
    format_value,
    render_metrics,
    render_trace,
    render_traces,
)
from letta_otel.mapping import ids
from letta_otel.mapping.spans import MappingContext, map_run, map_step
from tests.samples import load_scenario

GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = ("plain", "tool_two_steps", "fail_http500", "stream_fail", "memgpt_tool")
CTX = MappingContext(
    resource=Resource({"service.name": "letta"}),
    scope=InstrumentationScope("letta-otel", "test"),
    letta_server=("127.0.0.1", 8283),
)


def mapped(name: str) -> list[ReadableSpan]:
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    spans = [map_run(scenario.run_record, CTX, trace_id)]
    for record in scenario.steps:
        spans.extend(map_step(record, CTX, trace_id))
    return spans


def decoded(*names: str) -> list[Span]:
    return decode_spans(encode_spans([s for n in names for s in mapped(n)]))


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8")


def test_trace_trees_golden() -> None:
    labels = {
        ids.format_trace_id(ids.trace_id_from_letta_id(load_scenario(n).run.id)): n
        for n in SCENARIOS
    }
    # Received in any order (batches interleave): the trees do not depend on it.
    spans = decoded(*SCENARIOS)
    text = render_traces(list(reversed(spans)), labels)
    check_golden("traces.txt", text)
    assert render_traces(spans, labels) == text


def test_decoding_keeps_what_the_tree_shows() -> None:
    sdk = {s.context.span_id: s for s in mapped("fail_http500") if s.context}
    for span in decoded("fail_http500"):
        original = sdk[int(span.span_id, 16)]
        assert span.trace_id == ids.format_trace_id(original.context.trace_id)  # type: ignore[union-attr]
        parent = original.parent
        assert span.parent_span_id == (ids.format_span_id(parent.span_id) if parent else None)
        assert (span.name, span.kind) == (original.name, original.kind.name)
        assert (span.start_ns, span.end_ns) == (original.start_time, original.end_time)
        assert span.status_code == original.status.status_code.name
        assert span.status_message == (original.status.description or "")
        assert dict(span.attributes) == {
            k: tuple(v) if isinstance(v, list | tuple) else v
            for k, v in (original.attributes or {}).items()
        }
        assert [e.name for e in span.events] == [e.name for e in original.events]


def test_failed_step_shows_status_and_error_type() -> None:
    text = render_traces(decoded("fail_http500"))
    step_line, error_line = next(
        (line, nxt)
        for line, nxt in zip(text.splitlines(), text.splitlines()[1:], strict=False)
        if "agent_step" in line
    )
    assert "letta.step.status=failed" in step_line
    assert "status=ERROR error.type=LLMServerError" in error_line
    assert "Error code: 500" in error_line


def span(
    span_id: str, parent: str | None, name: str, start: int, end: int, **attrs: object
) -> Span:
    return Span("ab" * 16, span_id, parent, name, "INTERNAL", start, end, attrs)


def test_orphans_are_roots_and_siblings_sort_by_start() -> None:
    spans = [
        span("02", "01", "agent_step", 20, 30),
        span("03", "01", "agent_step", 10, 15),
        span("01", None, "invoke_agent a", 0, 40),
        span("09", "77", "chat lost-parent", 5, 6),  # its parent never arrived
    ]
    lines = render_trace(spans)
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "invoke_agent a",
        "├─ agent_step",
        "└─ agent_step",
        "chat lost-parent",
    ]


def test_formatting() -> None:
    assert format_duration(400_000) == "0.4 ms"
    assert format_duration(386_485_000) == "386 ms"
    assert format_duration(12_345_000_000) == "12.3 s"
    assert format_duration(-5) == "0.0 ms"  # clamped like the mapping clamps end < start
    assert format_value(("stop", "tool_calls")) == "[stop,tool_calls]"
    assert format_value(True) == "true"
    assert format_value("call_ad4f92a213e54c22b18ef2d1") == "call_ad4f92a213e54c…"


def point(value: float, t: int, **attrs: object) -> Point:
    return Point(attrs, t, value=value)


def hist(count: int, total: float, t: int, **attrs: object) -> Point:
    return Point(attrs, t, count=count, sum=total)


def test_metrics_golden() -> None:
    first_push = [
        Metric("letta.steps", "{step}", "sum", (point(1, 1, **{"letta.step.status": "success"}),)),
    ]
    last_push = [
        Metric(
            "letta.steps",
            "{step}",
            "sum",
            (
                point(4, 2, **{"letta.step.status": "success", "letta.step.stop_reason": "x"}),
                point(1, 2, **{"letta.step.status": "success"}),
                point(2, 2, **{"letta.step.status": "failed", "error.type": "LLMServerError"}),
            ),
        ),
        Metric(
            "gen_ai.client.token.usage",
            "{token}",
            "histogram",
            (
                hist(5, 14219, 2, **{"gen_ai.token.type": "input", "server.port": 8399}),
                hist(1, 0, 2, **{"gen_ai.token.type": "input"}),
                hist(5, 216, 2, **{"gen_ai.token.type": "output"}),
            ),
        ),
        Metric(
            "gen_ai.client.operation.duration",
            "s",
            "histogram",
            (hist(6, 1.99, 2, **{"gen_ai.operation.name": "chat"}),),
        ),
        Metric("letta_otel.spans.exported", "{span}", "sum", (point(21, 2),)),
        Metric(
            "letta_otel.export.attempts",
            "{request}",
            "sum",
            (point(1, 2, **{"letta_otel.signal": "traces"}),),
        ),
        Metric("letta_otel.ready", "1", "gauge", (point(1, 2),)),
        Metric("letta_otel.poll.last_success_timestamp", "s", "gauge", (point(1.7e9, 2),)),
    ]
    text = render_metrics([*first_push, *last_push])
    check_golden("metrics.txt", text)
    # Pushes are cumulative: the newest point of a series is its total, never a sum of pushes.
    assert re.search(r"^letta\.steps\{letta\.step\.status=success\} +5$", text, re.M)


def test_error_line_without_message_or_type() -> None:
    bare = Span("cd" * 16, "01", None, "agent_step", "INTERNAL", 0, 1, {}, "ERROR", "", ())
    assert render_trace([bare])[-1].strip() == "status=ERROR"


def test_events_are_decoded() -> None:
    spans = decoded("fail_http500")
    assert Event in {type(e) for s in spans for e in s.events}
    exceptions = [e for s in spans for e in s.events if e.name == "exception"]
    assert exceptions and all("exception.type" in e.attributes for e in exceptions)


@pytest.mark.parametrize("empty", [[], ()])
def test_no_metrics(empty: list[Metric]) -> None:
    assert render_metrics(empty) == "(no metrics)"
