"""Pure mapping: Letta records → OpenTelemetry ``ReadableSpan``s.

Span model (one trace per run, see ``ids``)::

    invoke_agent {agent}        CLIENT    one per run          (map_run)
    └─ agent_step               INTERNAL  one per step         (map_step)
       ├─ chat {model}          CLIENT    the LLM call     (map_step, or later map_llm)
       └─ execute_tool {tool}   INTERNAL  one per tool call

No I/O happens here: the same records always give the same spans, byte for byte.
The spans' attributes are read in :mod:`.attributes`; content capture and the limits
are applied as each span is made (:func:`_make_span`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from letta_otel.letta.models import ErrorData, Message, Run
from letta_otel.mapping import ids, provider
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.attributes import (
    Attrs,
    conversation_id,
    llm_attributes,
    llm_error_type,
    put,
    put_server,
    request_model,
    step_attributes,
    tool_attributes,
)
from letta_otel.mapping.capture import DEFAULT_POLICY, ContentPolicy, capture_llm, capture_tool
from letta_otel.mapping.clean import INT64_MAX, clean_attrs, clean_attrs_sized, clean_text, cut_text
from letta_otel.mapping.limits import Captured, finalize
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.timing import StepTiming, Window, run_window, step_timing

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


def map_step(
    record: StepRecord, ctx: MappingContext, trace_id: int, *, llm: bool = True
) -> list[ReadableSpan]:
    """The ``agent_step`` span with its ``chat`` and ``execute_tool`` children.

    ``llm=False``: without the ``chat`` span. The pipeline sends a step whose provider
    trace is not written yet at once, and its LLM span later as :func:`map_llm` makes
    it (same ids, same parent).
    """
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
            attributes=step_attributes(record, timing.source),
            status=_step_status(record),
            events=_exception_events(step.error_type, step.error_data, timing.step.end_ns),
        )
    ]
    step_context = spans[0].context  # the children's parent: the same value, built once
    if llm and (timing.llm is not None or record.trace is not None):
        spans.append(_chat_span(record, ctx, trace_id, step_context, timing))
    _add_tool_spans(
        spans, record, ctx, trace_id, step_context, zip(tools, timing.tools, strict=True)
    )
    return spans


def map_llm(
    record: StepRecord, ctx: MappingContext, trace_id: int, *, sent_tools: Collection[str] = ()
) -> list[ReadableSpan]:
    """The LLM span of a step whose ``agent_step`` span left without it (``map_step``
    with ``llm=False``): the ``chat`` span, a child of that step span in ``trace_id``,
    built from the provider trace when the record has it, else from the step's metrics
    alone (as ``map_step`` would), or nothing when Letta timed no LLM call either. With
    it go the ``execute_tool`` spans of the tool calls only the provider response names
    (``sent_tools``: the calls the step span's unit already carried, from its messages).

    A chat span made later is timed by its trace (:mod:`.timing`): it may lie partly
    outside the step span, which was timed without it.
    """
    step = record.step
    tools = _tool_calls(record)
    timing = step_timing(record, len(tools))
    parent = SpanContext(trace_id, ids.span_id("step", step.id), False, _SAMPLED)
    spans: list[ReadableSpan] = []
    if timing.llm is not None or record.trace is not None:
        spans.append(_chat_span(record, ctx, trace_id, parent, timing))
    later = [(t, w) for t, w in zip(tools, timing.tools, strict=True) if t[0] not in sent_tools]
    _add_tool_spans(spans, record, ctx, trace_id, parent, later)
    return spans


def tool_call_ids(record: StepRecord) -> tuple[str, ...]:
    """The ids of the tool calls ``map_step`` gives ``execute_tool`` spans."""
    return tuple(call_id for call_id, _, _ in _tool_calls(record))


def _chat_span(
    record: StepRecord,
    ctx: MappingContext,
    trace_id: int,
    parent: SpanContext,
    timing: StepTiming,
) -> ReadableSpan:
    policy = ctx.policy
    llm_attrs = llm_attributes(record)
    return _make_span(
        ctx,
        name=f"{sc.OP_CHAT} {request_model(record)}".rstrip(),
        trace_id=trace_id,
        span_id=ids.span_id("llm", record.step.id),
        parent=parent,
        kind=SpanKind.CLIENT,
        window=timing.llm or timing.step,
        attributes=llm_attrs,
        status=_llm_status(record),
        captured=capture_llm(record, llm_attrs, policy) if policy.capture else None,
    )


def _add_tool_spans(  # noqa: PLR0917
    spans: list[ReadableSpan],
    record: StepRecord,
    ctx: MappingContext,
    trace_id: int,
    parent: SpanContext,
    tools: Iterable[tuple[ToolCallInfo, Window]],
) -> None:
    policy = ctx.policy
    step_id = record.step.id
    for (call_id, name, status), window in tools:
        spans.append(
            _make_span(
                ctx,
                name=f"{sc.OP_EXECUTE_TOOL} {name}" if name else sc.OP_EXECUTE_TOOL,
                trace_id=trace_id,
                span_id=ids.span_id("tool", f"{step_id}/{call_id}"),
                parent=parent,
                kind=SpanKind.INTERNAL,
                window=window,
                attributes=tool_attributes(record, call_id, name, status),
                status=Status(StatusCode.ERROR, f"tool {name} failed")
                if status == "error"
                else _UNSET,
                captured=capture_tool(record, call_id, status, policy) if policy.on_spans else None,
            )
        )


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
    put(attrs, sc.EXCEPTION_MESSAGE, cut_text(error.message or "", MAX_STACKTRACE_BYTES))
    if error.traceback:
        # The tail holds the frame that raised; keep it when cutting.
        attrs[sc.EXCEPTION_STACKTRACE] = cut_text(
            error.traceback, MAX_STACKTRACE_BYTES, keep_tail=True
        )
    return [Event("exception", attrs, timestamp=at_ns)]


def _llm_status(record: StepRecord) -> Status:
    response = record.trace.response_json if record.trace else None
    if provider.response_kind(response) == "error":
        message = (response or {}).get("error")
        return Status(StatusCode.ERROR, cut_text(str(message or ""), MAX_STATUS_MESSAGE_BYTES))
    if llm_error_type(record):
        message = record.step.error_data.message if record.step.error_data else None
        return Status(StatusCode.ERROR, cut_text(message or "", MAX_STATUS_MESSAGE_BYTES))
    return _UNSET


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
    put(attrs, sc.AGENT_ID, run.agent_id)
    put(attrs, sc.AGENT_NAME, name)
    put(attrs, sc.CONVERSATION_ID, conversation_id(run, run.agent_id))
    put(attrs, sc.LETTA_AGENT_ID, run.agent_id)
    put(attrs, sc.LETTA_AGENT_TYPE, agent.agent_type if agent else None)
    put(attrs, sc.LETTA_AGENT_TAGS, tuple(agent.tags or ()) if agent else None)
    put(attrs, sc.LETTA_RUN_STATUS, run.status or "unknown")
    put(attrs, sc.LETTA_RUN_STOP_REASON, run.stop_reason)
    put(attrs, sc.LETTA_RUN_TYPE, run.run_type)
    put(attrs, sc.LETTA_RUN_BACKGROUND, run.background)
    put(attrs, sc.LETTA_RUN_TTFT_NS, run.ttft_ns)
    put(attrs, sc.LETTA_TIMING_SOURCE, source)
    put_server(attrs, ctx.letta_server)

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
