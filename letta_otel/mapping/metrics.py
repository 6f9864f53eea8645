"""Pure mapping: Letta records → metric measurements (no I/O, no SDK state).

Each function returns the measurements one confirmed object contributes; the
telemetry layer records them. Attribute sets follow the GenAI semantic conventions
v1.41 (``model-metrics.yaml``): ``gen_ai.operation.name`` and ``gen_ai.provider.name``
(required), ``gen_ai.request.model`` (if available), ``gen_ai.response.model`` and
``server.address``/``server.port`` (recommended), ``gen_ai.token.type`` on token usage
and ``error.type`` when the operation failed. The LLM attributes are the very values
the ``chat`` span carries, so a metric and its span never disagree.

``letta.*`` instruments are this project's own: counters by status / stop reason /
model / agent, and a step-duration histogram (without the agent, to bound series).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from opentelemetry.util.types import AttributeValue

from letta_otel.letta.models import Step
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.attributes import llm_attributes, request_model
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.mapping.spans import run_error
from letta_otel.mapping.timing import run_window, step_timing

# --- instrument names -------------------------------------------------------------
# The GenAI ones, their units and buckets are vendored in ``semconv`` with the other
# GenAI names (and checked there against the registry).
TOKEN_USAGE: Final = sc.METRIC_TOKEN_USAGE  # histogram, {token}
OPERATION_DURATION: Final = sc.METRIC_OPERATION_DURATION  # histogram, s
STEPS: Final = "letta.steps"  # counter, {step}
STEP_DURATION: Final = "letta.step.duration"  # histogram, s
RUNS: Final = "letta.runs"  # counter, {run}
FEEDBACK: Final = "letta.feedback"  # counter, {feedback}

# Bucket boundaries the GenAI conventions prescribe for their two client histograms.
TOKEN_BUCKETS: Final = sc.TOKEN_USAGE_BUCKETS
DURATION_BUCKETS: Final = sc.OPERATION_DURATION_BUCKETS
# Agent steps include tool runs: the same doubling series, carried on to ~11 minutes.
STEP_DURATION_BUCKETS: Final = (*DURATION_BUCKETS, 163.84, 327.68, 655.36)

TOKEN_TYPE: Final = sc.TOKEN_TYPE
TOKEN_INPUT: Final = sc.TOKEN_INPUT
TOKEN_OUTPUT: Final = sc.TOKEN_OUTPUT
FEEDBACK_VALUES: Final = frozenset({"positive", "negative"})

Attributes = Mapping[str, AttributeValue]

# The LLM span attributes the conventions allow on GenAI client metrics.
_GENAI_METRIC_KEYS: Final[tuple[str, ...]] = (
    sc.OPERATION_NAME,
    sc.PROVIDER_NAME,
    sc.REQUEST_MODEL,
    sc.RESPONSE_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)

# letta.step.duration drops the agent and the stop reason from the letta.steps set.
_STEP_DURATION_KEYS: Final = frozenset(
    {sc.LETTA_STEP_STATUS, sc.REQUEST_MODEL, sc.PROVIDER_NAME, sc.ERROR_TYPE}
)
_TOKEN_KEYS: Final = (
    (sc.USAGE_INPUT_TOKENS, TOKEN_INPUT),
    (sc.USAGE_OUTPUT_TOKENS, TOKEN_OUTPUT),
)


class Measurement(NamedTuple):
    """One value for one instrument. A named tuple, not a frozen dataclass: a step
    builds about five, and a frozen dataclass costs twice as much to build."""

    instrument: str
    value: float
    attributes: Attributes


def _put(attrs: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    if value is not None and value != "":
        attrs[key] = value


def _step_error_type(step: Step) -> str:
    # The same value the agent_step span carries in error.type.
    return step.error_type or step.stop_reason or sc.ERROR_TYPE_OTHER


def _has_llm_call(record: StepRecord) -> bool:
    """Whether ``map_step`` emits a ``chat`` span for this step (same condition)."""
    return record.trace is not None or step_timing(record, 0).llm is not None


def step_measurements(record: StepRecord, *, llm: bool = True) -> list[Measurement]:
    """``letta.steps`` (+1), ``letta.step.duration``, and the LLM call's GenAI metrics
    (``llm=False``: without them; the step's LLM span follows later, and its metrics
    with it, see :func:`llm_measurements`)."""
    step = record.step
    out: list[Measurement] = []

    counted: dict[str, AttributeValue] = {sc.LETTA_STEP_STATUS: step.status or "unknown"}
    _put(counted, sc.LETTA_STEP_STOP_REASON, step.stop_reason)
    _put(counted, sc.REQUEST_MODEL, request_model(record))
    _put(counted, sc.PROVIDER_NAME, sc.genai_provider_name(step.provider_name))
    _put(counted, sc.AGENT_ID, step.agent_id)
    _put(counted, sc.AGENT_NAME, record.agent.name if record.agent else None)
    if step.status == "failed":
        counted[sc.ERROR_TYPE] = _step_error_type(step)
    out.append(Measurement(STEPS, 1, counted))

    step_ns = record.metrics.step_ns if record.metrics else None
    if step_ns is not None and step_ns >= 0:  # only what Letta measured, never a guess
        timed = {k: v for k, v in counted.items() if k in _STEP_DURATION_KEYS}
        out.append(Measurement(STEP_DURATION, step_ns / 1e9, timed))

    if llm and _has_llm_call(record):
        out.extend(_llm_measurements(record))
    return out


def llm_measurements(record: StepRecord) -> list[Measurement]:
    """The GenAI metrics of a step's LLM call alone, for an LLM span sent after its
    step span (``spans.map_llm``): the same ones ``step_measurements`` gives."""
    return _llm_measurements(record) if _has_llm_call(record) else []


def _llm_measurements(record: StepRecord) -> list[Measurement]:
    span_attrs = llm_attributes(record)
    base: dict[str, AttributeValue] = {
        k: span_attrs[k] for k in _GENAI_METRIC_KEYS if k in span_attrs
    }
    if sc.PROVIDER_NAME not in base:
        return []  # a required attribute we cannot tell: no half-labelled series
    out: list[Measurement] = []
    for key, token_type in _TOKEN_KEYS:
        tokens = span_attrs.get(key)
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
            out.append(Measurement(TOKEN_USAGE, tokens, {**base, TOKEN_TYPE: token_type}))
    llm = step_timing(record, 0).llm
    if llm is not None:
        timed: dict[str, AttributeValue] = dict(base)
        error = span_attrs.get(sc.ERROR_TYPE)
        if error is not None:
            timed[sc.ERROR_TYPE] = error
        out.append(Measurement(OPERATION_DURATION, (llm.end_ns - llm.start_ns) / 1e9, timed))
    return out


def run_measurements(
    record: RunRecord, letta_server: tuple[str, int | None] | None = None
) -> list[Measurement]:
    """``letta.runs`` (+1) and the ``invoke_agent`` operation's duration."""
    run = record.run
    counted: dict[str, AttributeValue] = {sc.LETTA_RUN_STATUS: run.status or "unknown"}
    _put(counted, sc.LETTA_RUN_STOP_REASON, run.stop_reason)
    _put(counted, sc.AGENT_ID, run.agent_id)
    _put(counted, sc.AGENT_NAME, record.agent.name if record.agent else None)
    failed = run.status == "failed"
    if failed:
        counted[sc.ERROR_TYPE] = run_error(run)[0]  # as on the invoke_agent span
    out = [Measurement(RUNS, 1, counted)]

    if run.created_at is not None and (run.completed_at or run.total_duration_ns is not None):
        window, _ = run_window(record)
        timed: dict[str, AttributeValue] = {
            sc.OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.PROVIDER_NAME: sc.LETTA_AGENT_PROVIDER,
        }
        if letta_server:
            _put(timed, sc.SERVER_ADDRESS, letta_server[0])
            _put(timed, sc.SERVER_PORT, letta_server[1])
        if failed:
            timed[sc.ERROR_TYPE] = counted[sc.ERROR_TYPE]
        out.append(Measurement(OPERATION_DURATION, (window.end_ns - window.start_ns) / 1e9, timed))
    return out


def feedback_measurement(step: Step) -> Measurement | None:
    """``letta.feedback`` (+1) for a step's current feedback, if it is one we count."""
    if step.feedback not in FEEDBACK_VALUES:
        return None
    attrs: dict[str, AttributeValue] = {sc.LETTA_STEP_FEEDBACK: step.feedback}
    _put(attrs, sc.AGENT_ID, step.agent_id)
    _put(attrs, sc.REQUEST_MODEL, step.model)
    return Measurement(FEEDBACK, 1, attrs)
