"""Content capture on the real samples: semconv-schema-valid, redacted, within budgets.

Real Letta 0.16.8 payloads cover the OpenAI chat format and Letta's streaming object.
Anthropic, Google Gemini and OpenAI Responses payloads below are written from the
providers' public API documentation (no captured Letta data exists for them).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace as struct_replace
from opentelemetry.sdk.trace import ReadableSpan

from letta_otel.letta.models import Message, ProviderTrace, convert
from letta_otel.mapping import ids
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.capture import CaptureMode, ContentPolicy
from letta_otel.mapping.content import llm_content, request_content, response_messages
from letta_otel.mapping.limits import Limits
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.redact import Redactor, compile_patterns
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.mapping.spans import MappingContext, map_run, map_step
from tests.mapping.test_spans import CTX, map_scenario
from tests.samples import SCENARIOS, load_scenario
from tests.semconv_schemas import FILES, plain, validate

MODES = [CaptureMode.SPAN_ONLY, CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT]
CONTENT_KEYS = sorted(sc.CONTENT_ATTRIBUTES)


def ctx_with(mode: CaptureMode = CaptureMode.SPAN_ONLY, **limits: int) -> MappingContext:
    return replace(CTX, content=ContentPolicy(mode, limits=Limits(**limits)))


def spans_of(name: str, ctx: MappingContext) -> list[ReadableSpan]:
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    spans = [map_run(scenario.run_record, ctx, trace_id)]
    for record in scenario.steps:
        spans.extend(map_step(record, ctx, trace_id))
    return spans


def chat_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("chat")]


def details_event(span: ReadableSpan) -> dict[str, Any] | None:
    events = [e for e in span.events if e.name == sc.INFERENCE_DETAILS_EVENT]
    assert len(events) <= 1
    return dict(events[0].attributes or {}) if events else None


def all_strings(spans: list[ReadableSpan]) -> list[str]:
    """Every string that would leave the process: attributes, events, status, names."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                found.append(str(k))
                walk(v)
        elif isinstance(value, tuple | list):
            for v in value:
                walk(v)

    for span in spans:
        found.append(span.name)
        found.append(span.status.description or "")
        walk(dict(span.attributes or {}))
        for event in span.events:
            found.append(event.name)
            walk(dict(event.attributes or {}))
    return found


# --- default: nothing -----------------------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_default_captures_no_content(name: str) -> None:
    spans = map_scenario(name)
    text = "\n".join(all_strings(spans))
    for key in CONTENT_KEYS:
        assert key not in text
    assert sc.INFERENCE_DETAILS_EVENT not in text
    for record in load_scenario(name).steps:
        for message in (
            (record.trace.request_json or {}).get("messages", []) if record.trace else []
        ):
            content = message.get("content")
            if isinstance(content, str) and len(content) > 12:
                assert content[:40] not in text


# --- schema validity ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("name", SCENARIOS)
def test_captured_content_follows_the_schemas(name: str, mode: CaptureMode) -> None:
    scenario = load_scenario(name)
    spans = spans_of(name, ctx_with(mode))
    chats = chat_spans(spans)
    assert len(chats) == sum(1 for r in scenario.steps if r.trace is not None)
    for span, record in zip(chats, [r for r in scenario.steps if r.trace], strict=True):
        attrs = span.attributes or {}
        event = details_event(span)
        on_span = {k: json.loads(str(attrs[k])) for k in FILES if k in attrs}
        on_event = {k: plain(event[k]) for k in FILES if event and k in event}
        if mode is CaptureMode.EVENT_ONLY:
            assert not on_span
        if mode is CaptureMode.SPAN_ONLY:
            assert event is None
        for key, value in {**on_span, **on_event}.items():
            validate(key, value)
        if mode is CaptureMode.SPAN_AND_EVENT:
            assert on_span == on_event
        captured = on_span or on_event
        request = record.trace.request_json if record.trace else {}
        assert len(captured[sc.INPUT_MESSAGES]) == len((request or {})["messages"])
        assert [m["role"] for m in captured[sc.INPUT_MESSAGES]] == [
            m["role"] for m in (request or {})["messages"]
        ]
        assert {t["name"] for t in captured[sc.TOOL_DEFINITIONS]} == {
            t["function"]["name"] for t in (request or {})["tools"]
        }
        assert attrs["letta_otel.redactions"] == 0
        if event is not None:
            for key in (sc.OPERATION_NAME, sc.REQUEST_MODEL, sc.PROVIDER_NAME):
                assert event[key] == attrs[key]
            assert not any(k.startswith("letta") for k in event)
            assert span.events[-1].timestamp == span.end_time


def test_openai_chat_sample_details() -> None:
    record = load_scenario("tool_two_steps").steps[1]
    assert record.trace is not None
    content = llm_content(record.trace.request_json, record.trace.response_json)
    assert content.system_instructions is None  # OpenAI chat keeps system in the history
    inputs = content.input_messages or []
    assert inputs[0]["role"] == "system"
    assert inputs[0]["parts"][0]["content"].startswith("<base_instructions>")
    call = inputs[4]["parts"][0]
    assert call == {
        "type": "tool_call",
        "name": "conversation_search",
        "id": "call_ad4f92a213e54c22b18ef269",
        "arguments": {"query": "hello"},  # the JSON text became an object
    }
    result = inputs[5]
    assert result["role"] == "tool"
    assert result["parts"][0]["id"] == "call_ad4f92a213e54c22b18ef269"
    assert result["parts"][0]["response"]["status"] == "OK"
    assert content.output_messages == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "[fake-llm] ack #1: TOOL please look something up"}
            ],
            "finish_reason": "stop",
        }
    ]


def test_openai_tool_call_finish_reason() -> None:
    record = load_scenario("tool_two_steps").steps[0]
    assert record.trace is not None
    output = response_messages(record.trace.response_json)
    assert output is not None
    assert output[0]["finish_reason"] == "tool_call"
    assert output[0]["parts"][0]["arguments"] == {"query": "hello"}


def test_letta_stream_sample() -> None:
    first, second = load_scenario("stream_tool").steps
    assert first.trace is not None and second.trace is not None
    assert response_messages(first.trace.response_json) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "name": "conversation_search",
                    "id": "call_1271e4459940475e935afe5e",
                    "arguments": {"query": "hello"},
                }
            ],
            "finish_reason": "tool_call",
        }
    ]
    assert response_messages(second.trace.response_json) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "[fake-llm] ack #1: TOOL streamed turn"}],
            "finish_reason": "stop",
        }
    ]


def test_letta_stream_reasoning_blocks() -> None:
    response = {
        "type": "message",
        "role": "assistant",
        "content": {
            "tool_call": None,
            "reasoning": [
                json.dumps({"type": "reasoning", "reasoning": "think", "signature": None})
            ],
            "content": [
                json.dumps({"type": "redacted_reasoning", "data": "opaque"}),
                json.dumps({"type": "text", "text": "hi"}),
            ],
        },
    }
    output = response_messages(response)
    assert output == [
        {
            "role": "assistant",
            "parts": [{"type": "reasoning", "content": "think"}, {"type": "text", "content": "hi"}],
            "finish_reason": "stop",
        }
    ]
    validate(sc.OUTPUT_MESSAGES, output)


def test_failed_call_has_input_but_no_output() -> None:
    record = load_scenario("fail_http500").steps[0]
    span = chat_spans(spans_of("fail_http500", ctx_with()))[0]
    assert record.trace is not None
    assert sc.INPUT_MESSAGES in (span.attributes or {})
    assert sc.OUTPUT_MESSAGES not in (span.attributes or {})


# --- other providers (shapes from the providers' public docs) -------------------------

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "need the tool", "signature": "sig"},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rainy, 57F"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
    ],
    "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
}
ANTHROPIC_RESPONSE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "text", "text": "Rainy."},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 10, "output_tokens": 3},
}
GOOGLE_REQUEST = {
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 14}}}],
        },
    ],
    "systemInstruction": {"parts": [{"text": "You are terse."}]},
    "tools": [
        {"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}
    ],
}
GOOGLE_RESPONSE = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Rainy, 14C."}]},
            "finishReason": "MAX_TOKENS",
        }
    ],
    "usageMetadata": {"promptTokenCount": 10},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}
RESPONSES_REQUEST = {
    "model": "gpt-5",
    "instructions": "You are terse.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "c1", "output": "rainy"},
    ],
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
}
RESPONSES_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "easy"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Rainy."}],
        },
    ],
}


def _check_all(request: Any, response: Any) -> Any:
    content = llm_content(request, response)
    for key, value in (
        (sc.SYSTEM_INSTRUCTIONS, content.system_instructions),
        (sc.INPUT_MESSAGES, content.input_messages),
        (sc.OUTPUT_MESSAGES, content.output_messages),
        (sc.TOOL_DEFINITIONS, content.tool_definitions),
    ):
        assert value is not None, key
        validate(key, value)
    return content


def test_anthropic_messages() -> None:
    content = _check_all(ANTHROPIC_REQUEST, ANTHROPIC_RESPONSE)
    assert content.system_instructions == [{"type": "text", "content": "You are terse."}]
    assistant, result = content.input_messages[1], content.input_messages[2]
    assert assistant["parts"] == [
        {"type": "reasoning", "content": "need the tool"},
        {
            "type": "tool_call",
            "name": "get_weather",
            "id": "toolu_1",
            "arguments": {"city": "Paris"},
        },
    ]
    assert result["parts"][0] == {
        "type": "tool_call_response",
        "response": "rainy, 57F",
        "id": "toolu_1",
    }
    assert result["parts"][1] == {
        "type": "blob",
        "modality": "image",
        "content": "iVBORw0KGgo=",
        "mime_type": "image/png",
    }
    assert content.output_messages[0]["finish_reason"] == "tool_call"
    assert [p["type"] for p in content.output_messages[0]["parts"]] == ["text", "tool_call"]
    assert content.tool_definitions == [{"type": "function", "name": "get_weather"}]


def test_google_generate_content() -> None:
    content = _check_all(GOOGLE_REQUEST, GOOGLE_RESPONSE)
    assert content.system_instructions == [{"type": "text", "content": "You are terse."}]
    assert [m["role"] for m in content.input_messages] == ["user", "assistant", "user"]
    assert content.input_messages[1]["parts"][0]["arguments"] == {"city": "Paris"}
    assert content.input_messages[2]["parts"][0]["response"] == {"t": 14}
    assert content.output_messages == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Rainy, 14C."}],
            "finish_reason": "length",
        }
    ]
    # The google-genai SDK's dumps use snake_case names for the same fields.
    snake = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "config": {
            "system_instruction": {"parts": [{"text": "sys"}]},
            "tools": [{"function_declarations": [{"name": "f"}]}],
        },
    }
    system, inputs, tools = request_content(snake)
    assert system == [{"type": "text", "content": "sys"}]
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert tools == [{"type": "function", "name": "f"}]


def test_openai_responses_api() -> None:
    content = _check_all(RESPONSES_REQUEST, RESPONSES_RESPONSE)
    assert content.system_instructions == [{"type": "text", "content": "You are terse."}]
    assert [m["role"] for m in content.input_messages] == ["user", "assistant", "tool"]
    assert content.output_messages[0]["parts"] == [
        {"type": "reasoning", "content": "easy"},
        {"type": "text", "content": "Rainy."},
    ]


@pytest.mark.parametrize(
    "payload", [None, {}, [], "x", {"messages": "nope"}, {"contents": [1, None]}, {"input": 5}]
)
def test_unknown_shapes_give_nothing_and_never_raise(payload: Any) -> None:
    content = llm_content(payload, payload)
    for value in (content.input_messages, content.output_messages):
        if value is not None:
            validate(sc.INPUT_MESSAGES, value)


# --- tool spans -----------------------------------------------------------------------


def tool_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("execute_tool")]


def test_tool_spans_carry_arguments_and_result() -> None:
    spans = spans_of("tool_two_steps", ctx_with(CaptureMode.SPAN_ONLY))
    (tool,) = tool_spans(spans)
    attrs = tool.attributes or {}
    assert json.loads(str(attrs[sc.TOOL_CALL_ARGUMENTS])) == {"query": "hello"}
    # Letta returns a Python repr, not JSON: it stays the text it is.
    assert str(attrs[sc.TOOL_CALL_RESULT]).startswith("{'message': 'Showing 2 results:'")
    assert attrs["letta_otel.redactions"] == 0


def test_send_message_arguments_come_from_the_response() -> None:
    spans = spans_of("memgpt_plain", ctx_with(CaptureMode.SPAN_ONLY))
    (tool,) = tool_spans(spans)
    arguments = json.loads(str((tool.attributes or {})[sc.TOOL_CALL_ARGUMENTS]))
    assert arguments["message"] == "[fake-llm] ack #0: hello memgpt-style agent"


def test_event_only_leaves_tool_spans_without_content() -> None:
    for span in tool_spans(spans_of("tool_two_steps", ctx_with(CaptureMode.EVENT_ONLY))):
        assert not set(span.attributes or {}) & sc.CONTENT_ATTRIBUTES


def test_failed_tool_has_arguments_but_no_result() -> None:
    record = load_scenario("tool_two_steps").steps[0]
    messages = tuple(
        struct_replace(m, status="error", tool_returns=None)
        if m.message_type == "tool_return_message"
        else m
        for m in record.messages
    )
    spans = map_step(replace(record, messages=messages), ctx_with(), 1)
    (tool,) = tool_spans(spans)
    assert sc.TOOL_CALL_ARGUMENTS in (tool.attributes or {})
    assert sc.TOOL_CALL_RESULT not in (tool.attributes or {})


# --- redaction ----------------------------------------------------------------------

SECRETS = {
    "openai key": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234",
    "anthropic key": "sk-ant-api03-ZyXwVuTsRqPoNmLkJiHg-0987",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a1B2" * 9,
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "assignment": "api_key=s3cr3tValue99",
    "custom": "ACCT-99887766",
}
# Values that look a bit like secrets and must survive.
KEEP = ["4111 1111 1111 1112", "1795301739000000000", "d74da3da-b028-44c4-8ac7-66b9ccabfbe7"]


def planted_record() -> StepRecord:
    """The tool_two_steps step with secrets in a prompt, the output, tool args and result."""
    record = load_scenario("tool_two_steps").steps[0]
    assert record.trace is not None
    leak = " ".join(SECRETS.values()) + " keep: " + " ".join(KEEP)
    request = json.loads(json.dumps(record.trace.request_json))
    request["messages"][1]["content"] = f"my details: {leak}"
    response = json.loads(json.dumps(record.trace.response_json))
    call = response["choices"][0]["message"]["tool_calls"][0]["function"]
    call["arguments"] = json.dumps({"query": leak, "password": "hunter2"})
    trace = convert(
        ProviderTrace,
        {**msgspec.to_builtins(record.trace), "request_json": request, "response_json": response},
    )
    messages = []
    for message in record.messages:
        data = msgspec.to_builtins(message)
        if message.message_type == "tool_call_message":
            for c in [data["tool_call"], *data["tool_calls"]]:
                c["arguments"] = json.dumps({"query": leak})
        if message.message_type == "tool_return_message":
            data["tool_returns"][0]["tool_return"] = f"found {leak}"
        messages.append(convert(Message, data))
    return replace(record, trace=trace, messages=tuple(messages))


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_planted_secrets_are_redacted_everywhere(mode: CaptureMode) -> None:
    policy = ContentPolicy(mode, Redactor(compile_patterns([r"ACCT-\d{8}"])))
    spans = map_step(planted_record(), replace(CTX, content=policy), 1)
    text = "\n".join(all_strings(spans))
    for name, secret in SECRETS.items():
        assert secret not in text, name
    assert "hunter2" not in text
    for value in KEEP:
        assert value in text
    for kind in ("api_key", "bearer", "email", "card", "secret"):
        assert f"[REDACTED:{kind}]" in text
    assert "[REDACTED]" in text  # the user pattern
    chat = chat_spans(spans)[0]
    # input: 9 secrets; output: 9 in the query + the password key
    assert (chat.attributes or {})["letta_otel.redactions"] == 19
    if policy.on_spans:
        (tool,) = tool_spans(spans)
        # arguments: 9; result: 9
        assert (tool.attributes or {})["letta_otel.redactions"] == 18


def test_error_texts_are_redacted_even_without_capture() -> None:
    record = load_scenario("fail_http500").steps[0]
    assert record.step.error_data is not None
    error = struct_replace(
        record.step.error_data,
        message="Incorrect API key provided: sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234",
    )
    step = struct_replace(record.step, error_data=error)
    spans = map_step(replace(record, step=step), CTX, 1)
    text = "\n".join(all_strings(spans))
    assert "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234" not in text
    assert "Incorrect API key provided: [REDACTED:api_key]" in text
    assert (spans[0].attributes or {})["letta_otel.redactions"] >= 1


def test_invalid_user_pattern_names_its_index_not_its_text() -> None:
    with pytest.raises(ValueError, match=r"pattern #2: is not a valid regular expression") as err:
        compile_patterns(["ok", "sk-secret-(unclosed"])
    assert "sk-secret" not in str(err.value)


# --- budgets ------------------------------------------------------------------------


def _string_values(span: ReadableSpan) -> list[tuple[str, str]]:
    found = [(k, v) for k, v in (span.attributes or {}).items() if isinstance(v, str)]
    for event in span.events:
        for k, v in (event.attributes or {}).items():
            if isinstance(v, str):
                found.append((f"{event.name}.{k}", v))
            elif isinstance(v, tuple | list | dict):
                found.append(
                    (
                        f"{event.name}.{k}",
                        json.dumps(plain(v), ensure_ascii=False, separators=(",", ":")),
                    )
                )
    return found


IDS = {"letta.step.id", "letta.run.id", "letta.agent.id", "gen_ai.tool.call.id"}


@pytest.mark.parametrize("limit", [256, 2048, 65536])
@pytest.mark.parametrize("mode", MODES, ids=str)
def test_attribute_byte_limit_holds_and_json_stays_valid(mode: CaptureMode, limit: int) -> None:
    for name in SCENARIOS:
        for span in spans_of(name, ctx_with(mode, max_attribute_bytes=limit)):
            for key, value in _string_values(span):
                if key not in IDS:
                    assert len(value.encode()) <= limit, (name, span.name, key)
            attrs = span.attributes or {}
            event = details_event(span) or {}
            for key in FILES:
                if key in attrs:
                    validate(key, json.loads(str(attrs[key])))
                if key in event:
                    validate(key, plain(event[key]))


def test_truncation_is_marked_and_keeps_the_newest_messages() -> None:
    span = chat_spans(spans_of("memgpt_tool", ctx_with(max_attribute_bytes=1024)))[1]
    trace = load_scenario("memgpt_tool").steps[1].trace
    assert trace is not None
    sent = (trace.request_json or {})["messages"]
    attrs = span.attributes or {}
    assert attrs["letta_otel.truncated"] is True
    assert "max_attribute_bytes" in attrs["letta_otel.limits_hit"]  # type: ignore[operator]
    messages = json.loads(str(attrs[sc.INPUT_MESSAGES]))
    assert messages[0]["role"] == "letta_otel"
    assert "earlier messages truncated" in messages[0]["parts"][0]["content"]
    assert 1 < len(messages) < len(sent)
    # the newest messages are kept, in order
    assert [m["role"] for m in messages[1:]] == [m["role"] for m in sent[-(len(messages) - 1) :]]
    assert len(str(attrs[sc.INPUT_MESSAGES]).encode()) <= 1024


def test_huge_error_message_is_cut_like_any_string() -> None:
    record = load_scenario("fail_http500").steps[0]
    assert record.step.error_data is not None
    error = struct_replace(record.step.error_data, message="boom " * 2000)
    step = struct_replace(record.step, error_data=error)
    spans = map_step(replace(record, step=step), ctx_with(max_attribute_bytes=512), 1)
    event = spans[0].events[0]
    message = str((event.attributes or {})["exception.message"])
    assert len(message.encode()) <= 512
    assert message.endswith("bytes truncated]…")
    stack = str((event.attributes or {})["exception.stacktrace"])
    assert len(stack.encode()) <= 512 and stack.startswith("…[")  # the tail is kept


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_span_byte_budget_holds(mode: CaptureMode) -> None:
    budget = 8 * 1024
    for name in SCENARIOS:
        for span in spans_of(
            name, ctx_with(mode, max_attribute_bytes=16384, max_span_bytes=budget)
        ):
            assert estimate_span_bytes(span) <= budget, (name, span.name)
            attrs = span.attributes or {}
            if "max_span_bytes" in attrs.get("letta_otel.limits_hit", ()):  # type: ignore[operator]
                assert attrs.get("letta_otel.truncated") or attrs.get(
                    "letta_otel.dropped_attributes"
                )
            assert attrs[
                "letta.run.id" if span.name.startswith("invoke_agent") else "letta.step.id"
            ]


def test_span_budget_shrinks_content_before_dropping_it() -> None:
    ctx = ctx_with(CaptureMode.SPAN_AND_EVENT, max_attribute_bytes=16384, max_span_bytes=12 * 1024)
    span = chat_spans(spans_of("memgpt_tool", ctx))[1]
    attrs = span.attributes or {}
    assert estimate_span_bytes(span) <= 12 * 1024
    assert "max_span_bytes" in attrs["letta_otel.limits_hit"]  # type: ignore[operator]
    assert attrs["letta_otel.truncated"] is True
    event = details_event(span) or {}
    for key in (sc.INPUT_MESSAGES, sc.OUTPUT_MESSAGES):
        validate(key, json.loads(str(attrs[key])))
        validate(key, plain(event[key]))


@pytest.mark.parametrize("limit", [8, 16, 24, 40])
def test_attribute_count_limit_never_evicts_core(limit: int) -> None:
    for name in SCENARIOS:
        without = {s.context.span_id: s for s in map_scenario(name) if s.context}
        for span in spans_of(name, ctx_with(CaptureMode.SPAN_AND_EVENT, max_attributes=limit)):
            assert span.context is not None
            attrs = span.attributes or {}
            before = without[span.context.span_id].attributes or {}
            core = {k for k in before if k.startswith(("gen_ai.", "letta.")) or k == "error.type"}
            for key in core:
                assert attrs[key] == before[key], (name, span.name, key)
            markers = [k for k in attrs if k.startswith("letta_otel.")]
            assert len(attrs) <= max(limit, len(core) + len(markers))
            lost = (set(before) - core) - set(attrs)
            content = set(attrs) & sc.CONTENT_ATTRIBUTES
            if lost:  # other attributes go only after all content went
                assert not content
            evicted = set(attrs.get("letta_otel.dropped_attributes", ()))  # type: ignore[arg-type]
            if lost or evicted:
                assert "max_attributes" in attrs["letta_otel.limits_hit"]  # type: ignore[operator]
                assert lost <= evicted
            event = details_event(span)
            if event is not None:
                kept = [k for k in event if k not in sc.CONTENT_ATTRIBUTES]
                assert len(event) <= max(limit, len(kept))
