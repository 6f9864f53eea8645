"""Content capture end to end: fake Letta → `letta-otel run --once` → OTLP receiver.

What a backend receives is checked, not what the mapper returned: with the default no
prompt text leaves the process; with capture on the content parses and follows the
semconv schemas, planted secrets are gone, and the byte budgets hold on the wire.
Both discovery paths run (the ``letta`` fixture is parametrized).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from letta_otel.mapping import ids
from tests.e2e.conftest import RunOnce
from tests.fakes.letta_api import DEFAULT_FIXTURES_DIR, FakeLettaData
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.semconv_schemas import FILES, plain, validate

CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
)
DETAILS = "gen_ai.client.inference.operation.details"
SECRETS = [
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234",
    "jane.doe@example.com",
    "4111 1111 1111 1111",
    "Bearer abcdefghijklmnopqrstuvwxyz012345",
    "ACCT-99887766",
]
PLANT = "contact " + " ; ".join(SECRETS)
BIG = "lorem ipsum dolor sit amet " * 1500  # ~40 KB


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _texts(v)


def wire_text(spans: list[ReceivedSpan]) -> str:
    """Everything a backend got, as one string to search."""
    parts: list[str] = []
    for span in spans:
        parts += [span.name, span.status_message, *_texts(span.attributes)]
        for event in span.events:
            parts += [event.name, *_texts(event.attributes)]
    return "\n".join(parts)


def sample_prompt_texts() -> list[str]:
    """Distinctive prompt and completion texts from the real samples."""
    found: set[str] = set()
    for path in (DEFAULT_FIXTURES_DIR / "scenarios").glob("*/step*_trace.json"):
        trace = json.loads(path.read_text())
        if not trace:
            continue
        for message in trace["request_json"]["messages"]:
            if isinstance(message.get("content"), str) and len(message["content"]) > 15:
                found.add(message["content"][:60])
        for choice in trace["response_json"].get("choices", []):
            content = choice["message"].get("content")
            if content:
                found.add(content[:60])
    return sorted(found)


def test_default_sends_no_content_at_all(run_once: RunOnce, receiver: OtlpReceiver) -> None:
    assert run_once() == 0
    assert len(receiver.spans) == 43
    text = wire_text(receiver.spans)
    prompts = sample_prompt_texts()
    assert len(prompts) > 10
    for prompt in prompts:
        assert prompt not in text
    for key in CONTENT_KEYS:
        assert key not in text
    assert DETAILS not in text
    assert '"query"' not in text  # tool arguments


# --- capture on, with secrets planted in prompts, tool arguments and results ------------


def _planted_fixtures(root: Path, text: str, scenarios: tuple[str, ...] | None = None) -> Path:
    """A copy of the samples with ``text`` in every user prompt, tool call and tool result."""
    target = root / "letta-samples"
    shutil.copytree(DEFAULT_FIXTURES_DIR, target)
    for path in (target / "scenarios").glob("*/step*_trace.json"):
        if scenarios and path.parent.name not in scenarios:
            continue
        trace = json.loads(path.read_text())
        if not trace:
            continue
        for message in trace["request_json"]["messages"]:
            if message["role"] == "user":
                message["content"] += f" {text}"
        path.write_text(json.dumps(trace))
    for path in (target / "scenarios").glob("*/step*_messages.json"):
        if scenarios and path.parent.name not in scenarios:
            continue
        messages = json.loads(path.read_text())
        for message in messages:
            for call in [message.get("tool_call"), *(message.get("tool_calls") or [])]:
                if call:
                    call["arguments"] = json.dumps({"query": text})
            for ret in message.get("tool_returns") or []:
                ret["tool_return"] = f"found: {text}"
        path.write_text(json.dumps(messages))
    return target


@pytest.fixture
def sample_data(tmp_path: Path, request: pytest.FixtureRequest) -> FakeLettaData:
    text = getattr(request, "param", PLANT)
    return FakeLettaData.from_samples(_planted_fixtures(tmp_path, text))


def _chats(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name.startswith("chat ")]


def _tools(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name.startswith("execute_tool")]


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_span_and_event_content_is_valid_and_redacted(
    run_once: RunOnce, receiver: OtlpReceiver, bridge_env: Any, protocol: str
) -> None:
    bridge_env.protocol = protocol
    code = run_once(
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT",
        LETTA_OTEL_REDACT_PATTERNS=r"ACCT-\d{8}",
    )
    assert code == 0
    spans = receiver.spans
    assert len(spans) == 43  # capture adds attributes and events, never spans
    text = wire_text(spans)
    for secret in SECRETS:
        assert secret not in text
    for marker in ("[REDACTED:api_key]", "[REDACTED:email]", "[REDACTED:card]", "[REDACTED]"):
        assert marker in text
    chats = _chats(spans)
    assert len(chats) == 13
    for chat in chats:
        attrs = chat.attributes
        (event,) = [e for e in chat.events if e.name == DETAILS]
        for key in FILES:
            if key in attrs:
                value = json.loads(attrs[key])
                validate(key, value)
                assert plain(event.attributes[key]) == value  # structured on the event
        assert "gen_ai.input.messages" in attrs
        assert attrs["letta_otel.redactions"] >= 4  # planted in the newest user message
        assert event.attributes["gen_ai.request.model"] == attrs["gen_ai.request.model"]
        assert event.time_ns == chat.end_ns
    tools = _tools(spans)
    assert len(tools) == 6
    for tool in tools:
        assert "gen_ai.tool.call.arguments" in tool.attributes
        if tool.name != "execute_tool send_message":  # its arguments come from the response
            assert tool.attributes["letta_otel.redactions"] >= 8  # arguments and result


def test_span_only_has_no_events_and_event_only_no_span_content(
    run_once: RunOnce, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    assert run_once(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY") == 0
    for chat in _chats(receiver.spans):
        assert not [e for e in chat.events if e.name == DETAILS]
    receiver.clear()
    again = run_once(
        "--state-path",
        str(tmp_path / "event-only.db"),
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="EVENT_ONLY",
    )
    assert again == 0
    spans = receiver.spans
    assert len(spans) == 43
    for span in spans:
        assert not set(span.attributes) & set(CONTENT_KEYS)
    for chat in _chats(spans):
        (event,) = [e for e in chat.events if e.name == DETAILS]
        validate("gen_ai.input.messages", plain(event.attributes["gen_ai.input.messages"]))


IDS = {"letta.step.id", "letta.run.id", "letta.agent.id", "gen_ai.tool.call.id"}


@pytest.mark.parametrize("sample_data", [PLANT + BIG], indirect=True)
def test_tempo_sized_attributes_hold_on_the_wire(run_once: RunOnce, receiver: OtlpReceiver) -> None:
    code = run_once(
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT",
        LETTA_OTEL_MAX_ATTRIBUTE_BYTES="2048",
        LETTA_OTEL_REDACT_PATTERNS=r"ACCT-\d{8}",
    )
    assert code == 0
    spans = receiver.spans
    assert len(spans) == 43
    for span in spans:
        for key, value in span.attributes.items():
            if isinstance(value, str) and key not in IDS:
                assert len(value.encode()) <= 2048, (span.name, key)
        for event in span.events:
            for key, value in event.attributes.items():
                size = (
                    len(value.encode())
                    if isinstance(value, str)
                    else len(
                        json.dumps(plain(value), ensure_ascii=False, separators=(",", ":")).encode()
                    )
                )
                assert size <= 2048, (span.name, event.name, key)
        for key in FILES:
            if key in span.attributes:
                validate(key, json.loads(span.attributes[key]))
    chats = _chats(spans)
    assert all(c.attributes["letta_otel.truncated"] is True for c in chats)
    for secret in SECRETS:  # redaction ran before the cut: no half secrets either
        assert secret[:12] not in wire_text(spans)


@pytest.mark.parametrize("sample_data", [BIG], indirect=True)
def test_trace_budget_drops_content_not_spans(
    run_once: RunOnce, receiver: OtlpReceiver, bridge_env: Any
) -> None:
    code = run_once(
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_AND_EVENT",
        LETTA_OTEL_MAX_TRACE_BYTES="64KiB",
        LETTA_OTEL_MAX_SPAN_BYTES="48KiB",
    )
    assert code == 0
    spans = receiver.spans
    assert len(spans) == 43  # every span still arrives
    over = [s for s in spans if "max_trace_bytes" in s.attributes.get("letta_otel.limits_hit", ())]
    assert over, "no trace reached the budget"
    for span in over:
        assert not set(span.attributes) & set(CONTENT_KEYS)
        assert not [e for e in span.events if e.name == DETAILS]
        assert span.attributes["letta.step.id"]
        assert set(span.attributes["letta_otel.dropped_attributes"]) & set(CONTENT_KEYS)
    by_trace: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    for trace_spans in by_trace.values():
        chats = sorted(_chats(trace_spans), key=lambda s: s.start_ns)
        if len(chats) == 2 and any(c in over for c in chats):
            # the earlier call kept its content; the later one paid for the budget
            assert "gen_ai.input.messages" in chats[0].attributes
            assert chats[1] in over
    with sqlite3.connect(bridge_env.state_path) as db:
        recorded = dict(db.execute("SELECT trace_id, bytes FROM trace_bytes").fetchall())
    assert set(recorded) == set(by_trace)
    run_id = next(iter(bridge_env.letta.data.run_ids()))
    assert ids.format_trace_id(ids.trace_id_from_letta_id(run_id)) in recorded
