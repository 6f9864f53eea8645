"""Validate captured content against the GenAI semconv v1.41.1 JSON schemas.

The schemas in ``tests/fixtures/semconv-genai-v1.41.1`` accept any part (or tool definition)
through their catch-all ``GenericPart``/``GenericToolDefinition``; so besides the whole
document, every part whose ``type`` has a specific definition (``text``, ``tool_call``,
``tool_call_response``, ``reasoning``, ``blob``, ``uri``, ``file``, ``server_tool_call``,
``server_tool_call_response``) and every ``function`` tool definition is validated against
that definition too. That is what makes a wrong field name fail.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

# Vendored in the repository: a lone clone must pass.
SCHEMA_DIR = Path(__file__).resolve().parent / "fixtures" / "semconv-genai-v1.41.1"

FILES = {
    "gen_ai.input.messages": "gen-ai-input-messages.json",
    "gen_ai.output.messages": "gen-ai-output-messages.json",
    "gen_ai.system_instructions": "gen-ai-system-instructions.json",
    "gen_ai.tool.definitions": "gen-ai-tool-definitions.json",
}
PART_DEFS = {
    "text": "TextPart",
    "tool_call": "ToolCallRequestPart",
    "tool_call_response": "ToolCallResponsePart",
    "reasoning": "ReasoningPart",
    "blob": "BlobPart",
    "uri": "UriPart",
    "file": "FilePart",
    "server_tool_call": "ServerToolCallPart",
    "server_tool_call_response": "ServerToolCallResponsePart",
}


@cache
def _schema(key: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / FILES[key]).read_text())
    return schema


@cache
def _validator(key: str, definition: str | None = None) -> jsonschema.protocols.Validator:
    schema = _schema(key)
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _check_part(key: str, part: Any) -> None:
    definition = PART_DEFS.get(part.get("type")) if isinstance(part, dict) else None
    if definition and definition in _schema(key)["$defs"]:
        _validator(key, definition).validate(part)


def validate(key: str, value: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``value`` follows ``key``'s schema.

    ``value`` is the structured form (``json.loads`` of the span attribute).
    """
    _validator(key).validate(value)
    if key == "gen_ai.tool.definitions":
        for tool in value:
            if tool.get("type") == "function":
                _validator(key, "FunctionToolDefinition").validate(tool)
    elif key == "gen_ai.system_instructions":
        for part in value:
            _check_part(key, part)
    else:
        for message in value:
            for part in message["parts"]:
                _check_part(key, part)


def plain(value: Any) -> Any:
    """An event's structured value as decoded/stored (tuples) back to JSON lists."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
