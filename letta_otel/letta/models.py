"""Typed views of the Letta REST objects letta-otel reads.

Every model ignores unknown fields (newer servers add them), accepts ``null`` for
everything the samples show as nullable, and parses timestamps with or without a
zone (Letta 0.16.8 serves ``run.completed_at`` zone-less; it is UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

STEP_TERMINAL_STATUSES = frozenset({"success", "failed", "cancelled"})
RUN_TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})


def _utc(value: Any) -> Any:
    """Zone-less timestamps are UTC; anything else is left to pydantic."""
    if isinstance(value, str) and value:
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return value
        if parsed.tzinfo:
            return parsed
        # The same moment as parsed.replace(tzinfo=UTC), at a quarter of its cost on 3.11.
        return datetime.combine(parsed.date(), parsed.time(), UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_utc)]


def _null_to_empty(value: Any) -> Any:
    return [] if value is None else value


StrList = Annotated[list[str], BeforeValidator(_null_to_empty)]

# The validation context of documents freshly decoded from JSON (``model_validate(doc,
# context=FROM_JSON)``): their objects' keys are strings and nobody else holds them.
FROM_JSON: Any = {"from_json": True}


def _json_object(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    """A JSON document's object is kept as it is; pydantic would copy it key by key
    (half of a lean trace's validation). Any other input is validated as usual."""
    if info.context is FROM_JSON and type(value) is dict:
        return value
    return handler(value)


# ``dict[str, Any]`` (checked and copied as ever, except for a JSON document's objects).
# Only for objects of many keys: a small one costs less to copy than the Python call.
JsonObject = Annotated[dict[str, Any], WrapValidator(_json_object)]


class _LettaModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ErrorData(_LettaModel):
    message: str | None = None
    traceback: str | None = None
    details: Any = None


class Step(_LettaModel):
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
    tags: StrList = Field(default_factory=list)
    origin: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in STEP_TERMINAL_STATUSES


class ProviderTrace(_LettaModel):
    """``GET /v1/steps/{id}/trace``: the raw provider request and response."""

    id: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    step_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    agent_tags: StrList = Field(default_factory=list)
    call_type: str | None = None
    source: str | None = None
    latency_ms: float | None = None
    request_json: JsonObject | None = None
    response_json: JsonObject | None = None
    llm_config: JsonObject | None = None


class StepMetrics(_LettaModel):
    """``GET /v1/steps/{id}/metrics``: epoch-ns start times and ns durations."""

    id: str | None = None
    step_start_ns: int | None = None
    llm_request_start_ns: int | None = None
    llm_request_ns: int | None = None
    tool_execution_ns: int | None = None
    step_ns: int | None = None


class ToolCall(_LettaModel):
    name: str | None = None
    arguments: str | None = None
    tool_call_id: str | None = None


class ToolReturn(_LettaModel):
    tool_call_id: str | None = None
    status: str | None = None
    tool_return: Any = None
    stdout: Any = None
    stderr: Any = None


class Message(_LettaModel):
    """One LettaMessage from ``GET /v1/steps/{id}/messages``; only the parts we map."""

    id: str | None = None
    message_type: str | None = None
    date: UtcDatetime | None = None
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


class Run(_LettaModel):
    """``GET /v1/runs/{id}``."""

    id: str
    status: str | None = None
    agent_id: str | None = None
    conversation_id: str | None = None
    created_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    background: bool | None = None
    metadata: dict[str, Any] | None = None
    stop_reason: str | None = None
    ttft_ns: int | None = None
    total_duration_ns: int | None = None

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


class Agent(_LettaModel):
    """``GET /v1/agents/{id}``; only the identity is used."""

    id: str
    name: str | None = None
    agent_type: str | None = None
    tags: StrList = Field(default_factory=list)
    project_id: str | None = None
