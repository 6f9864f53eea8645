"""What the mapper consumes: one step or one run with everything fetched for it.

These are plain data; the daemon fills them, the mapper only reads them, so the
mapping can be tested from files alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from letta_otel.letta.models import Agent, Message, ProviderTrace, Run, Step, StepMetrics


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
