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


def needs_messages(parts: FetchedParts) -> bool:
    """Whether a step's messages can change its spans.

    Messages only contribute tool calls and their return status. A step whose provider
    response asks for no tool and which spent no time executing one has none, so its
    ``/messages`` request is skipped (about half the steps of a typical agent). Without
    a provider trace the messages are the only source of tool calls: always fetched.
    """
    if parts.trace is None:
        return True
    if parts.metrics is not None and parts.metrics.tool_execution_ns:
        return True
    return bool(tool_calls(parts.trace.response_json))
