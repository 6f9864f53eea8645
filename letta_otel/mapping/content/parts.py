"""Content parts (semconv ``gen-ai-*-messages.json``) and the readers that build them.

The small, total readers every provider format uses (a wrong type reads as empty, never
an error) and one builder per part type: ``text``, ``tool_call``,
``tool_call_response``, ``reasoning``, ``blob``, ``uri`` and the ``GenericPart`` kept
for blocks the conventions do not define.
"""

from __future__ import annotations

import json
from typing import Any

Json = Any
Part = dict[str, Json]
ChatMessage = dict[str, Json]


def as_dict(value: Json) -> dict[str, Json]:
    return value if isinstance(value, dict) else {}


def as_list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def as_str(value: Json) -> str | None:
    return value if isinstance(value, str) else None


def camel_or_snake(obj: dict[str, Json], camel: str, snake: str) -> Json:
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


def text_part(content: str) -> Part:
    return {"type": "text", "content": content}


def tool_call_part(call_id: Json, name: Json, arguments: Json) -> Part:
    part: Part = {"type": "tool_call", "name": name if isinstance(name, str) else ""}
    if isinstance(call_id, str) and call_id:
        part["id"] = call_id
    if arguments is not None:
        part["arguments"] = parse_json_text(arguments)
    return part


def tool_response_part(call_id: Json, response: Json) -> Part:
    part: Part = {"type": "tool_call_response", "response": parse_json_text(response)}
    if isinstance(call_id, str) and call_id:
        part["id"] = call_id
    return part


def _modality(mime: str | None, default: str) -> str:
    major = (mime or "").split("/", 1)[0]
    return major if major in ("image", "video", "audio") else default


def blob_part(mime: str | None, data: Json, default_modality: str) -> Part:
    part: Part = {
        "type": "blob",
        "modality": _modality(mime, default_modality),
        "content": data if isinstance(data, str) else "",
    }
    if mime:
        part["mime_type"] = mime
    return part


def uri_part(mime: str | None, uri: str, default_modality: str) -> Part:
    part: Part = {"type": "uri", "modality": _modality(mime, default_modality), "uri": uri}
    if mime:
        part["mime_type"] = mime
    return part


def data_url_part(url: str) -> Part:
    """``data:image/png;base64,AAAA`` is inline data: a blob, not a uri (schema note)."""
    header, _, data = url.partition(",")
    mime = header[5:].split(";", 1)[0] or None
    return blob_part(mime, data, "image")


# Part types the conventions define a shape for: a block that merely shares the name
# (another API's "file", a mangled payload) must not claim that shape.
DEFINED_PART_TYPES = frozenset(
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


def generic_part(block: dict[str, Json]) -> Part | None:
    """An unknown block kept as a ``GenericPart`` (any ``type`` and properties)."""
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        return None
    if kind in DEFINED_PART_TYPES:
        return {**block, "type": f"provider.{kind}"}
    return dict(block)


def reasoning_part(text: Json) -> Part | None:
    if isinstance(text, str):
        return {"type": "reasoning", "content": text}
    if isinstance(text, list):  # Responses reasoning summaries: [{"text": ...}]
        joined = "\n".join(as_str(as_dict(t).get("text")) or "" for t in text)
        return {"type": "reasoning", "content": joined}
    return None
