"""OpenAI chat completions and Anthropic Messages: requests and responses.

The two share the message shape (``role`` plus ``content`` as a string or a list of
blocks, whose types do not collide): system messages stay in the input messages, as the
conventions ask for instructions that are part of the chat history; Anthropic's
top-level ``system`` becomes the system instructions. Real Letta 0.16.8 samples for
OpenAI chat; Anthropic's shapes from its public API documentation.
"""

from __future__ import annotations

from letta_otel.mapping.content.blocks import content_parts, tool_result_response
from letta_otel.mapping.content.parts import (
    ChatMessage,
    Json,
    Part,
    as_dict,
    as_list,
    as_str,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_response_part,
)


def chat_request(
    req: dict[str, Json],
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    """``(system_instructions, input_messages, tool_definitions)`` of a chat request."""
    system = content_parts(req.get("system")) or None
    messages = [m for m in map(chat_message, req["messages"]) if m is not None]
    return system, messages, tool_definitions(req.get("tools"))


def chat_message(raw: Json) -> ChatMessage | None:
    """An OpenAI chat or Anthropic message (their block types do not collide)."""
    m = as_dict(raw)
    if not m:
        return None
    role = as_str(m.get("role")) or "unknown"
    content = m.get("content")
    parts: list[Part]
    if role in ("tool", "function"):
        call_id = m.get("tool_call_id") or m.get("name")
        if isinstance(content, list):
            content = tool_result_response(content)
        parts = [tool_response_part(call_id, content)]
    else:
        parts = []
        reasoning = reasoning_part(m.get("reasoning_content"))
        if reasoning:
            parts.append(reasoning)
        parts.extend(content_parts(content))
        for call in as_list(m.get("tool_calls")):
            fn = as_dict(as_dict(call).get("function"))
            parts.append(
                tool_call_part(as_dict(call).get("id"), fn.get("name"), fn.get("arguments"))
            )
        legacy = as_dict(m.get("function_call"))
        if legacy:
            parts.append(tool_call_part(None, legacy.get("name"), legacy.get("arguments")))
    message: ChatMessage = {"role": role, "parts": parts}
    name = as_str(m.get("name"))
    if name and role not in ("tool", "function"):
        message["name"] = name
    return message


def tool_definitions(tools: Json) -> list[dict[str, Json]] | None:
    """OpenAI chat, Responses and Anthropic tools → ``{"type", "name"}`` definitions."""
    found: list[dict[str, Json]] = []
    for tool in map(as_dict, as_list(tools)):
        kind = as_str(tool.get("type"))
        fn = as_dict(tool.get("function"))
        name = as_str(fn.get("name")) or as_str(tool.get("name"))
        if kind in (None, "function", "custom") and name:
            found.append({"type": "function", "name": name})
        elif kind:
            found.append({"type": kind, "name": name or kind})
    return found or None


_OPENAI_FINISH = {"tool_calls": "tool_call", "function_call": "tool_call"}

_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def openai_chat_response(r: dict[str, Json]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for choice in map(as_dict, as_list(r.get("choices"))):
        message = chat_message(choice.get("message")) or {"role": "assistant", "parts": []}
        if message["role"] == "unknown":
            message["role"] = "assistant"
        refusal = as_str(as_dict(choice.get("message")).get("refusal"))
        if refusal:
            message["parts"].append(text_part(refusal))
        reason = as_str(choice.get("finish_reason")) or "stop"
        message["finish_reason"] = _OPENAI_FINISH.get(reason, reason)
        messages.append(message)
    return messages


def anthropic_response(r: dict[str, Json]) -> list[ChatMessage]:
    reason = as_str(r.get("stop_reason")) or "stop"
    return [
        {
            "role": as_str(r.get("role")) or "assistant",
            "parts": content_parts(r.get("content")),
            "finish_reason": _ANTHROPIC_FINISH.get(reason, reason),
        }
    ]
