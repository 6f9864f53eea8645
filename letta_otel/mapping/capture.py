"""Opt-in content capture: which content goes where, redacted, for the span mapper.

``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` picks the mode:

* ``NO_CONTENT`` (default): nothing of a prompt, completion, tool argument or result is
  read into a span or event; the functions here are not even called.
* ``SPAN_ONLY``: ``chat`` spans carry ``gen_ai.system_instructions``,
  ``gen_ai.input.messages``, ``gen_ai.output.messages`` and ``gen_ai.tool.definitions``
  as JSON text; ``execute_tool`` spans carry ``gen_ai.tool.call.arguments`` and
  ``gen_ai.tool.call.result``.
* ``EVENT_ONLY``: the ``chat`` span gets one ``gen_ai.client.inference.operation.details``
  event (semconv v1.41.1 ``model-events.yaml``: it extends the inference client
  attribute group, so it repeats the span's ``gen_ai.*``, ``server.*`` and
  ``error.type`` attributes) with the four content attributes in *structured* form, as
  the conventions require on events. Tool spans get nothing: the tool call and its
  result already appear in the messages of the LLM calls around it.
* ``SPAN_AND_EVENT``: both.

The event is recorded as a span event (not a log record) so it travels in the same
export as its span and is checkpointed with it: all or nothing.

Every captured string is redacted (:mod:`redact`) here, before :mod:`limits` fits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opentelemetry.util.types import AttributeValue

from letta_otel.letta.models import Message
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.content import llm_content, response_messages
from letta_otel.mapping.content.parts import parse_json_text
from letta_otel.mapping.limits import Captured, ContentValue, Limits
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.redact import Redactor


class CaptureMode(StrEnum):
    NO_CONTENT = "NO_CONTENT"
    SPAN_ONLY = "SPAN_ONLY"
    EVENT_ONLY = "EVENT_ONLY"
    SPAN_AND_EVENT = "SPAN_AND_EVENT"


@dataclass(frozen=True)
class ContentPolicy:
    """How content is captured, redacted and bounded. The default captures nothing."""

    mode: CaptureMode = CaptureMode.NO_CONTENT
    redactor: Redactor = field(default_factory=Redactor)
    limits: Limits = field(default_factory=Limits)

    @property
    def capture(self) -> bool:
        return self.mode is not CaptureMode.NO_CONTENT

    @property
    def on_spans(self) -> bool:
        return self.mode in (CaptureMode.SPAN_ONLY, CaptureMode.SPAN_AND_EVENT)

    @property
    def on_events(self) -> bool:
        return self.mode in (CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT)


DEFAULT_POLICY = ContentPolicy()


def _event_attributes(attrs: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
    """The inference client attribute group, as the details event repeats it."""
    return {
        k: v for k, v in attrs.items() if k.startswith(("gen_ai.", "server.")) or k == sc.ERROR_TYPE
    }


def capture_llm(
    record: StepRecord, llm_attributes: Mapping[str, AttributeValue], policy: ContentPolicy
) -> Captured | None:
    """Content of the step's LLM call, redacted, for its ``chat`` span."""
    trace = record.trace
    if trace is None or not policy.capture:
        return None
    content = llm_content(trace.request_json, trace.response_json)
    values: list[ContentValue] = []
    redactions = 0
    for key, value, kind in (
        (sc.SYSTEM_INSTRUCTIONS, content.system_instructions, "system"),
        (sc.INPUT_MESSAGES, content.input_messages, "input"),
        (sc.OUTPUT_MESSAGES, content.output_messages, "output"),
        (sc.TOOL_DEFINITIONS, content.tool_definitions, "tools"),
    ):
        if value is None:
            continue
        redacted, count = policy.redactor.value(value)
        redactions += count
        values.append(ContentValue(key, redacted, kind))
    if not values:
        return None
    return Captured(
        span=tuple(values) if policy.on_spans else (),
        event_name=sc.INFERENCE_DETAILS_EVENT if policy.on_events else None,
        event_attributes=_event_attributes(llm_attributes) if policy.on_events else {},
        event_content=tuple(values) if policy.on_events else (),
        redactions=redactions,
    )


def capture_tool(
    record: StepRecord, call_id: str, status: str | None, policy: ContentPolicy
) -> Captured | None:
    """Arguments and (successful) result of one tool call, for its ``execute_tool`` span."""
    if not policy.on_spans:
        return None
    arguments, result = _tool_io(record, call_id)
    values: list[ContentValue] = []
    redactions = 0
    for key, raw in (
        (sc.TOOL_CALL_ARGUMENTS, arguments),
        # The conventions record a result only when the execution was successful.
        (sc.TOOL_CALL_RESULT, None if status == "error" else result),
    ):
        if raw is None:
            continue
        redacted, count = policy.redactor.value(parse_json_text(raw))
        redactions += count
        values.append(ContentValue(key, redacted))
    return Captured(span=tuple(values), redactions=redactions) if values else None


def _tool_io(record: StepRecord, call_id: str) -> tuple[Any, Any]:
    """A call's arguments and return value from the step's messages; the arguments
    from the provider response when Letta rewrote the call (``send_message``)."""
    arguments: Any = None
    result: Any = None
    for message in record.messages:
        if message.message_type == "tool_call_message" and arguments is None:
            arguments = _message_arguments(message, call_id)
        elif message.message_type == "tool_return_message" and result is None:
            result = _message_result(message, call_id)
    if arguments is None and record.trace is not None:
        for output in response_messages(record.trace.response_json) or []:
            for part in output["parts"]:
                if part.get("type") == "tool_call" and part.get("id") == call_id:
                    arguments = part.get("arguments")
    return arguments, result


def _message_arguments(message: Message, call_id: str) -> Any:
    calls = list(message.tool_calls or []) or ([message.tool_call] if message.tool_call else [])
    for call in calls:
        if call.tool_call_id == call_id:
            return call.arguments
    return None


def _message_result(message: Message, call_id: str) -> Any:
    for ret in message.tool_returns or []:
        if ret.tool_call_id == call_id:
            return ret.tool_return
    if message.tool_call_id == call_id:
        return message.tool_return
    return None
