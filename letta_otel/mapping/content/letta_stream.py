"""Letta's own object for streamed calls: ``{"type": "message", "content": {...}}``.

``content`` holds the tool call(s) and text blocks as JSON text, and the reasoning;
Letta does not store the finish reason of a streamed call. Real Letta 0.16.8 samples.
"""

from __future__ import annotations

from letta_otel.mapping.content.blocks import block_parts
from letta_otel.mapping.content.parts import (
    ChatMessage,
    Json,
    Part,
    as_dict,
    as_list,
    as_str,
    parse_json_text,
    tool_call_part,
)


def letta_stream_response(r: dict[str, Json]) -> list[ChatMessage]:
    content = as_dict(r.get("content"))
    parts: list[Part] = []
    for key in ("reasoning", "content"):
        for raw in as_list(content.get(key)):
            parts.extend(block_parts(parse_json_text(raw)))
    calls = as_list(content.get("tool_calls")) or [content.get("tool_call")]
    for raw in calls:
        call = as_dict(parse_json_text(raw))
        if call:
            fn = as_dict(call.get("function"))
            parts.append(
                tool_call_part(
                    call.get("id"), fn.get("name") or call.get("name"), fn.get("arguments")
                )
            )
    if not parts:
        return []
    # Letta does not store the finish reason of a streamed call; a tool call ends it.
    has_call = any(p["type"] == "tool_call" for p in parts)
    return [
        {
            "role": as_str(r.get("role")) or "assistant",
            "parts": parts,
            "finish_reason": "tool_call" if has_call else "stop",
        }
    ]
