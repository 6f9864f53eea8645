"""Mapping on the real Letta 0.16.8 samples: golden files plus explicit checks.

Golden files (tests/golden/<scenario>.json) pin the whole output; regenerate with
``UPDATE_GOLDEN=1 pytest tests/mapping`` and review the diff. The explicit tests
below check values against the source data, so a wrong golden cannot hide a bug.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

from letta_otel.mapping import ids
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.spans import MAX_STACKTRACE_BYTES, MappingContext, map_run, map_step
from letta_otel.mapping.timing import to_ns
from tests.samples import SCENARIOS, load_scenario

GOLDEN = Path(__file__).parent.parent / "golden"
CTX = MappingContext(
    resource=Resource({"service.name": "letta"}),
    scope=InstrumentationScope("letta-otel", "test"),
    letta_server=("127.0.0.1", 8283),
)


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": ids.format_trace_id(span.context.trace_id),
        "span_id": ids.format_span_id(span.context.span_id),
        "parent_span_id": ids.format_span_id(span.parent.span_id) if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": [span.status.status_code.name, span.status.description],
        "attributes": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in sorted((span.attributes or {}).items())
        },
        "events": [
            {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
    }


def map_scenario(name: str) -> list[ReadableSpan]:
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    spans = [map_run(scenario.run_record, CTX, trace_id)]
    for record in scenario.steps:
        spans.extend(map_step(record, CTX, trace_id))
    return spans


@pytest.mark.parametrize("name", SCENARIOS)
def test_golden(name: str) -> None:
    produced = [span_dict(s) for s in map_scenario(name)]
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(produced, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    assert json.loads(json.dumps(produced)) == expected


@pytest.mark.parametrize("name", SCENARIOS)
def test_tree_shape_and_ids(name: str) -> None:
    scenario = load_scenario(name)
    spans = map_scenario(name)
    run_span, rest = spans[0], spans[1:]
    assert run_span.context is not None
    # One trace per run, computable from the run's UUID.
    expected_trace = int(scenario.run.id.removeprefix("run-").replace("-", ""), 16)
    assert {s.context.trace_id for s in spans if s.context} == {expected_trace}
    assert run_span.parent is None
    assert run_span.kind is SpanKind.CLIENT
    assert run_span.name == f"invoke_agent {scenario.agent.name if scenario.agent else ''}".strip()
    step_spans = [s for s in rest if s.name == "agent_step"]
    assert [s.attributes["letta.step.id"] for s in step_spans] == [  # type: ignore[index]
        r.step.id for r in scenario.steps
    ]
    step_ids = {s.context.span_id for s in step_spans if s.context}
    for span in step_spans:
        assert span.parent is not None and span.parent.span_id == run_span.context.span_id
    for span in rest:
        if span.name != "agent_step":
            assert span.parent is not None and span.parent.span_id in step_ids
    # Every span id unique, and stable across a second mapping.
    assert len({s.context.span_id for s in spans if s.context}) == len(spans)
    assert [span_dict(s) for s in map_scenario(name)] == [span_dict(s) for s in spans]


@pytest.mark.parametrize("name", SCENARIOS)
def test_llm_span_attributes_match_source(name: str) -> None:
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    for record in scenario.steps:
        spans = map_step(record, CTX, trace_id)
        chats = [s for s in spans if s.name.startswith("chat")]
        if record.trace is None:
            # Failed streamed step: no provider trace and no LLM timing → no chat span.
            assert chats == []
            assert spans[0].attributes["letta.provider_trace.missing"] is True  # type: ignore[index]
            continue
        (chat,) = chats
        attrs = chat.attributes or {}
        step, trace = record.step, record.trace
        assert chat.kind is SpanKind.CLIENT
        assert chat.name == f"chat {trace.request_json['model']}"  # type: ignore[index]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == step.model
        assert attrs["gen_ai.usage.input_tokens"] == step.prompt_tokens
        assert attrs["gen_ai.usage.output_tokens"] == step.completion_tokens
        assert attrs["letta.call_type"] == trace.call_type
        assert attrs["letta.model_handle"] == step.model_handle
        assert attrs["letta.provider_trace.id"] == trace.id
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == 8399
        assert attrs["gen_ai.request.temperature"] == 1.0
        assert attrs["gen_ai.request.max_tokens"] == 16384
        response = trace.response_json or {}
        if "choices" in response:
            assert attrs["gen_ai.response.id"] == response["id"]
            assert attrs["gen_ai.response.finish_reasons"] == tuple(
                c["finish_reason"] for c in response["choices"]
            )
        # LLM timing: ends when the trace row was written, lasts llm_request_ns.
        assert chat.end_time == to_ns(trace.created_at)  # type: ignore[arg-type]
        if record.metrics and record.metrics.llm_request_ns:
            assert chat.end_time - chat.start_time == record.metrics.llm_request_ns  # type: ignore[operator]


@pytest.mark.parametrize("name", ["fail_http500", "fail_malformed", "stream_fail"])
def test_failed_step_and_run_are_errors(name: str) -> None:
    scenario = load_scenario(name)
    spans = map_scenario(name)
    run_span = spans[0]
    step_span = next(s for s in spans if s.name == "agent_step")
    record = scenario.steps[0]
    assert record.step.error_data is not None
    assert step_span.status.status_code is StatusCode.ERROR
    assert step_span.attributes["error.type"] == record.step.error_type == "LLMServerError"  # type: ignore[index]
    assert step_span.attributes["letta.step.status"] == "failed"  # type: ignore[index]
    assert step_span.attributes["letta.step.stop_reason"] == "llm_api_error"  # type: ignore[index]
    (event,) = step_span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "LLMServerError"  # type: ignore[index]
    assert event.attributes["exception.message"] == record.step.error_data.message  # type: ignore[index]
    stack = str(event.attributes["exception.stacktrace"])  # type: ignore[index]
    assert len(stack.encode()) <= MAX_STACKTRACE_BYTES + 64
    assert stack.rstrip().endswith(record.step.error_data.traceback.rstrip()[-200:])  # type: ignore[union-attr]
    assert run_span.status.status_code is StatusCode.ERROR
    assert run_span.attributes["letta.run.status"] == "failed"  # type: ignore[index]
    assert "error.type" in (run_span.attributes or {})
    chats = [s for s in spans if s.name.startswith("chat")]
    for chat in chats:  # the provider call itself failed
        assert chat.status.status_code is StatusCode.ERROR
        error_type = record.trace.response_json["error_type"]  # type: ignore[union-attr, index]
        assert chat.attributes["error.type"] == error_type  # type: ignore[index]


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("with_trace", [True, False], ids=["traced", "no-trace"])
def test_every_step_span_names_its_model_and_provider(name: str, with_trace: bool) -> None:
    """Issue 23: dashboards and alerts grouped by model or provider must see every step,
    above all the failed ones without a provider trace: the step span carries
    gen_ai.request.model, gen_ai.provider.name (the convention's value) and
    letta.model_handle from Letta's step record, trace or not."""
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    for captured in scenario.steps:
        record = (
            captured
            if with_trace
            else StepRecord(**{**captured.__dict__, "trace": None, "memo": {}})
        )
        step_span = map_step(record, CTX, trace_id)[0]
        attrs = step_span.attributes or {}
        step = record.step
        assert step.model and step.provider_name and step.model_handle
        assert attrs["gen_ai.request.model"] == step.model
        assert attrs["gen_ai.provider.name"] == "openai"  # provider_name "openai"
        assert attrs["letta.model_handle"] == step.model_handle


def test_step_provider_uses_the_conventions_value() -> None:
    record = load_scenario("stream_fail").steps[0]
    for letta, convention in [
        ("google_vertex", "gcp.vertex_ai"),
        ("xai", "x_ai"),
        ("acme", "acme"),
    ]:
        step = replace(record.step, provider_name=letta)
        mapped = map_step(StepRecord(**{**record.__dict__, "step": step, "memo": {}}), CTX, 1)
        assert (mapped[0].attributes or {})["gen_ai.provider.name"] == convention
    bare = replace(record.step, provider_name=None, model=None, model_handle=None)
    mapped = map_step(StepRecord(**{**record.__dict__, "step": bare, "memo": {}}), CTX, 1)
    attrs = mapped[0].attributes or {}
    assert not {"gen_ai.provider.name", "gen_ai.request.model", "letta.model_handle"} & set(attrs)


def test_tool_spans_from_messages_and_response() -> None:
    scenario = load_scenario("tool_two_steps")
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    first = map_step(scenario.steps[0], CTX, trace_id)
    (tool,) = [s for s in first if s.name.startswith("execute_tool")]
    assert tool.name == "execute_tool conversation_search"
    assert tool.kind is SpanKind.INTERNAL
    attrs = tool.attributes or {}
    assert attrs["gen_ai.tool.call.id"] == "call_ad4f92a213e54c22b18ef269"
    assert attrs["gen_ai.tool.name"] == "conversation_search"
    assert attrs["letta.tool.status"] == "success"
    metrics = scenario.steps[0].metrics
    assert metrics is not None
    llm = next(s for s in first if s.name.startswith("chat"))
    assert tool.start_time == llm.end_time
    assert tool.end_time - tool.start_time == metrics.tool_execution_ns  # type: ignore[operator]
    # memgpt's send_message is rewritten by Letta into an assistant_message; the
    # provider response still names the call, so it gets its tool span.
    memgpt = load_scenario("memgpt_plain")
    spans = map_step(memgpt.steps[0], CTX, ids.trace_id_from_letta_id(memgpt.run.id))
    assert [s.name for s in spans if s.name.startswith("execute_tool")] == [
        "execute_tool send_message"
    ]


def test_step_window_contains_children_and_sits_in_run() -> None:
    for name in SCENARIOS:
        spans = map_scenario(name)
        run_span = spans[0]
        steps = {s.context.span_id: s for s in spans if s.name == "agent_step" and s.context}
        for span in spans:
            assert span.end_time >= span.start_time  # type: ignore[operator]
            if span.parent and span.parent.span_id in steps:
                parent = steps[span.parent.span_id]
                assert parent.start_time <= span.start_time  # type: ignore[operator]
                assert span.end_time <= parent.end_time  # type: ignore[operator]
        for step in steps.values():
            # Real data: steps start after the run was created, end before it completed.
            assert run_span.start_time <= step.start_time  # type: ignore[operator]
            assert step.end_time <= run_span.end_time  # type: ignore[operator]


def test_timing_fallbacks_and_clamping() -> None:
    scenario = load_scenario("stream_fail")
    record = scenario.steps[0]
    (step_span,) = map_step(record, CTX, 1)
    assert step_span.attributes["letta.timing.source"] == "run"  # type: ignore[index]
    assert step_span.start_time == to_ns(scenario.run.created_at)  # type: ignore[arg-type]
    assert step_span.end_time - step_span.start_time == record.metrics.step_ns  # type: ignore[operator, union-attr]
    # No time at all: the moment the bridge saw it.
    bare = StepRecord(step=record.step, observed_ns=1_700_000_000_000_000_000)
    (span,) = map_step(bare, CTX, 1)
    assert span.start_time == span.end_time == 1_700_000_000_000_000_000
    assert span.attributes["letta.timing.source"] == "observed"  # type: ignore[index]
    # A negative duration is clamped to zero length.
    weird = StepRecord(
        step=record.step,
        metrics=replace(record.metrics, step_start_ns=10**18, step_ns=-5),  # type: ignore[type-var]
    )
    (span,) = map_step(weird, CTX, 1)
    assert span.start_time == span.end_time == 10**18


def test_adopted_trace_id_is_letta_trace_id() -> None:
    scenario = load_scenario("plain")
    letta_trace = ids.parse_letta_trace_id(scenario.steps[0].step.trace_id)
    assert letta_trace is not None
    spans = map_step(scenario.steps[0], CTX, letta_trace)
    assert all(s.context and s.context.trace_id == letta_trace for s in spans)
    assert spans[0].attributes["letta.trace_id"] == scenario.steps[0].step.trace_id  # type: ignore[index]
