"""The OpenAI Responses API: ``input``/``instructions`` requests, ``output`` responses.

Shapes from OpenAI's public API documentation, *not* from captured Letta data.
"""

from __future__ import annotations

from letta_otel.mapping.content.blocks import block_parts, content_parts
from letta_otel.mapping.content.chat import tool_definitions
from letta_otel.mapping.content.parts import (
    ChatMessage,
    Json,
    Part,
    as_dict,
    as_list,
    as_str,
    text_part,
)


def responses_request(
    req: dict[str, Json],
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    system = content_parts(req.get("instructions")) or None
    raw = req.get("input")
    messages: list[ChatMessage] = []
    if isinstance(raw, str):
        messages.append({"role": "user", "parts": [text_part(raw)]})
    for item in map(as_dict, as_list(raw)):
        kind = item.get("type")
        if "role" in item and kind in (None, "message"):
            role = as_str(item.get("role")) or "unknown"
            messages.append({"role": role, "parts": content_parts(item.get("content"))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "parts": block_parts(item)})
        elif isinstance(kind, str):
            parts = block_parts(item)
            if parts:
                messages.append({"role": "assistant", "parts": parts})
    return system, messages, tool_definitions(req.get("tools"))


def openai_responses_response(r: dict[str, Json]) -> list[ChatMessage]:
    parts: list[Part] = []
    for item in map(as_dict, as_list(r.get("output"))):
        if item.get("type") == "message":
            parts.extend(content_parts(item.get("content")))
        else:
            parts.extend(block_parts(item))
    if not parts:
        return []
    status = as_str(r.get("status")) or "completed"
    incomplete = as_str(as_dict(r.get("incomplete_details")).get("reason"))
    if status == "failed":
        reason = "error"
    elif incomplete:
        reason = "length" if incomplete == "max_output_tokens" else incomplete
    elif any(p["type"] == "tool_call" for p in parts):
        reason = "tool_call"
    else:
        reason = "stop"
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]
