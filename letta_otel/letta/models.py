"""Typed views of the Letta REST objects letta-otel reads.

They are msgspec structs: a response is decoded straight from its JSON bytes into
them, in C (about four times cheaper than JSON to dicts to pydantic models, and
2-3 of those documents are read per step). Every struct ignores unknown fields (newer
servers add them), accepts ``null`` for everything the samples show as nullable and
converts laxly, as a JSON client should (``"5"`` for an int). Timestamps are RFC 3339
with or without a zone: Letta 0.16.8 serves ``run.completed_at`` zone-less; it is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import msgspec
from msgspec.structs import force_setattr

STEP_TERMINAL_STATUSES = frozenset({"success", "failed", "cancelled"})
RUN_TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})

# What a document that is JSON but not of a model's shape raises.
ModelError = msgspec.ValidationError


def describe(error: ModelError) -> str:
    """A validation error as "where: what" (msgspec says "what - at `$.where`")."""
    text = str(error)
    what, found, where = text.rpartition(" - at `$")
    if not found:
        return text
    return f"{where.rstrip('`').lstrip('.') or '<root>'}: {what}"


class LettaModel(msgspec.Struct, frozen=True, kw_only=True):
    """Immutable, compared by value, unknown fields ignored."""


T = TypeVar("T")


def convert(model: type[T], document: Any) -> T:
    """``model`` (or ``list[Model]``, ...) from an already decoded JSON document.

    Raises :data:`ModelError` when the document does not have the model's shape."""
    return msgspec.convert(document, model, strict=False)


@cache
def json_decoder(model: Any) -> msgspec.json.Decoder[Any]:
    """A decoder of JSON bytes straight into ``model`` (one per type, reused).

    Its ``decode`` raises :data:`ModelError` for JSON of another shape and
    ``msgspec.DecodeError`` for bytes that are not JSON."""
    return msgspec.json.Decoder(model, strict=False)


def _zone_naive_as_utc(obj: LettaModel, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value.tzinfo is None:
            force_setattr(obj, name, value.replace(tzinfo=UTC))


class ErrorData(LettaModel, frozen=True, kw_only=True):
    message: str | None = None
    traceback: str | None = None
    details: Any = None


class Step(LettaModel, frozen=True, kw_only=True):
    """``GET /v1/steps/{id}``. Carries no timestamp of its own."""

    id: str
    status: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    organization_id: str | None = None
    project_id: str | None = None
    provider_name: str | None = None
    provider_category: str | None = None
    model: str | None = None
    model_handle: str | None = None
    model_endpoint: str | None = None
    context_window_limit: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    prompt_tokens_details: dict[str, Any] | None = None
    completion_tokens_details: dict[str, Any] | None = None
    stop_reason: str | None = None
    trace_id: str | None = None
    request_id: str | None = None
    error_type: str | None = None
    error_data: ErrorData | None = None
    feedback: str | None = None
    tags: list[str] | None = None
    origin: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in STEP_TERMINAL_STATUSES


class ProviderTrace(LettaModel, frozen=True, kw_only=True):
    """``GET /v1/steps/{id}/trace``: the raw provider request and response."""

    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    step_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    agent_tags: list[str] | None = None
    call_type: str | None = None
    source: str | None = None
    latency_ms: float | None = None
    request_json: dict[str, Any] | None = None
    response_json: dict[str, Any] | None = None
    llm_config: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _zone_naive_as_utc(self, "created_at", "updated_at")


class StepMetrics(LettaModel, frozen=True, kw_only=True):
    """``GET /v1/steps/{id}/metrics``: epoch-ns start times and ns durations."""

    id: str | None = None
    step_start_ns: int | None = None
    llm_request_start_ns: int | None = None
    llm_request_ns: int | None = None
    tool_execution_ns: int | None = None
    step_ns: int | None = None


class ToolCall(LettaModel, frozen=True, kw_only=True):
    name: str | None = None
    arguments: str | None = None
    tool_call_id: str | None = None


class ToolReturn(LettaModel, frozen=True, kw_only=True):
    tool_call_id: str | None = None
    status: str | None = None
    tool_return: Any = None
    stdout: Any = None
    stderr: Any = None


class Message(LettaModel, frozen=True, kw_only=True):
    """One LettaMessage from ``GET /v1/steps/{id}/messages``; only the parts we map."""

    id: str | None = None
    message_type: str | None = None
    date: datetime | None = None
    name: str | None = None
    step_id: str | None = None
    run_id: str | None = None
    tool_call: ToolCall | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    status: str | None = None
    tool_return: Any = None
    tool_returns: list[ToolReturn] | None = None
    stdout: Any = None
    stderr: Any = None

    def __post_init__(self) -> None:
        _zone_naive_as_utc(self, "date")


class Run(LettaModel, frozen=True, kw_only=True):
    """``GET /v1/runs/{id}``."""

    id: str
    status: str | None = None
    agent_id: str | None = None
    conversation_id: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    background: bool | None = None
    metadata: dict[str, Any] | None = None
    stop_reason: str | None = None
    ttft_ns: int | None = None
    total_duration_ns: int | None = None

    def __post_init__(self) -> None:
        _zone_naive_as_utc(self, "created_at", "completed_at")

    @property
    def is_terminal(self) -> bool:
        return self.status in RUN_TERMINAL_STATUSES

    @property
    def run_type(self) -> str | None:
        value = (self.metadata or {}).get("run_type")
        return value if isinstance(value, str) else None

    @property
    def error(self) -> Any:
        return (self.metadata or {}).get("error")


class Agent(LettaModel, frozen=True, kw_only=True):
    """``GET /v1/agents/{id}``; only the identity is used."""

    id: str
    name: str | None = None
    agent_type: str | None = None
    tags: list[str] | None = None
    project_id: str | None = None
