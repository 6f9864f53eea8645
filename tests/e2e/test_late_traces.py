"""Spans leave as soon as what they say is known (issue 23), over real sockets.

The daemon runs as a subprocess against the fake Letta API and the real OTLP receiver;
provider traces are withheld and released with the fake's knobs, requests hung with its
fault rules. Times are read from the receiver's arrival stamps with generous bounds:
these are behaviour tests (a step does not wait for what it does not need), not timing
benchmarks (``benchmarks/lag.py`` measures the lag).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from letta_otel.mapping import ids
from letta_otel.mapping import metrics as mm
from tests.e2e.conftest import BridgeEnv
from tests.e2e.faults_helpers import (
    add_run_in_order,
    arrival,
    assert_exactly_once,
    delivered,
    exported_steps,
    listings,
    measure,
    running_daemon,
    wait_cycles,
    wait_until,
)
from tests.fakes.letta_api import FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedMetric, ReceivedSpan


@pytest.fixture(params=["ok"], ids=["steps-route"])
def steps_route(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _step_span(receiver: OtlpReceiver, step_id: str) -> ReceivedSpan:
    (span,) = [
        s
        for s in receiver.spans
        if s.name == "agent_step" and s.attributes.get("letta.step.id") == step_id
    ]
    return span


def _llm_spans(receiver: OtlpReceiver, step_id: str) -> list[ReceivedSpan]:
    return [
        s
        for s in receiver.spans
        if s.name.startswith("chat ") and s.attributes.get("letta.step.id") == step_id
    ]


def _owed(state_path: Path) -> set[str]:
    db = sqlite3.connect(state_path, timeout=10)
    try:
        return {str(row[0]) for row in db.execute("SELECT step_id FROM owed_llm")}
    finally:
        db.close()


def _traces(letta: FakeLettaServer, step_id: str) -> int:
    return letta.count(f"^/v1/steps/{step_id}/trace$")


def test_failed_step_without_a_trace_goes_out_at_once_and_its_llm_span_follows(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """The alert-worthy case: a failed step whose provider trace is not written yet is
    exported at once, with its error, model and provider; when the trace is written its
    LLM span follows, once, as the child of the step span already exported."""
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_ENRICH_GRACE="60s") as d:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", d)
        run_id = add_run_in_order(data, "fail_http500")
        (failed,) = data.run_step_ids(run_id)
        data.withhold_trace(failed)
        added = time.monotonic()
        wait_until(lambda: failed in exported_steps(receiver), 15, "the failed step", d)
        span = _step_span(receiver, failed)
        assert span.received_at - added < 10.0, "the failed step waited for its trace"
        assert not _llm_spans(receiver, failed)
        assert failed in _owed(bridge_env.state_path)
        wait_until(lambda: run_id in _roots(receiver), 15, "its root", d)

        data.release_trace(failed)
        wait_until(lambda: _llm_spans(receiver, failed), 20, "the LLM span", d)
        wait_until(lambda: failed not in _owed(bridge_env.state_path), 10, "the owed row gone", d)
        wait_cycles(letta, 10, d)  # more cycles: a second copy would show
        assert d.stop() == 0, d.tail()

    step = data.step(failed)
    assert span.status_code == "ERROR"
    assert span.attributes["error.type"] == step["error_type"]
    assert span.attributes["letta.step.status"] == "failed"
    assert span.attributes["gen_ai.request.model"] == step["model"]
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["letta.model_handle"] == step["model_handle"]
    (event,) = span.events
    assert event.attributes["exception.message"] == step["error_data"]["message"]

    (llm,) = _llm_spans(receiver, failed)
    assert llm.span_id == ids.format_span_id(ids.span_id("llm", failed))
    assert (llm.trace_id, llm.parent_span_id) == (span.trace_id, span.span_id)
    assert llm.received_at > span.received_at
    assert llm.attributes["letta.provider_trace.id"] == data.trace(failed)["id"]
    assert llm.status_code == "ERROR"
    assert_exactly_once(measure("failed-step-late-trace", receiver, data))


def _roots(receiver: OtlpReceiver) -> list[str]:
    return [
        str(s.attributes["letta.run.id"]) for s in receiver.spans if s.name.startswith("invoke")
    ]


def test_never_traced_step_costs_a_handful_of_trace_requests(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """Looks for a trace that never comes back off (2 s, 4 s, 8 s ... after the step was
    terminal, the last one at the grace), not one per cycle; then one LLM span from the
    step's metrics alone, marked."""
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_ENRICH_GRACE="10s") as d:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", d)
        (never,) = data.run_step_ids(add_run_in_order(data, "plain"))
        data.withhold_trace(never)
        wait_until(lambda: never in exported_steps(receiver), 15, "the step", d)
        sent = time.monotonic()
        cycles = listings(letta)
        wait_until(lambda: _llm_spans(receiver, never), 30, "the trace-less LLM span", d)
        wait_cycles(letta, 10, d)
        assert d.stop() == 0, d.tail()
    (llm,) = _llm_spans(receiver, never)
    waited = llm.received_at - sent
    looks = _traces(letta, never)
    print(f"never traced: {looks} trace requests over {listings(letta) - cycles} cycles")
    assert 8.0 <= waited <= 20.0  # the grace, counted from when the step was terminal
    assert looks <= 6  # at the step, then 2 s, 4 s, 8 s, 10 s (the grace) after it
    assert listings(letta) - cycles >= 20  # ... while it polled every 0.2 s
    assert llm.attributes["letta.provider_trace.missing"] is True
    assert "letta.provider_trace.id" not in llm.attributes
    assert llm.parent_span_id == _step_span(receiver, never).span_id
    assert_exactly_once(measure("never-traced", receiver, data))


def test_a_hung_request_delays_only_its_own_step(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """One step's trace request hangs for 12 s: the steps after it go out meanwhile and
    the polls go on; the hung one goes out once its answer comes."""
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_LETTA_TIMEOUT="30") as d:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", d)
        (hung,) = data.run_step_ids(add_run_in_order(data, "plain"))
        rule = letta.faults.add(f"^/v1/steps/{hung}/trace$", "timeout", 1, seconds=12)
        wait_until(lambda: rule.hits == 1, 10, "the hung request", d)
        started, polls = time.monotonic(), listings(letta)
        later = [s for r in range(3) for s in data.run_step_ids(add_run_in_order(data, "plain"))]
        wait_until(lambda: set(later) <= set(exported_steps(receiver)), 10, "the later steps", d)
        polled = listings(letta) - polls
        wait_until(lambda: hung in exported_steps(receiver), 30, "the hung step", d)
        wait_until(lambda: delivered(receiver, data), 10, "its run's root", d)
        wait_cycles(letta, 3, d)
        assert d.stop() == 0, d.tail()
    last_later = max(arrival(receiver, s) for s in later)
    assert last_later - started < 8.0, "the other steps waited for the hung request"
    assert arrival(receiver, hung) - started >= 9.0
    assert arrival(receiver, hung) > last_later
    assert polled >= 3, "the polls waited for the hung request"
    assert_exactly_once(measure("hung-trace-request", receiver, data))


def test_owed_llm_spans_survive_a_restart(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    (owed,) = data.run_step_ids(data.add_run("plain"))
    data.withhold_trace(owed)
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_ENRICH_GRACE="5m") as d:
        wait_until(lambda: delivered(receiver, data), 20, "every step", d)
        wait_until(lambda: owed in _owed(bridge_env.state_path), 10, "the owed row", d)
        assert d.stop() == 0, d.tail()
    assert not _llm_spans(receiver, owed)
    data.release_trace(owed)
    with running_daemon(bridge_env, tmp_path / "daemon2.log", LETTA_OTEL_ENRICH_GRACE="5m") as d:
        # The first look after the restart is due at once (2 s after terminal have passed).
        wait_until(lambda: _llm_spans(receiver, owed), 20, "the LLM span after the restart", d)
        wait_until(lambda: owed not in _owed(bridge_env.state_path), 10, "its row gone", d)
        wait_cycles(letta, 5, d)
        assert d.stop() == 0, d.tail()
    (llm,) = _llm_spans(receiver, owed)
    assert llm.parent_span_id == _step_span(receiver, owed).span_id
    assert llm.attributes["letta.provider_trace.id"] == data.trace(owed)["id"]
    assert_exactly_once(measure("owed-across-restart", receiver, data))


def test_stop_with_a_hung_request_is_prompt_and_the_step_waits_for_the_next_start(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_LETTA_TIMEOUT="90") as d:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", d)
        (hung,) = data.run_step_ids(add_run_in_order(data, "plain"))
        rule = letta.faults.add(f"^/v1/steps/{hung}/metrics$", "timeout", 1, seconds=60)
        wait_until(lambda: rule.hits == 1, 10, "the hung request", d)
        asked = time.monotonic()
        assert d.stop(timeout=10) == 0, d.tail()
        took = time.monotonic() - asked
    assert took < 8.0, f"the stop waited {took:.1f}s for a hung request"
    assert hung not in exported_steps(receiver)
    letta.faults.clear()
    with running_daemon(bridge_env, tmp_path / "daemon2.log") as d:
        wait_until(lambda: delivered(receiver, data), 20, "the step after the restart", d)
        wait_cycles(letta, 3, d)
        assert d.stop() == 0, d.tail()
    assert_exactly_once(measure("stop-with-hung-request", receiver, data))


def _failed_count(receiver: OtlpReceiver) -> Callable[[], float]:
    def count() -> float:
        pushes: list[ReceivedMetric] = receiver.metrics_by_name().get(mm.STEPS, [])
        if not pushes:
            return 0.0
        return sum(
            float(p.value or 0)
            for p in pushes[-1].data_points
            if p.attributes.get("letta.step.status") == "failed"
        )

    return count


def test_failed_counter_is_pushed_over_otlp_as_soon_as_the_error_span(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """With the periodic push a minute apart, ``letta.steps{status=failed}`` still reaches
    the OTLP backend within seconds of the failed step's span: a failure asks for an
    early push."""
    data = letta.data
    failed = _failed_count(receiver)
    with running_daemon(
        bridge_env, tmp_path / "daemon.log", OTEL_METRIC_EXPORT_INTERVAL="60000"
    ) as d:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", d)
        wait_until(lambda: failed() == 3, 10, "the early push of the sample failures", d)
        (step,) = data.run_step_ids(add_run_in_order(data, "fail_http500"))
        wait_until(lambda: step in exported_steps(receiver), 15, "the new failed step", d)
        error_span = _step_span(receiver, step).received_at
        wait_until(lambda: failed() == 4, 10, "the failed count, pushed early", d)
        pushed = receiver.metrics_by_name()[mm.STEPS][-1].received_at
        assert d.stop() == 0, d.tail()
    assert pushed - error_span < 5.0
    assert len(receiver.metrics_by_name()[mm.STEPS]) >= 2  # early pushes, not the periodic one
