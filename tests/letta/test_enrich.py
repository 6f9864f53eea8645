"""Which steps need their ``/messages``: skipping them must never change a span."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.mapping import ids
from letta_otel.mapping.records import needs_messages
from letta_otel.mapping.spans import map_step
from letta_otel.retry import Backoff, RetryPolicy
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
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


def test_trace_and_metrics_come_one_request_each_and_a_failure_names_its_route() -> None:
    """Enricher.trace and Enricher.metrics: a request each (the bridge makes them one
    after the other); one failing for good raises a LettaError naming what failed."""
    step_id = "step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052"
    retry = RetryPolicy(attempts=2, backoff=Backoff(initial=0.01, maximum=0.02, jitter=0.5))

    async def go(server: FakeLettaServer) -> tuple[StepParts, BaseException | None]:
        async with LettaClient(server.base_url, retry=retry, timeout=2) as client:
            enricher = Enricher(client, max_in_flight=4)
            step = await enricher.step(step_id)
            assert step is not None
            parts = StepParts(await enricher.trace(step), await enricher.metrics(step), ())
            server.faults.add(rf"^/v1/steps/{step_id}/metrics$", "500", count=10)
            error = None
            try:
                await enricher.metrics(step)
            except LettaError as exc:
                error = exc
            return parts, error

    with FakeLettaServer(FakeLettaData.from_samples()) as server:
        parts, error = asyncio.run(go(server))
        assert server.count(rf"^/v1/steps/{step_id}/trace$") == 1
        assert server.count(rf"^/v1/steps/{step_id}/metrics$") == 3  # 1, then 2 attempts
    assert parts.trace is not None and parts.trace.step_id == step_id
    assert parts.metrics is not None and parts.metrics.step_ns
    assert isinstance(error, LettaError) and "metrics" in str(error)
