"""What the mapper consumes: one step or one run with everything fetched for it.

These are plain data; the pipeline fills them, the mapper only reads them, so the
mapping can be tested from files alone. :func:`needs_messages` tells the pipeline which
of a step's parts the mapping can do without.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from letta_otel.letta.models import Agent, Message, ProviderTrace, Run, Step, StepMetrics
from letta_otel.mapping.provider import tool_calls


@dataclass(frozen=True)
class StepRecord:
    """A terminal (or given-up-on) step and its enrichment.

    ``observed_ns`` is when the bridge saw the step: the last-resort clock when Letta
    gave no time at all. ``incomplete`` marks a step exported while still pending
    (pending timeout). ``missing`` names enrichment that was unavailable
    (``"trace"``, ``"metrics"``, ``"messages"``).
    """

    step: Step
    trace: ProviderTrace | None = None
    metrics: StepMetrics | None = None
    messages: tuple[Message, ...] = ()
    run: Run | None = None
    agent: Agent | None = None
    observed_ns: int = 0
    incomplete: bool = False
    missing: frozenset[str] = field(default_factory=frozenset)
    # Derived values both the span mapper and the metrics need, computed once per record
    # (the bridge maps a step, then records its metrics once the export is confirmed).
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class RunRecord:
    """A terminal run: becomes the ``invoke_agent`` span that parents its steps."""

    run: Run
    agent: Agent | None = None
    observed_ns: int = 0


class FetchedParts(Protocol):
    """A step's provider trace and metrics, fetched before its messages."""

    @property
    def trace(self) -> ProviderTrace | None: ...
    @property
    def metrics(self) -> StepMetrics | None: ...


# Stop reasons of a step that asked for no tool: it answered (``end_turn``: Letta's
# agent loop ends the turn only on a response without a tool call; a terminal tool
# stops with ``tool_rule``, a step budget with ``max_steps``), or its LLM call failed
# before any response could ask for one.
NO_TOOL_CALL_STOP_REASONS = frozenset(
    {
        "end_turn",
        "llm_api_error",
        "context_window_overflow_in_system_prompt",
        "insufficient_credits",
    }
)


def needs_messages(parts: FetchedParts, step: Step | None = None) -> bool:
    """Whether a step's messages can change its spans.

    Messages only contribute tool calls and their return status. A step whose provider
    response asks for no tool and which spent no time executing one has none, so its
    ``/messages`` request is skipped (about half the steps of a typical agent).

    Without a provider trace (not written yet, or never) the messages are the only
    source of tool calls; they are skipped only when the step's metrics are written
    and say no tool ran *and* its stop reason says it asked for none. No tool time
    alone is not enough: a call the tool rules refused, or whose arguments were
    invalid, is answered with an error return without running (Letta records 0 or no
    tool time), and its ``execute_tool`` error span comes from the messages.
    """
    metrics = parts.metrics
    if metrics is not None and metrics.tool_execution_ns:
        return True
    if parts.trace is not None:
        return bool(tool_calls(parts.trace.response_json))
    no_tool_time = metrics is not None and metrics.step_ns is not None
    asked_for_none = step is not None and step.stop_reason in NO_TOOL_CALL_STOP_REASONS
    return not (no_tool_time and asked_for_none)
