"""The attributes of each span, read from a Letta record (pure).

``agent_step`` spans get the step's own fields (:func:`step_attributes`), ``chat`` spans
the GenAI call's (:func:`llm_attributes`: model, usage, request parameters, response id
and finish reasons, server address), ``execute_tool`` spans the tool call's
(:func:`tool_attributes`). Missing values are left out, never sent empty (:func:`put`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from letta_otel.letta.models import Run, Step
from letta_otel.mapping import provider
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.records import StepRecord

Attrs = dict[str, AttributeValue]


def put(attrs: Attrs, key: str, value: AttributeValue | None) -> None:
    """Set an attribute unless the value is missing (None, empty string or list)."""
    # Most values are truthy: one test decides (about 20 calls per span).
    if value or (value is not None and not isinstance(value, str | tuple | list)):
        attrs[key] = value


@lru_cache(maxsize=256)  # a deployment has a handful of endpoints; urlsplit is not cheap
def endpoint_address(url: str | None) -> tuple[str, int | None] | None:
    """``server.address``/``server.port`` of a model endpoint or base URL."""
    if not url:
        return None
    try:
        parts = urlsplit(url if "//" in url else f"//{url}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return host, port


def put_server(attrs: Attrs, address: tuple[str, int | None] | None) -> None:
    if address:
        put(attrs, sc.SERVER_ADDRESS, address[0])
        put(attrs, sc.SERVER_PORT, address[1])


def identity(step: Step) -> Attrs:
    attrs: Attrs = {sc.LETTA_STEP_ID: step.id}
    put(attrs, sc.LETTA_RUN_ID, step.run_id)
    put(attrs, sc.LETTA_AGENT_ID, step.agent_id)
    return attrs


def conversation_id(run: Run | None, agent_id: str | None) -> str | None:
    # Letta keeps one default conversation per agent; explicit ones have their own id.
    if run is not None and run.conversation_id:
        return run.conversation_id
    return agent_id


def step_attributes(record: StepRecord, timing_source: str) -> Attrs:
    step, metrics, agent = record.step, record.metrics, record.agent
    attrs = identity(step)
    put(attrs, sc.LETTA_STEP_STATUS, step.status or "unknown")
    put(attrs, sc.LETTA_STEP_STOP_REASON, step.stop_reason)
    put(attrs, sc.LETTA_STEP_ERROR_TYPE, step.error_type)
    put(attrs, sc.LETTA_TRACE_ID, step.trace_id)
    # The model and provider from the step record itself, so every step span (a failed
    # one without a provider trace above all) can be grouped by them; the same values
    # the letta.steps counter carries.
    put(attrs, sc.REQUEST_MODEL, request_model(record))
    put(attrs, sc.PROVIDER_NAME, sc.genai_provider_name(step.provider_name))
    attrs[sc.OPENINFERENCE_SPAN_KIND] = sc.OPENINFERENCE_CHAIN
    put(attrs, sc.LETTA_MODEL_HANDLE, step.model_handle)
    put(attrs, sc.LETTA_PROVIDER_NAME, step.provider_name)
    put(attrs, sc.LETTA_PROVIDER_CATEGORY, step.provider_category)
    put(attrs, sc.LETTA_PROJECT_ID, step.project_id)
    put(attrs, sc.LETTA_STEP_TAGS, tuple(step.tags or ()))
    put(attrs, sc.LETTA_STEP_FEEDBACK, step.feedback)
    put(attrs, sc.AGENT_ID, step.agent_id)
    put(attrs, sc.AGENT_NAME, agent.name if agent else None)
    put(attrs, sc.CONVERSATION_ID, conversation_id(record.run, step.agent_id))
    put(attrs, sc.LETTA_TIMING_SOURCE, timing_source)
    if metrics is not None:
        put(attrs, sc.LETTA_STEP_NS, metrics.step_ns)
        put(attrs, sc.LETTA_STEP_LLM_REQUEST_NS, metrics.llm_request_ns)
        put(attrs, sc.LETTA_STEP_TOOL_EXECUTION_NS, metrics.tool_execution_ns)
    if record.incomplete:
        attrs[sc.LETTA_STEP_INCOMPLETE] = True
    if "trace" in record.missing or record.trace is None:
        attrs[sc.LETTA_PROVIDER_TRACE_MISSING] = True
    if step.status == "failed":
        attrs[sc.ERROR_TYPE] = step.error_type or step.stop_reason or sc.ERROR_TYPE_OTHER
    return attrs


def request_model(record: StepRecord) -> str:
    request = record.trace.request_json if record.trace else None
    model = (request or {}).get("model")
    if isinstance(model, str) and model:
        return model
    return record.step.model or ""


def llm_attributes(record: StepRecord) -> Attrs:
    """The chat span's attributes (a fresh copy: callers add to it)."""
    cached = record.memo.get("llm_attributes")
    if cached is None:
        cached = record.memo["llm_attributes"] = _compute_llm_attributes(record)
    return dict(cast("Attrs", cached))


def _compute_llm_attributes(record: StepRecord) -> Attrs:
    step, trace = record.step, record.trace
    request = trace.request_json if trace else None
    response = trace.response_json if trace else None
    config = (trace.llm_config if trace else None) or {}
    attrs = identity(step)
    attrs[sc.OPERATION_NAME] = sc.OP_CHAT
    endpoint_type = config.get("model_endpoint_type")
    put(
        attrs,
        sc.PROVIDER_NAME,
        sc.genai_provider_name(endpoint_type if isinstance(endpoint_type, str) else None)
        or sc.genai_provider_name(step.provider_name),
    )
    put(attrs, sc.REQUEST_MODEL, request_model(record))
    put(attrs, sc.RESPONSE_MODEL, provider.response_model(response))
    put(attrs, sc.RESPONSE_ID, provider.response_id(response))
    put(attrs, sc.RESPONSE_FINISH_REASONS, provider.finish_reasons(response))
    _put_usage(attrs, step, response)
    _put_request_params(attrs, provider.request_params(request, config))
    put(attrs, sc.CONVERSATION_ID, conversation_id(record.run, step.agent_id))
    endpoint = step.model_endpoint or config.get("model_endpoint")
    put_server(attrs, endpoint_address(endpoint if isinstance(endpoint, str) else None))
    put(attrs, sc.LETTA_CALL_TYPE, trace.call_type if trace else None)
    put(attrs, sc.LETTA_MODEL_HANDLE, step.model_handle or _str_or_none(config.get("handle")))
    put(attrs, sc.LETTA_PROVIDER_NAME, step.provider_name)
    put(attrs, sc.LETTA_PROVIDER_CATEGORY, step.provider_category)
    put(attrs, sc.LETTA_PROVIDER_TRACE_ID, trace.id if trace else None)
    put(attrs, sc.LETTA_CONTEXT_WINDOW_LIMIT, step.context_window_limit)
    put(attrs, sc.LETTA_TOTAL_TOKENS, step.total_tokens)
    if trace is None:
        attrs[sc.LETTA_PROVIDER_TRACE_MISSING] = True
    error = llm_error_type(record)
    if error:
        attrs[sc.ERROR_TYPE] = error
    return attrs


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _detail(details: Mapping[str, Any] | None, *keys: str) -> int | None:
    for key in keys:
        value = (details or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _put_usage(attrs: Attrs, step: Step, response: dict[str, Any] | None) -> None:
    # The step's own counters are Letta's normalised view (Anthropic prompt_tokens
    # already include cache reads/writes, as gen_ai.usage.input_tokens requires).
    pd, cd = step.prompt_tokens_details, step.completion_tokens_details
    own = (
        step.prompt_tokens,
        step.completion_tokens,
        step.cached_input_tokens
        if step.cached_input_tokens is not None
        else _detail(pd, "cache_read_tokens", "cached_tokens"),
        step.cache_write_tokens
        if step.cache_write_tokens is not None
        else _detail(pd, "cache_creation_tokens"),
        step.reasoning_tokens
        if step.reasoning_tokens is not None
        else _detail(cd, "reasoning_tokens"),
    )
    # The payload is read only when the step lacks a counter (usually it has them all).
    fallback = provider.response_usage(response) if None in own else _NO_USAGE
    for key, value, payload in zip(_USAGE_KEYS, own, fallback, strict=True):
        put(attrs, key, value if value is not None else payload)


_USAGE_KEYS = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
)


_NO_USAGE = provider.Usage()


def _put_request_params(attrs: Attrs, params: provider.RequestParams) -> None:
    put(attrs, sc.REQUEST_TEMPERATURE, params.temperature)
    put(attrs, sc.REQUEST_MAX_TOKENS, params.max_tokens)
    put(attrs, sc.REQUEST_TOP_P, params.top_p)
    put(attrs, sc.REQUEST_TOP_K, params.top_k)
    put(attrs, sc.REQUEST_FREQUENCY_PENALTY, params.frequency_penalty)
    put(attrs, sc.REQUEST_PRESENCE_PENALTY, params.presence_penalty)
    put(attrs, sc.REQUEST_STOP_SEQUENCES, params.stop_sequences)
    put(attrs, sc.REQUEST_SEED, params.seed)
    put(attrs, sc.REQUEST_CHOICE_COUNT, params.choice_count)
    put(attrs, sc.REQUEST_STREAM, params.stream)


def llm_error_type(record: StepRecord) -> str | None:
    response = record.trace.response_json if record.trace else None
    from_payload = provider.error_type(response)
    if from_payload:
        return from_payload
    if record.step.status == "failed" and record.step.stop_reason in _LLM_STOP_REASONS:
        return record.step.error_type or record.step.stop_reason
    return None


_LLM_STOP_REASONS = frozenset(
    {
        "llm_api_error",
        "invalid_llm_response",
        "max_tokens_exceeded",
        "context_window_overflow_in_system_prompt",
    }
)


def tool_attributes(
    record: StepRecord, call_id: str, name: str | None, status: str | None
) -> Attrs:
    attrs = identity(record.step)
    attrs[sc.OPERATION_NAME] = sc.OP_EXECUTE_TOOL
    attrs[sc.TOOL_CALL_ID] = call_id
    attrs[sc.TOOL_TYPE] = "function"
    put(attrs, sc.TOOL_NAME, name)
    put(attrs, sc.LETTA_TOOL_STATUS, status)
    if status == "error":
        attrs[sc.ERROR_TYPE] = "tool_error"
    return attrs
