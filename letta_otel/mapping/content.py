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
No redaction or size limit is applied here (see ``capture``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from letta_otel.mapping.provider import response_kind

Json = Any
Part = dict[str, Json]
ChatMessage = dict[str, Json]


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


# --- small readers ------------------------------------------------------------------


def _dict(value: Json) -> dict[str, Json]:
    return value if isinstance(value, dict) else {}


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def _str(value: Json) -> str | None:
    return value if isinstance(value, str) else None


def _get(obj: dict[str, Json], camel: str, snake: str) -> Json:
    """Google payloads: REST uses camelCase, the google-genai SDK's dumps snake_case."""
    value = obj.get(camel)
    return value if value is not None else obj.get(snake)


def parse_json_text(value: Json) -> Json:
    """A JSON object/array given as text becomes the object (the conventions prefer
    structured tool arguments and results); anything else is returned unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                return value
    return value


def _text(content: str) -> Part:
    return {"type": "text", "content": content}


def _tool_call(call_id: Json, name: Json, arguments: Json) -> Part:
    part: Part = {"type": "tool_call", "name": name if isinstance(name, str) else ""}
    if isinstance(call_id, str) and call_id:
        part["id"] = call_id
    if arguments is not None:
        part["arguments"] = parse_json_text(arguments)
    return part


def _tool_response(call_id: Json, response: Json) -> Part:
    part: Part = {"type": "tool_call_response", "response": parse_json_text(response)}
    if isinstance(call_id, str) and call_id:
        part["id"] = call_id
    return part


def _modality(mime: str | None, default: str) -> str:
    major = (mime or "").split("/", 1)[0]
    return major if major in ("image", "video", "audio") else default


def _blob(mime: str | None, data: Json, default_modality: str) -> Part:
    part: Part = {
        "type": "blob",
        "modality": _modality(mime, default_modality),
        "content": data if isinstance(data, str) else "",
    }
    if mime:
        part["mime_type"] = mime
    return part


def _uri(mime: str | None, uri: str, default_modality: str) -> Part:
    part: Part = {"type": "uri", "modality": _modality(mime, default_modality), "uri": uri}
    if mime:
        part["mime_type"] = mime
    return part


def _data_url(url: str) -> Part:
    """``data:image/png;base64,AAAA`` is inline data: a blob, not a uri (schema note)."""
    header, _, data = url.partition(",")
    mime = header[5:].split(";", 1)[0] or None
    return _blob(mime, data, "image")


# Part types the conventions define a shape for: a block that merely shares the name
# (another API's "file", a mangled payload) must not claim that shape.
_DEFINED_PART_TYPES = frozenset(
    {
        "text",
        "tool_call",
        "tool_call_response",
        "server_tool_call",
        "server_tool_call_response",
        "blob",
        "file",
        "uri",
        "reasoning",
    }
)


def _generic(block: dict[str, Json]) -> Part | None:
    """An unknown block kept as a ``GenericPart`` (any ``type`` and properties)."""
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        return None
    if kind in _DEFINED_PART_TYPES:
        return {**block, "type": f"provider.{kind}"}
    return dict(block)


# --- content blocks (OpenAI chat, Anthropic, Letta, Responses share "type") ------------


def _image_url_part(block: dict[str, Json]) -> Part | None:
    raw = block.get("image_url")
    url = _str(_dict(raw).get("url")) or _str(raw)
    if not url:
        return None
    return _data_url(url) if url.startswith("data:") else _uri(None, url, "image")


def _anthropic_source(block: dict[str, Json], modality: str) -> Part | None:
    source = _dict(block.get("source"))
    mime = _str(source.get("media_type"))
    if source.get("type") == "base64":
        return _blob(mime, source.get("data"), modality)
    url = _str(source.get("url"))
    if url:
        return _uri(mime, url, modality)
    return _generic(block)


def _tool_result_response(content: Json) -> Json:
    """Anthropic ``tool_result.content``: a string or a list of blocks."""
    blocks = _list(content)
    if blocks and all(_dict(b).get("type") == "text" for b in blocks):
        return "".join(_str(_dict(b).get("text")) or "" for b in blocks)
    if blocks:
        return [p for b in blocks for p in block_parts(b)]
    return content


def _reasoning(text: Json) -> Part | None:
    if isinstance(text, str):
        return {"type": "reasoning", "content": text}
    if isinstance(text, list):  # Responses reasoning summaries: [{"text": ...}]
        joined = "\n".join(_str(_dict(t).get("text")) or "" for t in text)
        return {"type": "reasoning", "content": joined}
    return None


def _text_block(block: dict[str, Json]) -> list[Part]:
    text = _str(block.get("text"))
    return [_text(text)] if text is not None else []


def _tool_use_block(block: dict[str, Json]) -> list[Part]:
    return [_tool_call(block.get("id"), block.get("name"), block.get("input"))]


def _function_call_block(block: dict[str, Json]) -> list[Part]:
    return [
        _tool_call(
            block.get("call_id") or block.get("id"), block.get("name"), block.get("arguments")
        )
    ]


def _function_output_block(block: dict[str, Json]) -> list[Part]:
    return [_tool_response(block.get("call_id"), block.get("output"))]


def _tool_result_block(block: dict[str, Json]) -> list[Part]:
    return [_tool_response(block.get("tool_use_id"), _tool_result_response(block.get("content")))]


def _thinking_block(block: dict[str, Json]) -> list[Part]:
    part = _reasoning(block.get("thinking"))
    return [part] if part else []


def _letta_reasoning_block(block: dict[str, Json]) -> list[Part]:
    part = _reasoning(block.get("reasoning"))
    return [part] if part else []


def _responses_reasoning_block(block: dict[str, Json]) -> list[Part]:
    part = _reasoning(block.get("summary"))
    return [part] if part else []


def _server_tool_use_block(block: dict[str, Json]) -> list[Part]:
    name = _str(block.get("name")) or ""
    part: Part = {
        "type": "server_tool_call",
        "name": name,
        "server_tool_call": {"type": name or "server_tool", "input": block.get("input")},
    }
    if isinstance(block.get("id"), str):
        part["id"] = block["id"]
    return [part]


def _image_block(block: dict[str, Json]) -> list[Part]:
    part = _anthropic_source(block, "image")
    return [part] if part else []


def _image_url_block(block: dict[str, Json]) -> list[Part]:
    part = _image_url_part(block)
    return [part] if part else []


def _input_image_block(block: dict[str, Json]) -> list[Part]:
    url = _str(block.get("image_url"))
    if url:
        return [_data_url(url) if url.startswith("data:") else _uri(None, url, "image")]
    part = _generic(block)
    return [part] if part else []


def _input_audio_block(block: dict[str, Json]) -> list[Part]:
    audio = _dict(block.get("input_audio"))
    fmt = _str(audio.get("format"))
    return [_blob(f"audio/{fmt}" if fmt else None, audio.get("data"), "audio")]


def _refusal_block(block: dict[str, Json]) -> list[Part]:
    text = _str(block.get("refusal"))
    return [_text(text)] if text is not None else []


def _letta_tool_call_block(block: dict[str, Json]) -> list[Part]:
    """Letta's own ``tool_call`` content (id, name, input)."""
    arguments = block.get("input") if "input" in block else block.get("arguments")
    return [_tool_call(block.get("id"), block.get("name"), arguments)]


def _letta_tool_return_block(block: dict[str, Json]) -> list[Part]:
    return [_tool_response(block.get("tool_call_id"), block.get("content"))]


def _file_block(block: dict[str, Json]) -> list[Part]:
    """OpenAI chat ``{"type": "file", "file": {"file_id" | "file_data", "filename"}}``."""
    file = _dict(block.get("file"))
    file_id = _str(file.get("file_id"))
    if file_id:
        return [{"type": "file", "modality": "document", "file_id": file_id}]
    part = _generic(block)
    return [part] if part else []


def _omit(_: dict[str, Json]) -> list[Part]:
    return []


_BLOCKS: dict[str, Callable[[dict[str, Json]], list[Part]]] = {
    "text": _text_block,
    "input_text": _text_block,
    "output_text": _text_block,
    "refusal": _refusal_block,
    "image_url": _image_url_block,
    "input_image": _input_image_block,
    "input_audio": _input_audio_block,
    "image": _image_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "function_call": _function_call_block,
    "function_call_output": _function_output_block,
    "thinking": _thinking_block,
    "reasoning": _letta_reasoning_block,
    "server_tool_use": _server_tool_use_block,
    "tool_call": _letta_tool_call_block,
    "tool_return": _letta_tool_return_block,
    "file": _file_block,
    # Opaque provider data: nothing a reader can use, often large.
    "redacted_thinking": _omit,
    "redacted_reasoning": _omit,
    "omitted_reasoning": _omit,
}


def block_parts(block: Json) -> list[Part]:
    """One content block (any of the shapes above) as semconv parts."""
    if isinstance(block, str):
        return [_text(block)]
    b = _dict(block)
    kind = _str(b.get("type"))
    if kind is None:
        return []
    if kind == "reasoning" and "summary" in b:  # Responses API reasoning item
        return _responses_reasoning_block(b)
    if kind.endswith("_tool_result"):  # Anthropic server tool results (web search, ...)
        return [
            {
                "type": "server_tool_call_response",
                **({"id": b["tool_use_id"]} if isinstance(b.get("tool_use_id"), str) else {}),
                "server_tool_call_response": {"type": kind, "content": b.get("content")},
            }
        ]
    handler = _BLOCKS.get(kind)
    if handler is not None:
        return handler(b)
    part = _generic(b)
    return [part] if part else []


def _content_parts(content: Json) -> list[Part]:
    if isinstance(content, str):
        return [_text(content)]
    return [p for block in _list(content) for p in block_parts(block)]


# --- requests ---------------------------------------------------------------------------


def request_content(
    request: Json,
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    """``(system_instructions, input_messages, tool_definitions)`` of a request."""
    req = _dict(request)
    if isinstance(req.get("contents"), list):
        return _google_request(req)
    if "messages" not in req and ("input" in req or "instructions" in req):
        return _responses_request(req)
    if isinstance(req.get("messages"), list):
        system = _content_parts(req.get("system")) or None
        messages = [m for m in map(_chat_message, req["messages"]) if m is not None]
        return system, messages, _tool_definitions(req.get("tools"))
    return None, None, None


def _chat_message(raw: Json) -> ChatMessage | None:
    """An OpenAI chat or Anthropic message (their block types do not collide)."""
    m = _dict(raw)
    if not m:
        return None
    role = _str(m.get("role")) or "unknown"
    content = m.get("content")
    parts: list[Part]
    if role in ("tool", "function"):
        call_id = m.get("tool_call_id") or m.get("name")
        if isinstance(content, list):
            content = _tool_result_response(content)
        parts = [_tool_response(call_id, content)]
    else:
        parts = []
        reasoning = _reasoning(m.get("reasoning_content"))
        if reasoning:
            parts.append(reasoning)
        parts.extend(_content_parts(content))
        for call in _list(m.get("tool_calls")):
            fn = _dict(_dict(call).get("function"))
            parts.append(_tool_call(_dict(call).get("id"), fn.get("name"), fn.get("arguments")))
        legacy = _dict(m.get("function_call"))
        if legacy:
            parts.append(_tool_call(None, legacy.get("name"), legacy.get("arguments")))
    message: ChatMessage = {"role": role, "parts": parts}
    name = _str(m.get("name"))
    if name and role not in ("tool", "function"):
        message["name"] = name
    return message


def _responses_request(
    req: dict[str, Json],
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    system = _content_parts(req.get("instructions")) or None
    raw = req.get("input")
    messages: list[ChatMessage] = []
    if isinstance(raw, str):
        messages.append({"role": "user", "parts": [_text(raw)]})
    for item in map(_dict, _list(raw)):
        kind = item.get("type")
        if "role" in item and kind in (None, "message"):
            role = _str(item.get("role")) or "unknown"
            messages.append({"role": role, "parts": _content_parts(item.get("content"))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "parts": block_parts(item)})
        elif isinstance(kind, str):
            parts = block_parts(item)
            if parts:
                messages.append({"role": "assistant", "parts": parts})
    return system, messages, _tool_definitions(req.get("tools"))


_GOOGLE_ROLES = {"model": "assistant", "function": "tool", "tool": "tool", "user": "user"}


def _google_part(raw: Json) -> list[Part]:
    p = _dict(raw)
    if isinstance(p.get("text"), str):
        return (
            [_reasoning(p["text"]) or _text(p["text"])] if p.get("thought") else [_text(p["text"])]
        )
    call = _dict(_get(p, "functionCall", "function_call"))
    if call:
        return [_tool_call(call.get("id"), call.get("name"), call.get("args"))]
    result = _dict(_get(p, "functionResponse", "function_response"))
    if result:
        return [_tool_response(result.get("id") or result.get("name"), result.get("response"))]
    inline = _dict(_get(p, "inlineData", "inline_data"))
    if inline:
        return [_blob(_str(_get(inline, "mimeType", "mime_type")), inline.get("data"), "image")]
    file = _dict(_get(p, "fileData", "file_data"))
    uri = _str(_get(file, "fileUri", "file_uri"))
    if uri:
        return [_uri(_str(_get(file, "mimeType", "mime_type")), uri, "image")]
    others = [k for k, v in p.items() if v is not None]
    if not others:
        return []
    key = others[0]
    if key in _DEFINED_PART_TYPES:
        # A schema type name with an unexpected value (e.g. ``"text": []``) would make a
        # part that fails the schema: keep the text as JSON text, drop the rest.
        return [_text(json.dumps(p[key], default=str))] if key == "text" else []
    return [{"type": key, "content": p[key]}]


def _google_parts(content: Json) -> list[Part]:
    if isinstance(content, str):
        return [_text(content)]
    return [part for raw in _list(_dict(content).get("parts")) for part in _google_part(raw)]


def _google_request(
    req: dict[str, Json],
) -> tuple[list[Part] | None, list[ChatMessage] | None, list[dict[str, Json]] | None]:
    config = _dict(req.get("config")) or _dict(_get(req, "generationConfig", "generation_config"))
    instruction = _get(req, "systemInstruction", "system_instruction")
    if instruction is None:
        instruction = _get(config, "systemInstruction", "system_instruction")
    system = _google_parts(instruction) or None
    messages: list[ChatMessage] = []
    for content in map(_dict, req["contents"]):
        role = _str(content.get("role")) or "user"
        messages.append({"role": _GOOGLE_ROLES.get(role, role), "parts": _google_parts(content)})
    tools = req.get("tools") if req.get("tools") is not None else config.get("tools")
    return system, messages, _google_tools(tools)


# --- tool definitions -----------------------------------------------------------------


def _tool_definitions(tools: Json) -> list[dict[str, Json]] | None:
    """OpenAI chat, Responses and Anthropic tools → ``{"type", "name"}`` definitions."""
    found: list[dict[str, Json]] = []
    for tool in map(_dict, _list(tools)):
        kind = _str(tool.get("type"))
        fn = _dict(tool.get("function"))
        name = _str(fn.get("name")) or _str(tool.get("name"))
        if kind in (None, "function", "custom") and name:
            found.append({"type": "function", "name": name})
        elif kind:
            found.append({"type": kind, "name": name or kind})
    return found or None


def _google_tools(tools: Json) -> list[dict[str, Json]] | None:
    found: list[dict[str, Json]] = []
    for tool in map(_dict, _list(tools)):
        declarations = _get(tool, "functionDeclarations", "function_declarations")
        for fn in map(_dict, _list(declarations)):
            name = _str(fn.get("name"))
            if name:
                found.append({"type": "function", "name": name})
        for key, value in tool.items():
            if key not in ("functionDeclarations", "function_declarations") and value is not None:
                found.append({"type": key, "name": key})
    return found or None


# --- responses ------------------------------------------------------------------------

_OPENAI_FINISH = {"tool_calls": "tool_call", "function_call": "tool_call"}
_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}
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


def response_messages(response: Json) -> list[ChatMessage] | None:
    """The model's output messages, one per choice/candidate; None when there is none."""
    r = _dict(response)
    kind = response_kind(r)
    reader = _RESPONSE_READERS.get(kind)
    messages = reader(r) if reader else []
    return messages or None


def _openai_chat_response(r: dict[str, Json]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for choice in map(_dict, _list(r.get("choices"))):
        message = _chat_message(choice.get("message")) or {"role": "assistant", "parts": []}
        if message["role"] == "unknown":
            message["role"] = "assistant"
        refusal = _str(_dict(choice.get("message")).get("refusal"))
        if refusal:
            message["parts"].append(_text(refusal))
        reason = _str(choice.get("finish_reason")) or "stop"
        message["finish_reason"] = _OPENAI_FINISH.get(reason, reason)
        messages.append(message)
    return messages


def _letta_stream_response(r: dict[str, Json]) -> list[ChatMessage]:
    content = _dict(r.get("content"))
    parts: list[Part] = []
    for key in ("reasoning", "content"):
        for raw in _list(content.get(key)):
            parts.extend(block_parts(parse_json_text(raw)))
    calls = _list(content.get("tool_calls")) or [content.get("tool_call")]
    for raw in calls:
        call = _dict(parse_json_text(raw))
        if call:
            fn = _dict(call.get("function"))
            parts.append(
                _tool_call(call.get("id"), fn.get("name") or call.get("name"), fn.get("arguments"))
            )
    if not parts:
        return []
    # Letta does not store the finish reason of a streamed call; a tool call ends it.
    has_call = any(p["type"] == "tool_call" for p in parts)
    return [
        {
            "role": _str(r.get("role")) or "assistant",
            "parts": parts,
            "finish_reason": "tool_call" if has_call else "stop",
        }
    ]


def _anthropic_response(r: dict[str, Json]) -> list[ChatMessage]:
    reason = _str(r.get("stop_reason")) or "stop"
    return [
        {
            "role": _str(r.get("role")) or "assistant",
            "parts": _content_parts(r.get("content")),
            "finish_reason": _ANTHROPIC_FINISH.get(reason, reason),
        }
    ]


def _google_response(r: dict[str, Json]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for candidate in map(_dict, _list(r.get("candidates"))):
        content = _dict(candidate.get("content"))
        role = _str(content.get("role")) or "model"
        reason = _str(_get(candidate, "finishReason", "finish_reason")) or "STOP"
        messages.append(
            {
                "role": _GOOGLE_ROLES.get(role, role),
                "parts": _google_parts(content),
                "finish_reason": _GOOGLE_FINISH.get(reason, reason.lower()),
            }
        )
    return messages


def _openai_responses_response(r: dict[str, Json]) -> list[ChatMessage]:
    parts: list[Part] = []
    for item in map(_dict, _list(r.get("output"))):
        if item.get("type") == "message":
            parts.extend(_content_parts(item.get("content")))
        else:
            parts.extend(block_parts(item))
    if not parts:
        return []
    status = _str(r.get("status")) or "completed"
    incomplete = _str(_dict(r.get("incomplete_details")).get("reason"))
    if status == "failed":
        reason = "error"
    elif incomplete:
        reason = "length" if incomplete == "max_output_tokens" else incomplete
    elif any(p["type"] == "tool_call" for p in parts):
        reason = "tool_call"
    else:
        reason = "stop"
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


_RESPONSE_READERS: dict[str, Callable[[dict[str, Json]], list[ChatMessage]]] = {
    "openai_chat": _openai_chat_response,
    "letta_stream": _letta_stream_response,
    "anthropic": _anthropic_response,
    "google": _google_response,
    "openai_responses": _openai_responses_response,
}
