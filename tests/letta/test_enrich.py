"""Which steps need their ``/messages``: skipping them must never change a span."""

from __future__ import annotations

import dataclasses

import pytest

from letta_otel.letta.enrich import StepParts, needs_messages
from letta_otel.mapping import ids
from letta_otel.mapping.spans import map_step
from tests.mapping.test_spans import CTX, span_dict
from tests.samples import SCENARIOS, load_scenario


@pytest.mark.parametrize("name", SCENARIOS)
def test_skipping_messages_leaves_every_span_unchanged(name: str) -> None:
    for record in load_scenario(name).steps:
        parts = StepParts(record.trace, record.metrics, record.messages)
        trace_id = ids.trace_id_from_letta_id(record.step.run_id or record.step.id)
        full = [span_dict(s) for s in map_step(record, CTX, trace_id)]
        if not needs_messages(parts):
            lean = dataclasses.replace(record, messages=())
            assert [span_dict(s) for s in map_step(lean, CTX, trace_id)] == full


def test_the_samples_cover_both_cases() -> None:
    decisions = [
        needs_messages(StepParts(r.trace, r.metrics, r.messages))
        for name in SCENARIOS
        for r in load_scenario(name).steps
    ]
    assert decisions.count(False) >= 5 and decisions.count(True) >= 5


def test_a_step_with_tool_returns_needs_its_messages() -> None:
    tool_steps = [
        r
        for name in SCENARIOS
        for r in load_scenario(name).steps
        if any(m.message_type == "tool_return_message" for m in r.messages)
    ]
    assert tool_steps
    for record in tool_steps:
        assert needs_messages(StepParts(record.trace, record.metrics, record.messages))
    stripped = StepParts(None, None, ())
    assert needs_messages(stripped)  # no trace: messages are the only source of tool calls
