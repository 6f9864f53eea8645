"""Content blocks: the typed items OpenAI chat, Anthropic, Letta and the Responses API
share (``{"type": ..., ...}``), each as semconv parts (:func:`block_parts`).

Block types do not collide between these APIs, so one table reads them all; an unknown
type is kept as a generic part, opaque provider data (redacted reasoning) is left out.
"""

from __future__ import annotations

from collections.abc import Callable

from letta_otel.mapping.content.parts import (
    Json,
    Part,
    as_dict,
    as_list,
    as_str,
    blob_part,
    data_url_part,
    generic_part,
    reasoning_part,
    text_part,
    tool_call_part,
    tool_response_part,
    uri_part,
)


def _image_url_part(block: dict[str, Json]) -> Part | None:
    raw = block.get("image_url")
    url = as_str(as_dict(raw).get("url")) or as_str(raw)
    if not url:
        return None
    return data_url_part(url) if url.startswith("data:") else uri_part(None, url, "image")


def _anthropic_source(block: dict[str, Json], modality: str) -> Part | None:
    source = as_dict(block.get("source"))
    mime = as_str(source.get("media_type"))
    if source.get("type") == "base64":
        return blob_part(mime, source.get("data"), modality)
    url = as_str(source.get("url"))
    if url:
        return uri_part(mime, url, modality)
    return generic_part(block)


def tool_result_response(content: Json) -> Json:
    """Anthropic ``tool_result.content``: a string or a list of blocks."""
    blocks = as_list(content)
    if blocks and all(as_dict(b).get("type") == "text" for b in blocks):
        return "".join(as_str(as_dict(b).get("text")) or "" for b in blocks)
    if blocks:
        return [p for b in blocks for p in block_parts(b)]
    return content


def _text_block(block: dict[str, Json]) -> list[Part]:
    text = as_str(block.get("text"))
    return [text_part(text)] if text is not None else []


def _tool_use_block(block: dict[str, Json]) -> list[Part]:
    return [tool_call_part(block.get("id"), block.get("name"), block.get("input"))]


def _function_call_block(block: dict[str, Json]) -> list[Part]:
    return [
        tool_call_part(
            block.get("call_id") or block.get("id"), block.get("name"), block.get("arguments")
        )
    ]


def _function_output_block(block: dict[str, Json]) -> list[Part]:
    return [tool_response_part(block.get("call_id"), block.get("output"))]


def _tool_result_block(block: dict[str, Json]) -> list[Part]:
    return [
        tool_response_part(block.get("tool_use_id"), tool_result_response(block.get("content")))
    ]


def _thinking_block(block: dict[str, Json]) -> list[Part]:
    part = reasoning_part(block.get("thinking"))
    return [part] if part else []


def _letta_reasoning_block(block: dict[str, Json]) -> list[Part]:
    part = reasoning_part(block.get("reasoning"))
    return [part] if part else []


def _responses_reasoning_block(block: dict[str, Json]) -> list[Part]:
    part = reasoning_part(block.get("summary"))
    return [part] if part else []


def _server_tool_use_block(block: dict[str, Json]) -> list[Part]:
    name = as_str(block.get("name")) or ""
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
    url = as_str(block.get("image_url"))
    if url:
        return [data_url_part(url) if url.startswith("data:") else uri_part(None, url, "image")]
    part = generic_part(block)
    return [part] if part else []


def _input_audio_block(block: dict[str, Json]) -> list[Part]:
    audio = as_dict(block.get("input_audio"))
    fmt = as_str(audio.get("format"))
    return [blob_part(f"audio/{fmt}" if fmt else None, audio.get("data"), "audio")]


def _refusal_block(block: dict[str, Json]) -> list[Part]:
    text = as_str(block.get("refusal"))
    return [text_part(text)] if text is not None else []


def _letta_tool_call_block(block: dict[str, Json]) -> list[Part]:
    """Letta's own ``tool_call`` content (id, name, input)."""
    arguments = block.get("input") if "input" in block else block.get("arguments")
    return [tool_call_part(block.get("id"), block.get("name"), arguments)]


def _letta_tool_return_block(block: dict[str, Json]) -> list[Part]:
    return [tool_response_part(block.get("tool_call_id"), block.get("content"))]


def _file_block(block: dict[str, Json]) -> list[Part]:
    """OpenAI chat ``{"type": "file", "file": {"file_id" | "file_data", "filename"}}``."""
    file = as_dict(block.get("file"))
    file_id = as_str(file.get("file_id"))
    if file_id:
        return [{"type": "file", "modality": "document", "file_id": file_id}]
    part = generic_part(block)
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
        return [text_part(block)]
    b = as_dict(block)
    kind = as_str(b.get("type"))
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
    part = generic_part(b)
    return [part] if part else []


def content_parts(content: Json) -> list[Part]:
    if isinstance(content, str):
        return [text_part(content)]
    return [p for block in as_list(content) for p in block_parts(block)]
