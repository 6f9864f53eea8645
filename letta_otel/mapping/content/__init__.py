"""Provider payloads → GenAI semconv v1.41 content (``gen_ai.*.messages`` and friends).

Converts a provider trace's ``request_json``/``response_json`` into the structures the
semantic conventions' JSON schemas describe (``gen-ai-input-messages.json``,
``gen-ai-output-messages.json``, ``gen-ai-system-instructions.json``,
``gen-ai-tool-definitions.json``): messages are ``{"role", "parts": [...]}``, parts are
``text``/``tool_call``/``tool_call_response``/``reasoning``/``blob``/``uri``/… objects.

Formats handled, by request and response shape (never by provider name, which lies for
proxies):

* **OpenAI chat completions** — request ``messages`` (system messages stay in the input
  messages, as the conventions ask for instructions that are part of the chat history),
  response ``choices``. Real Letta 0.16.8 samples.
* **Letta's streaming object** — response ``{"type": "message", "content": {"tool_call":
  "<json>", "content": ["<json block>"], "reasoning": [...]}}``. Real samples.
* **Anthropic Messages**, **Google Gemini generateContent** (REST camelCase and the
  google-genai SDK's snake_case names) and the **OpenAI Responses API**: shapes from the
  providers' public API documentation, *not* from captured Letta data.

Tool definitions carry only the required ``type`` and ``name``: the conventions advise
against populating descriptions and parameter schemas by default (they are large and the
same on every call).

Everything here is pure and total: unknown shapes yield ``None``/empty, never an error.
No redaction or size limit is applied here (see ``capture``). One module per format:
:mod:`.chat` (OpenAI chat, Anthropic), :mod:`.responses_api`, :mod:`.google`,
:mod:`.letta_stream`; :mod:`.blocks` and :mod:`.parts` are what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from letta_otel.mapping.content.chat import anthropic_response, chat_request, openai_chat_response
from letta_otel.mapping.content.google import google_request, google_response
from letta_otel.mapping.content.letta_stream import letta_stream_response
from letta_otel.mapping.content.parts import ChatMessage, Json, Part, as_dict
from letta_otel.mapping.content.responses_api import (
    openai_responses_response,
    responses_request,
)
from letta_otel.mapping.provider import response_kind


@dataclass(frozen=True)
class LlmContent:
    """The four content attributes of one LLM call; ``None`` = nothing to record."""

    system_instructions: list[Part] | None = None
    input_messages: list[ChatMessage] | None = None
    output_messages: list[ChatMessage] | None = None
    tool_definitions: list[dict[str, Json]] | None = None


def llm_content(request: Json, response: Json) -> LlmContent:
    system, inputs, tools = request_content(request)
    return LlmContent(system, inputs, response_messages(response), tools)


def request_content(
    request: Json,
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    """``(system_instructions, input_messages, tool_definitions)`` of a request."""
    req = as_dict(request)
    if isinstance(req.get("contents"), list):
        return google_request(req)
    if "messages" not in req and ("input" in req or "instructions" in req):
        return responses_request(req)
    if isinstance(req.get("messages"), list):
        return chat_request(req)
    return None, None, None


def response_messages(response: Json) -> list[ChatMessage] | None:
    """The model's output messages, one per choice/candidate; None when there is none."""
    r = as_dict(response)
    kind = response_kind(r)
    reader = _RESPONSE_READERS.get(kind)
    messages = reader(r) if reader else []
    return messages or None


_RESPONSE_READERS: dict[str, Callable[[dict[str, Json]], list[ChatMessage]]] = {
    "openai_chat": openai_chat_response,
    "letta_stream": letta_stream_response,
    "anthropic": anthropic_response,
    "google": google_response,
    "openai_responses": openai_responses_response,
}
