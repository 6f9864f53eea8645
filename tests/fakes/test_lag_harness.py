"""The pure parts of ``benchmarks/lag.py``: what it reads from /metrics and the receiver.

Not a timed test: the benchmark itself is run by hand (see ``benchmarks/README.md``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.lag import (
    Expectation,
    Received,
    Watch,
    failed_count,
    percentiles,
    time_weighted_median,
)
from tests.fakes.letta_api import FakeLettaData
from tests.fakes.otlp_receiver import ReceivedSpan
from tests.fakes.workload import LettaLikeWorkload, WorkloadConfig

EXPOSITION = """\
# HELP letta_steps_total Letta steps exported
# TYPE letta_steps_total counter
letta_steps_total{gen_ai_agent_id="a",letta_step_status="success"} 7.0
letta_steps_total{error_type="LLMServerError",letta_step_status="failed",x="1"} 2.0
letta_steps_total{error_type="Other",letta_step_status="failed"} 1.0
letta_steps_created{letta_step_status="failed"} 1.7e9
letta_runs_total{letta_run_status="failed"} 5.0
"""


def test_failed_count_sums_the_failed_series_only() -> None:
    assert failed_count(EXPOSITION) == 3.0
    assert failed_count("") == 0.0


def test_percentiles_nearest_rank() -> None:
    assert percentiles([]) == {"n": 0, "p50": None, "p95": None, "max": None}
    stats = percentiles([float(i) for i in range(1, 101)])
    assert stats == {"n": 100, "p50": 50.0, "p95": 95.0, "max": 100.0}
    assert percentiles([0.123], 2)["p50"] == 0.12


def test_time_weighted_median_weighs_cycles_by_their_length() -> None:
    # 100 quick cycles and 13 hung ones: most of the time is spent in the hung ones
    assert time_weighted_median([0.02] * 100 + [20.0] * 13) == 20.0
    assert time_weighted_median([1.0, 1.0, 1.0]) == 1.0
    assert time_weighted_median([]) is None


def _span(name: str, span_id: str, at: float, status: str = "UNSET", **attrs: Any) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id="t",
        span_id=span_id,
        parent_span_id=None,
        name=name,
        kind="INTERNAL",
        start_ns=0,
        end_ns=0,
        attributes=attrs,
        events=(),
        links=(),
        status_code=status,
        status_message="",
        resource={},
        scope_name="",
        scope_version="",
        flags=0,
        dropped_attributes_count=0,
        protocol="grpc",
        received_wall=at,
    )


def test_received_sorts_spans_by_letta_id() -> None:
    got = Received.of(
        [
            _span("agent_step", "s1", 5.0, "ERROR", **{"letta.step.id": "step-a"}),
            _span(
                "chat m",
                "l1",
                4.0,
                **{
                    "letta.step.id": "step-a",
                    "gen_ai.operation.name": "chat",
                    "letta.provider_trace.id": "provider_trace-1",
                },
            ),
            _span(
                "chat m",
                "l2",
                6.0,
                **{"letta.step.id": "step-b", "gen_ai.operation.name": "chat"},
            ),
            _span("agent_step", "s2", 6.0, **{"letta.step.id": "step-b"}),
            _span("agent_step", "s2", 9.0, **{"letta.step.id": "step-b"}),
            _span("invoke_agent x", "r1", 7.0, **{"letta.run.id": "run-a"}),
        ]
    )
    assert got.first_by_step == {"step-a": 4.0, "step-b": 6.0}
    assert got.step_spans == {"step-a": 1, "step-b": 2}
    assert got.error_spans == {"step-a": 5.0}
    assert got.llm_spans == {"step-a": 1, "step-b": 1}
    assert got.llm_traced == {"step-a": 1}
    assert got.run_spans == {"run-a": 1}
    assert got.doubled_span_ids == 1


def test_expectation_and_counter_pairing() -> None:
    data = FakeLettaData.empty(seed=4)
    config = WorkloadConfig(runless=0.2)
    end = datetime.now(UTC) - timedelta(seconds=30)
    workload = LettaLikeWorkload.backlog(data, 200, config, seed=4, end=end)
    # Frozen 30 s ago: by now (real time) more of it is due than Letta serves; the
    # harness goes by the ground truth.
    expect = Expectation.now(workload, runs_fallback=False)
    assert len(expect.steps) == len([s for s in workload.steps() if s.ready <= datetime.now(UTC)])
    assert not expect.complete(Received())
    spans = [
        _span("agent_step", f"s{i}", 1.0, **{"letta.step.id": s.step_id})
        for i, s in enumerate(expect.steps)
    ]
    spans += [
        _span(
            "chat",
            f"l{i}",
            1.0,
            **{
                "letta.step.id": s.step_id,
                "gen_ai.operation.name": "chat",
                "letta.provider_trace.id": "p",
            },
        )
        for i, s in enumerate(expect.traced)
    ]
    spans += [
        _span("invoke_agent", f"r{i}", 1.0, **{"letta.run.id": r})
        for i, r in enumerate(expect.runs)
    ]
    assert expect.complete(Received.of(spans))
    fallback = Expectation.now(workload, runs_fallback=True)
    assert fallback.undiscoverable and all(s.run_id is None for s in fallback.undiscoverable)
    watch = Watch(failed_counter=[(1.0, 0.0), (2.0, 1.0), (3.0, 3.0)])
    assert [watch.counted_at(k) for k in (1, 2, 3, 4)] == [2.0, 3.0, 3.0, None]
    assert data.clock() == end
