"""Pure mapping: Letta records → OpenTelemetry ``ReadableSpan``s.

Span model (one trace per run, see ``ids``)::

    invoke_agent {agent}        CLIENT    one per run          (map_run)
    └─ agent_step               INTERNAL  one per step         (map_step)
       ├─ chat {model}          CLIENT    the LLM call
       └─ execute_tool {tool}   INTERNAL  one per tool call

No I/O happens here: the same records always give the same spans, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from letta_otel.letta.models import ErrorData, Message, Run, Step
from letta_otel.mapping import ids, provider
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.capture import DEFAULT_POLICY, ContentPolicy, capture_llm, capture_tool
from letta_otel.mapping.clean import (
    INT64_MAX,
    clean_attrs,
    clean_attrs_sized,
    clean_text,
    cut_text,
)
from letta_otel.mapping.limits import Captured, finalize
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.timing import Window, run_window, step_timing

STEP_SPAN_NAME = "agent_step"
MAX_STACKTRACE_BYTES = 8192
MAX_STATUS_MESSAGE_BYTES = 1024

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)  # immutable: one shared by every span without an error


@dataclass(frozen=True)
class MappingContext:
    """What every span shares: who produced it and where Letta lives."""

    resource: Resource
    scope: InstrumentationScope
    letta_server: tuple[str, int | None] | None = None
    # Content capture, redaction and attribute budgets (None: capture nothing, defaults).
    content: ContentPolicy | None = None

    @property
    def policy(self) -> ContentPolicy:
        return self.content or DEFAULT_POLICY


Attrs = dict[str, AttributeValue]


def _put(attrs: Attrs, key: str, value: AttributeValue | None) -> None:
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


def _put_server(attrs: Attrs, address: tuple[str, int | None] | None) -> None:
    if address:
        _put(attrs, sc.SERVER_ADDRESS, address[0])
        _put(attrs, sc.SERVER_PORT, address[1])


# OTLP times are unsigned 64-bit ns; stay within signed range for every backend.
MAX_TIME_NS = INT64_MAX


def _clamp_time(ns: int) -> int:
    return min(max(ns, 0), MAX_TIME_NS)


def _make_span(
    ctx: MappingContext,
    *,
    name: str,
    trace_id: int,
    span_id: int,
    parent: SpanContext | None,
    kind: SpanKind,
    window: Window,
    attributes: Attrs,
    status: Status,
    events: Sequence[Event] = (),
    captured: Captured | None = None,
) -> ReadableSpan:
    start = _clamp_time(window.start_ns)
    if status.description:
        status = Status(status.status_code, clean_text(status.description))
    policy = ctx.policy
    limits = policy.limits
    # Cleaning also says whether a string is long enough for the byte limit to cut it.
    attrs, long = clean_attrs_sized(attributes, limits.max_attribute_bytes // 4)
    span_events = (
        tuple(Event(e.name, clean_attrs(e.attributes), _clamp_time(e.timestamp)) for e in events)
        if events
        else ()
    )
    span = ReadableSpan(
        name=clean_text(name),
        context=SpanContext(trace_id, span_id, False, _SAMPLED),
        parent=parent,
        resource=ctx.resource,
        attributes=attrs,
        events=span_events,
        kind=kind,
        status=status,
        start_time=start,
        end_time=max(_clamp_time(window.end_ns), start),
        instrumentation_scope=ctx.scope,
    )
    return finalize(span, captured, limits, policy.redactor, long_strings=long)


# --- step -------------------------------------------------------------------------


def map_step(record: StepRecord, ctx: MappingContext, trace_id: int) -> list[ReadableSpan]:
    """The ``agent_step`` span with its ``chat`` and ``execute_tool`` children."""
    step = record.step
    tools = _tool_calls(record)
    timing = step_timing(record, len(tools))
    step_span_id = ids.span_id("step", step.id)
    run_parent = (
        SpanContext(trace_id, ids.span_id("run", step.run_id), False, _SAMPLED)
        if step.run_id
        else None
    )

    spans = [
        _make_span(
            ctx,
            name=STEP_SPAN_NAME,
            trace_id=trace_id,
            span_id=step_span_id,
            parent=run_parent,
            kind=SpanKind.INTERNAL,
            window=timing.step,
            attributes=_step_attributes(record, timing.source),
            status=_step_status(record),
            events=_exception_events(step.error_type, step.error_data, timing.step.end_ns),
        )
    ]
    step_context = spans[0].context  # the children's parent: the same value, built once
    policy = ctx.policy
    if timing.llm is not None or record.trace is not None:
        llm_attrs = llm_attributes(record)
        spans.append(
            _make_span(
                ctx,
                name=f"{sc.OP_CHAT} {request_model(record)}".rstrip(),
                trace_id=trace_id,
                span_id=ids.span_id("llm", step.id),
                parent=step_context,
                kind=SpanKind.CLIENT,
                window=timing.llm or timing.step,
                attributes=llm_attrs,
                status=_llm_status(record),
                captured=capture_llm(record, llm_attrs, policy) if policy.capture else None,
            )
        )
    for (call_id, name, status), window in zip(tools, timing.tools, strict=True):
        spans.append(
            _make_span(
                ctx,
                name=f"{sc.OP_EXECUTE_TOOL} {name}" if name else sc.OP_EXECUTE_TOOL,
                trace_id=trace_id,
                span_id=ids.span_id("tool", f"{step.id}/{call_id}"),
                parent=step_context,
                kind=SpanKind.INTERNAL,
                window=window,
                attributes=_tool_attributes(record, call_id, name, status),
                status=Status(StatusCode.ERROR, f"tool {name} failed")
                if status == "error"
                else _UNSET,
                captured=capture_tool(record, call_id, status, policy) if policy.on_spans else None,
            )
        )
    return spans


def _identity(step: Step) -> Attrs:
    attrs: Attrs = {sc.LETTA_STEP_ID: step.id}
    _put(attrs, sc.LETTA_RUN_ID, step.run_id)
    _put(attrs, sc.LETTA_AGENT_ID, step.agent_id)
    return attrs


def _conversation_id(run: Run | None, agent_id: str | None) -> str | None:
    # Letta keeps one default conversation per agent; explicit ones have their own id.
    if run is not None and run.conversation_id:
        return run.conversation_id
    return agent_id


def _step_attributes(record: StepRecord, timing_source: str) -> Attrs:
    step, metrics, agent = record.step, record.metrics, record.agent
    attrs = _identity(step)
    _put(attrs, sc.LETTA_STEP_STATUS, step.status or "unknown")
    _put(attrs, sc.LETTA_STEP_STOP_REASON, step.stop_reason)
    _put(attrs, sc.LETTA_STEP_ERROR_TYPE, step.error_type)
    _put(attrs, sc.LETTA_TRACE_ID, step.trace_id)
    _put(attrs, sc.LETTA_MODEL_HANDLE, step.model_handle)
    _put(attrs, sc.LETTA_PROVIDER_NAME, step.provider_name)
    _put(attrs, sc.LETTA_PROVIDER_CATEGORY, step.provider_category)
    _put(attrs, sc.LETTA_PROJECT_ID, step.project_id)
    _put(attrs, sc.LETTA_STEP_TAGS, tuple(step.tags or ()))
    _put(attrs, sc.LETTA_STEP_FEEDBACK, step.feedback)
    _put(attrs, sc.AGENT_ID, step.agent_id)
    _put(attrs, sc.AGENT_NAME, agent.name if agent else None)
    _put(attrs, sc.CONVERSATION_ID, _conversation_id(record.run, step.agent_id))
    _put(attrs, sc.LETTA_TIMING_SOURCE, timing_source)
    if metrics is not None:
        _put(attrs, sc.LETTA_STEP_NS, metrics.step_ns)
        _put(attrs, sc.LETTA_STEP_LLM_REQUEST_NS, metrics.llm_request_ns)
        _put(attrs, sc.LETTA_STEP_TOOL_EXECUTION_NS, metrics.tool_execution_ns)
    if record.incomplete:
        attrs[sc.LETTA_STEP_INCOMPLETE] = True
    if "trace" in record.missing or record.trace is None:
        attrs[sc.LETTA_PROVIDER_TRACE_MISSING] = True
    if step.status == "failed":
        attrs[sc.ERROR_TYPE] = step.error_type or step.stop_reason or sc.ERROR_TYPE_OTHER
    return attrs


def _step_status(record: StepRecord) -> Status:
    step = record.step
    if step.status != "failed":
        # Success is left UNSET (semconv); cancelled and incomplete are not errors.
        return _UNSET
    message = (step.error_data.message if step.error_data else None) or step.stop_reason or ""
    return Status(StatusCode.ERROR, cut_text(message, MAX_STATUS_MESSAGE_BYTES))


def _exception_events(error_type: str | None, error: ErrorData | None, at_ns: int) -> list[Event]:
    if error is None or not (error.message or error.traceback):
        return []
    attrs: Attrs = {sc.EXCEPTION_TYPE: error_type or sc.ERROR_TYPE_OTHER}
    _put(attrs, sc.EXCEPTION_MESSAGE, cut_text(error.message or "", MAX_STACKTRACE_BYTES))
    if error.traceback:
        # The tail holds the frame that raised; keep it when cutting.
        attrs[sc.EXCEPTION_STACKTRACE] = cut_text(
            error.traceback, MAX_STACKTRACE_BYTES, keep_tail=True
        )
    return [Event("exception", attrs, timestamp=at_ns)]


# --- LLM call -----------------------------------------------------------------------


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
    attrs = _identity(step)
    attrs[sc.OPERATION_NAME] = sc.OP_CHAT
    endpoint_type = config.get("model_endpoint_type")
    _put(
        attrs,
        sc.PROVIDER_NAME,
        sc.genai_provider_name(endpoint_type if isinstance(endpoint_type, str) else None)
        or sc.genai_provider_name(step.provider_name),
    )
    _put(attrs, sc.REQUEST_MODEL, request_model(record))
    _put(attrs, sc.RESPONSE_MODEL, provider.response_model(response))
    _put(attrs, sc.RESPONSE_ID, provider.response_id(response))
    _put(attrs, sc.RESPONSE_FINISH_REASONS, provider.finish_reasons(response))
    _put_usage(attrs, step, response)
    _put_request_params(attrs, provider.request_params(request, config))
    _put(attrs, sc.CONVERSATION_ID, _conversation_id(record.run, step.agent_id))
    endpoint = step.model_endpoint or config.get("model_endpoint")
    _put_server(attrs, endpoint_address(endpoint if isinstance(endpoint, str) else None))
    _put(attrs, sc.LETTA_CALL_TYPE, trace.call_type if trace else None)
    _put(attrs, sc.LETTA_MODEL_HANDLE, step.model_handle or _str_or_none(config.get("handle")))
    _put(attrs, sc.LETTA_PROVIDER_NAME, step.provider_name)
    _put(attrs, sc.LETTA_PROVIDER_CATEGORY, step.provider_category)
    _put(attrs, sc.LETTA_PROVIDER_TRACE_ID, trace.id if trace else None)
    _put(attrs, sc.LETTA_CONTEXT_WINDOW_LIMIT, step.context_window_limit)
    _put(attrs, sc.LETTA_TOTAL_TOKENS, step.total_tokens)
    if trace is None:
        attrs[sc.LETTA_PROVIDER_TRACE_MISSING] = True
    error = _llm_error_type(record)
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
        _put(attrs, key, value if value is not None else payload)


_USAGE_KEYS = (
    sc.USAGE_INPUT_TOKENS,
    sc.USAGE_OUTPUT_TOKENS,
    sc.USAGE_CACHE_READ_INPUT_TOKENS,
    sc.USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc.USAGE_REASONING_OUTPUT_TOKENS,
)
_NO_USAGE = provider.Usage()


def _put_request_params(attrs: Attrs, params: provider.RequestParams) -> None:
    _put(attrs, sc.REQUEST_TEMPERATURE, params.temperature)
    _put(attrs, sc.REQUEST_MAX_TOKENS, params.max_tokens)
    _put(attrs, sc.REQUEST_TOP_P, params.top_p)
    _put(attrs, sc.REQUEST_TOP_K, params.top_k)
    _put(attrs, sc.REQUEST_FREQUENCY_PENALTY, params.frequency_penalty)
    _put(attrs, sc.REQUEST_PRESENCE_PENALTY, params.presence_penalty)
    _put(attrs, sc.REQUEST_STOP_SEQUENCES, params.stop_sequences)
    _put(attrs, sc.REQUEST_SEED, params.seed)
    _put(attrs, sc.REQUEST_CHOICE_COUNT, params.choice_count)
    _put(attrs, sc.REQUEST_STREAM, params.stream)


def _llm_error_type(record: StepRecord) -> str | None:
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


def _llm_status(record: StepRecord) -> Status:
    response = record.trace.response_json if record.trace else None
    if provider.response_kind(response) == "error":
        message = (response or {}).get("error")
        return Status(StatusCode.ERROR, cut_text(str(message or ""), MAX_STATUS_MESSAGE_BYTES))
    if _llm_error_type(record):
        message = record.step.error_data.message if record.step.error_data else None
        return Status(StatusCode.ERROR, cut_text(message or "", MAX_STATUS_MESSAGE_BYTES))
    return _UNSET


# --- tools --------------------------------------------------------------------------

ToolCallInfo = tuple[str, str | None, str | None]  # call id, tool name, return status


def _tool_calls(record: StepRecord) -> list[ToolCallInfo]:
    """Tool calls from the step's messages, then any the provider response adds.

    Messages carry return statuses; the response also names calls Letta rewrote
    into other message types (``send_message`` becomes an ``assistant_message``).
    """
    names: dict[str, str | None] = {}
    statuses: dict[str, str | None] = {}
    for message in record.messages:
        _collect_message_calls(message, names, statuses)
    response = record.trace.response_json if record.trace else None
    for call in provider.tool_calls(response):
        if call.call_id not in names or names[call.call_id] is None:
            names[call.call_id] = call.name
    return [(cid, name, statuses.get(cid)) for cid, name in names.items()]


def _collect_message_calls(
    message: Message, names: dict[str, str | None], statuses: dict[str, str | None]
) -> None:
    if message.message_type == "tool_call_message":
        calls = list(message.tool_calls or []) or ([message.tool_call] if message.tool_call else [])
        for call in calls:
            if call.tool_call_id:
                names.setdefault(call.tool_call_id, call.name)
    elif message.message_type == "tool_return_message":
        returns = list(message.tool_returns or [])
        if returns:
            for ret in returns:
                if ret.tool_call_id:
                    statuses[ret.tool_call_id] = ret.status
        elif message.tool_call_id:
            statuses[message.tool_call_id] = message.status


def _tool_attributes(
    record: StepRecord, call_id: str, name: str | None, status: str | None
) -> Attrs:
    attrs = _identity(record.step)
    attrs[sc.OPERATION_NAME] = sc.OP_EXECUTE_TOOL
    attrs[sc.TOOL_CALL_ID] = call_id
    attrs[sc.TOOL_TYPE] = "function"
    _put(attrs, sc.TOOL_NAME, name)
    _put(attrs, sc.LETTA_TOOL_STATUS, status)
    if status == "error":
        attrs[sc.ERROR_TYPE] = "tool_error"
    return attrs


# --- run ------------------------------------------------------------------------------


def map_run(record: RunRecord, ctx: MappingContext, trace_id: int) -> ReadableSpan:
    """The ``invoke_agent`` span: the root of a run's trace."""
    run, agent = record.run, record.agent
    window, source = run_window(record)
    name = agent.name if agent and agent.name else None
    attrs: Attrs = {
        sc.OPERATION_NAME: sc.OP_INVOKE_AGENT,
        sc.PROVIDER_NAME: sc.LETTA_AGENT_PROVIDER,
        sc.LETTA_RUN_ID: run.id,
    }
    _put(attrs, sc.AGENT_ID, run.agent_id)
    _put(attrs, sc.AGENT_NAME, name)
    _put(attrs, sc.CONVERSATION_ID, _conversation_id(run, run.agent_id))
    _put(attrs, sc.LETTA_AGENT_ID, run.agent_id)
    _put(attrs, sc.LETTA_AGENT_TYPE, agent.agent_type if agent else None)
    _put(attrs, sc.LETTA_AGENT_TAGS, tuple(agent.tags or ()) if agent else None)
    _put(attrs, sc.LETTA_RUN_STATUS, run.status or "unknown")
    _put(attrs, sc.LETTA_RUN_STOP_REASON, run.stop_reason)
    _put(attrs, sc.LETTA_RUN_TYPE, run.run_type)
    _put(attrs, sc.LETTA_RUN_BACKGROUND, run.background)
    _put(attrs, sc.LETTA_RUN_TTFT_NS, run.ttft_ns)
    _put(attrs, sc.LETTA_TIMING_SOURCE, source)
    _put_server(attrs, ctx.letta_server)

    status, events = _UNSET, []
    if run.status == "failed":
        error_type, error = run_error(run)
        attrs[sc.ERROR_TYPE] = error_type
        status = Status(StatusCode.ERROR, cut_text(error.message or "", MAX_STATUS_MESSAGE_BYTES))
        events = _exception_events(error_type, error, window.end_ns)
    return _make_span(
        ctx,
        name=f"{sc.OP_INVOKE_AGENT} {name}" if name else sc.OP_INVOKE_AGENT,
        trace_id=trace_id,
        span_id=ids.span_id("run", run.id),
        parent=None,
        kind=SpanKind.CLIENT,
        window=window,
        attributes=attrs,
        status=status,
        events=events,
    )


def run_error(run: Run) -> tuple[str, ErrorData]:
    """``metadata.error`` is a string (sync runs) or an error_message object (streamed)."""
    raw = run.error
    if isinstance(raw, dict):
        message = raw.get("detail") or raw.get("message")
        kind = raw.get("error_type")
        return (
            kind if isinstance(kind, str) and kind else run.stop_reason or sc.ERROR_TYPE_OTHER,
            ErrorData(message=message if isinstance(message, str) else None),
        )
    message = raw if isinstance(raw, str) else None
    return run.stop_reason or sc.ERROR_TYPE_OTHER, ErrorData(message=message)
