"""Owed LLM spans on the real Letta 0.16.8 samples: what is kept, when it is looked
for, and that the span built later is the one the step's own unit would have carried."""

from __future__ import annotations

import asyncio
from dataclasses import replace as dc_replace
from datetime import timedelta

import msgspec
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from letta_otel.letta.errors import LettaError
from letta_otel.letta.models import Step
from letta_otel.mapping import ids
from letta_otel.mapping.metrics import llm_measurements, step_measurements
from letta_otel.mapping.spans import MappingContext, map_llm, map_step, tool_call_ids
from letta_otel.pipeline.owed import LlmChecks, OwedRecord, next_check_ns, owed_row
from letta_otel.pipeline.report import CycleReport
from letta_otel.pipeline.units import StepDraft, Unit
from tests.mapping.test_spans import span_dict
from tests.samples import SCENARIOS, load_scenario

CTX = MappingContext(
    resource=Resource({"service.name": "letta"}),
    scope=InstrumentationScope("letta-otel", "test"),
    letta_server=("127.0.0.1", 8283),
)
S = 1_000_000_000


def test_looks_back_off_from_when_the_step_was_terminal() -> None:
    minute = timedelta(seconds=60)
    looks = [(next_check_ns(100 * S, checks, minute) - 100 * S) // S for checks in range(8)]
    assert looks == [2, 4, 8, 16, 32, 60, 60, 60]  # the last ones at the grace
    assert next_check_ns(0, 0, timedelta(seconds=1)) == S  # a grace shorter than 2 s
    assert next_check_ns(0, 200, minute) == 60 * S  # no overflow however many looks


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_llm_span_made_later_is_the_one_the_step_would_have_carried(name: str) -> None:
    """Split in two (the step without its trace now, the LLM span with it later), a
    step's spans are the same spans as in one unit: the same ids, parents and LLM span;
    the tool calls only the provider response names come with the LLM span."""
    scenario = load_scenario(name)
    trace_id = ids.trace_id_from_letta_id(scenario.run.id)
    for record in scenario.steps:
        if record.trace is None:
            continue
        whole = {s.context.span_id: s for s in map_step(record, CTX, trace_id) if s.context}
        early_record = dc_replace(record, trace=None, missing=record.missing | {"trace"})
        early = map_step(early_record, CTX, trace_id, llm=False)
        assert not [s for s in early if s.name.startswith("chat")]
        draft = StepDraft(early_record, trace_id, None, owes=True, terminal_ns=7 * S)
        row = owed_row(draft, tool_call_ids(early_record), timedelta(seconds=60))
        assert (row.step_id, row.trace_id) == (record.step.id, ids.format_trace_id(trace_id))
        assert (row.terminal_ns, row.next_check_ns, row.checks) == (7 * S, 9 * S, 0)

        kept = msgspec.json.decode(row.record, type=OwedRecord)  # what the state file holds
        assert (kept.step, kept.metrics, kept.run) == (record.step, record.metrics, record.run)
        later = map_llm(kept.record(record.trace), CTX, trace_id, sent_tools=kept.sent_tools)
        (chat,) = [s for s in later if s.name.startswith("chat")]
        assert span_dict(chat) == span_dict(whole[ids.span_id("llm", record.step.id)])
        both = [*early, *later]
        assert {s.context.span_id for s in both if s.context} == set(whole)
        assert len(both) == len(whole)  # nothing twice
        for span in later:
            assert span.parent is not None
            assert span.parent.span_id == ids.span_id("step", record.step.id)


def test_memgpt_send_message_comes_with_the_late_llm_span() -> None:
    (record,) = load_scenario("memgpt_plain").steps
    trace_id = ids.trace_id_from_letta_id(record.step.run_id or "")
    early = dc_replace(record, trace=None)
    assert tool_call_ids(early) == ()  # the messages hold no tool call: send_message ...
    kept = OwedRecord(step=record.step, metrics=record.metrics, run=record.run)
    later = map_llm(kept.record(record.trace), CTX, trace_id)
    assert [s.name.split()[0] for s in later] == ["chat", "execute_tool"]  # ... the trace does


def test_without_a_trace_the_late_span_is_built_from_metrics_or_not_at_all() -> None:
    (record,) = load_scenario("plain").steps
    trace_id = ids.trace_id_from_letta_id(record.step.run_id or "")
    kept = OwedRecord(step=record.step, metrics=record.metrics, run=record.run)
    (chat,) = map_llm(kept.record(None), CTX, trace_id)
    assert chat.attributes is not None and chat.attributes["letta.provider_trace.missing"] is True
    assert record.metrics is not None
    untimed = msgspec.structs.replace(record.metrics, llm_request_ns=None)
    assert map_llm(dc_replace(kept.record(None), metrics=untimed), CTX, trace_id) == []


def test_the_step_and_its_llm_call_are_counted_apart() -> None:
    (record,) = load_scenario("plain").steps
    whole = step_measurements(record)
    step_only = step_measurements(record, llm=False)
    assert {m.instrument for m in step_only} == {"letta.steps", "letta.step.duration"}
    assert sorted(step_only + llm_measurements(record)) == sorted(whole)


class _FailingTraces:
    """An enricher whose provider-trace requests fail for good (after its retries)."""

    def __init__(self) -> None:
        self.asked = 0

    async def trace(self, step: Step) -> None:
        self.asked += 1
        raise LettaError("malformed JSON from Letta", status=200, path=f"/v1/steps/{step.id}/trace")


class _OwedLedger:
    def __init__(self) -> None:
        self.later: list[tuple[str, int, int]] = []
        self.settled: list[str] = []

    def owe_later(self, step_id: str, *, next_check_ns: int, checks: int) -> None:
        self.later.append((step_id, next_check_ns, checks))

    def settle_owed(self, step_ids: list[str]) -> None:
        self.settled.extend(step_ids)


def test_a_trace_that_keeps_failing_backs_off_then_the_span_comes_from_metrics() -> None:
    (record,) = load_scenario("plain").steps
    trace_id = ids.trace_id_from_letta_id(record.step.run_id or "")
    early = dc_replace(record, trace=None, missing=record.missing | {"trace"})
    grace = timedelta(seconds=60)
    draft = StepDraft(early, trace_id, None, owes=True, terminal_ns=100 * S)
    row = owed_row(draft, tool_call_ids(early), grace)
    traces, ledger = _FailingTraces(), _OwedLedger()
    checks = LlmChecks(traces, CTX, ledger, grace=grace)  # type: ignore[arg-type]

    def check(now_s: int, *, once: bool = False) -> tuple[object, CycleReport]:
        report = CycleReport("steps")
        return asyncio.run(checks.check(row, now_s * S, once=once, report=report)), report

    # Within the grace and after it: an error, looked at again with back-off, not at once.
    for now_s in (103, 170):
        unit, report = check(now_s)
        assert unit is None and report.letta_errors == 1
        step_id, next_ns, looks = ledger.later.pop()
        assert (step_id, looks) == (record.step.id, row.checks + 1)
        assert next_ns == next_check_ns(100 * S, row.checks + 1, grace)
    # --once: reported, still owed for the next run, no look scheduled.
    unit, report = check(170, once=True)
    assert unit is None and report.letta_errors == 1 and not ledger.later
    # Two graces after the step: built from the step's metrics, paid, not owed forever.
    unit, report = check(221)
    assert isinstance(unit, Unit) and unit.paid == (record.step.id,)
    (chat,) = [s for s in unit.spans if s.name.startswith("chat")]
    assert chat.attributes is not None and chat.attributes["letta.provider_trace.missing"] is True
    assert report.letta_errors == 1 and not ledger.later and not ledger.settled
    assert traces.asked == 4
