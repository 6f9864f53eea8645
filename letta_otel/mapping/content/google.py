"""Google Gemini ``generateContent``: requests, responses and tool declarations.

Both spellings are read: the REST API's camelCase and the google-genai SDK's
snake_case. Shapes from Google's public API documentation, *not* from captured Letta
data.
"""

from __future__ import annotations

import json

from letta_otel.mapping.content.parts import (
    DEFINED_PART_TYPES,
    ChatMessage,
    Json,
    Part,
    as_dict,
    as_list,
    as_str,
    blob_part,
    camel_or_snake,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_response_part,
    uri_part,
)

_GOOGLE_ROLES = {"model": "assistant", "function": "tool", "tool": "tool", "user": "user"}


def _google_part(raw: Json) -> list[Part]:
    p = as_dict(raw)
    if isinstance(p.get("text"), str):
        return (
            [reasoning_part(p["text"]) or text_part(p["text"])]
            if p.get("thought")
            else [text_part(p["text"])]
        )
    call = as_dict(camel_or_snake(p, "functionCall", "function_call"))
    if call:
        return [tool_call_part(call.get("id"), call.get("name"), call.get("args"))]
    result = as_dict(camel_or_snake(p, "functionResponse", "function_response"))
    if result:
        return [tool_response_part(result.get("id") or result.get("name"), result.get("response"))]
    inline = as_dict(camel_or_snake(p, "inlineData", "inline_data"))
    if inline:
        return [
            blob_part(
                as_str(camel_or_snake(inline, "mimeType", "mime_type")), inline.get("data"), "image"
            )
        ]
    file = as_dict(camel_or_snake(p, "fileData", "file_data"))
    uri = as_str(camel_or_snake(file, "fileUri", "file_uri"))
    if uri:
        return [uri_part(as_str(camel_or_snake(file, "mimeType", "mime_type")), uri, "image")]
    others = [k for k, v in p.items() if v is not None]
    if not others:
        return []
    key = others[0]
    if key in DEFINED_PART_TYPES:
        # A schema type name with an unexpected value (e.g. ``"text": []``) would make a
        # part that fails the schema: keep the text as JSON text, drop the rest.
        return [text_part(json.dumps(p[key], default=str))] if key == "text" else []
    return [{"type": key, "content": p[key]}]


def _google_parts(content: Json) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [part for raw in as_list(as_dict(content).get("parts")) for part in _google_part(raw)]


def google_request(
    req: dict[str, Json],
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    config = as_dict(req.get("config")) or as_dict(
        camel_or_snake(req, "generationConfig", "generation_config")
    )
    instruction = camel_or_snake(req, "systemInstruction", "system_instruction")
    if instruction is None:
        instruction = camel_or_snake(config, "systemInstruction", "system_instruction")
    system = _google_parts(instruction) or None
    messages: list[ChatMessage] = []
    for content in map(as_dict, req["contents"]):
        role = as_str(content.get("role")) or "user"
        messages.append({"role": _GOOGLE_ROLES.get(role, role), "parts": _google_parts(content)})
    tools = req.get("tools") if req.get("tools") is not None else config.get("tools")
    return system, messages, _google_tools(tools)


def _google_tools(tools: Json) -> list[dict[str, Json]] | None:
    found: list[dict[str, Json]] = []
    for tool in map(as_dict, as_list(tools)):
        declarations = camel_or_snake(tool, "functionDeclarations", "function_declarations")
        for fn in map(as_dict, as_list(declarations)):
            name = as_str(fn.get("name"))
            if name:
                found.append({"type": "function", "name": name})
        for key, value in tool.items():
            if key not in ("functionDeclarations", "function_declarations") and value is not None:
                found.append({"type": key, "name": key})
    return found or None


_GOOGLE_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}


def google_response(r: dict[str, Json]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for candidate in map(as_dict, as_list(r.get("candidates"))):
        content = as_dict(candidate.get("content"))
        role = as_str(content.get("role")) or "model"
        reason = as_str(camel_or_snake(candidate, "finishReason", "finish_reason")) or "STOP"
        messages.append(
            {
                "role": _GOOGLE_ROLES.get(role, role),
                "parts": _google_parts(content),
                "finish_reason": _GOOGLE_FINISH.get(reason, reason.lower()),
            }
        )
    return messages
