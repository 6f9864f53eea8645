"""Metrics from records (pure mapping) and the Telemetry observer, on the real samples.

Values are checked against the sample data (tokens, statuses, durations), and the
recorded instruments are read back through the SDK's in-memory reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace as struct_replace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.resources import Resource

from letta_otel.config import load_settings
from letta_otel.feedback import FeedbackTracker
from letta_otel.letta.models import Step
from letta_otel.mapping import metrics as mm
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.records import StepRecord
from letta_otel.metrics_otlp import PushCounter, build_metric_exporter, metrics_transport
from letta_otel.pipeline.report import CycleReport
from letta_otel.state import StateStore
from letta_otel.telemetry import (
    EXPORT_ATTEMPTS,
    EXPORT_FAILURES,
    LAST_POLL,
    LETTA_ERRORS,
    POLL_LAG,
    READY,
    SPANS_EXPORTED,
    Telemetry,
)
from tests.samples import SCENARIOS, load_scenario

ALL_STEPS = [record for name in SCENARIOS for record in load_scenario(name).steps]
ALL_RUNS = [load_scenario(name).run_record for name in SCENARIOS]


def _by(measurements: list[mm.Measurement], instrument: str) -> list[mm.Measurement]:
    return [m for m in measurements if m.instrument == instrument]


# ------------------------------------------------------------------------ pure mapping


def test_every_step_counts_once_with_its_status_and_model() -> None:
    for record in ALL_STEPS:
        (counted,) = _by(mm.step_measurements(record), mm.STEPS)
        step = record.step
        assert counted.value == 1
        assert counted.attributes[sc.LETTA_STEP_STATUS] == step.status
        assert counted.attributes.get(sc.LETTA_STEP_STOP_REASON) == step.stop_reason
        assert counted.attributes[sc.AGENT_ID] == step.agent_id
        assert counted.attributes[sc.REQUEST_MODEL] == step.model
        if step.status == "failed":
            assert counted.attributes[sc.ERROR_TYPE] == step.error_type
        else:
            assert sc.ERROR_TYPE not in counted.attributes


def test_token_usage_equals_the_step_counters_with_semconv_attributes() -> None:
    for record in ALL_STEPS:
        tokens = _by(mm.step_measurements(record), mm.TOKEN_USAGE)
        if record.trace is None:
            assert tokens == []  # no chat span, no LLM metrics
            continue
        by_type = {m.attributes[mm.TOKEN_TYPE]: m for m in tokens}
        assert by_type["input"].value == record.step.prompt_tokens
        assert by_type["output"].value == record.step.completion_tokens
        for m in tokens:
            attrs = m.attributes
            assert attrs[sc.OPERATION_NAME] == "chat"
            assert attrs[sc.PROVIDER_NAME] == "openai"
            assert attrs[sc.REQUEST_MODEL] == record.trace.request_json["model"]  # type: ignore[index]
            assert attrs[sc.SERVER_ADDRESS] and attrs[sc.SERVER_PORT]
            assert set(attrs) <= {
                sc.OPERATION_NAME,
                sc.PROVIDER_NAME,
                sc.REQUEST_MODEL,
                sc.RESPONSE_MODEL,
                sc.SERVER_ADDRESS,
                sc.SERVER_PORT,
                mm.TOKEN_TYPE,
            }


def test_llm_duration_is_the_chat_window_and_failures_carry_error_type() -> None:
    seen_error = False
    for record in ALL_STEPS:
        durations = _by(mm.step_measurements(record), mm.OPERATION_DURATION)
        if record.trace is None:
            assert durations == []
            continue
        (duration,) = durations
        metrics = record.metrics
        assert metrics is not None
        if metrics.llm_request_ns is not None:
            assert duration.value == pytest.approx(metrics.llm_request_ns / 1e9)
        if record.step.status == "failed":
            seen_error = True
            assert duration.attributes[sc.ERROR_TYPE]
    assert seen_error


def test_step_duration_only_when_letta_measured_it() -> None:
    for record in ALL_STEPS:
        (duration,) = _by(mm.step_measurements(record), mm.STEP_DURATION)
        assert record.metrics is not None and record.metrics.step_ns is not None
        assert duration.value == record.metrics.step_ns / 1e9
        assert sc.AGENT_ID not in duration.attributes  # histograms stay low-cardinality
    unmeasured = replace(ALL_STEPS[0], metrics=None)
    assert _by(mm.step_measurements(unmeasured), mm.STEP_DURATION) == []


def test_runs_count_by_status_and_time_invoke_agent() -> None:
    for record in ALL_RUNS:
        measurements = mm.run_measurements(record, ("letta.internal", 8283))
        (counted,) = _by(measurements, mm.RUNS)
        assert counted.attributes[sc.LETTA_RUN_STATUS] == record.run.status
        assert (sc.ERROR_TYPE in counted.attributes) == (record.run.status == "failed")
        (duration,) = _by(measurements, mm.OPERATION_DURATION)
        assert duration.attributes[sc.OPERATION_NAME] == "invoke_agent"
        assert duration.attributes[sc.PROVIDER_NAME] == "letta"
        assert duration.attributes[sc.SERVER_ADDRESS] == "letta.internal"
        assert record.run.created_at and record.run.completed_at
        expected = (record.run.completed_at - record.run.created_at).total_seconds()
        assert duration.value == pytest.approx(expected, abs=1e-6)


def test_feedback_measurement_only_for_known_values() -> None:
    step = ALL_STEPS[0].step
    assert mm.feedback_measurement(step) is None
    for value in ("positive", "negative"):
        m = mm.feedback_measurement(struct_replace(step, feedback=value))
        assert m is not None
        assert m.attributes[sc.LETTA_STEP_FEEDBACK] == value
        assert m.attributes[sc.AGENT_ID] == step.agent_id
    assert mm.feedback_measurement(struct_replace(step, feedback="meh")) is None


def test_bucket_boundaries_are_the_semconv_ones() -> None:
    # gen_ai.client.token.usage: 1, 4, 16, ... 67108864; operation.duration: 0.01 ... 81.92
    assert tuple(4**i for i in range(14)) == mm.TOKEN_BUCKETS
    assert tuple(round(0.01 * 2**i, 2) for i in range(14)) == mm.DURATION_BUCKETS


# ------------------------------------------------------------------- Telemetry observer


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def telemetry(reader: InMemoryMetricReader, clock: Clock) -> Iterator[Telemetry]:
    t = Telemetry(
        resource=Resource({"service.name": "letta"}),
        poll_interval=5,
        ready_intervals=3,
        readers=[reader],
        clock=clock,
    )
    yield t
    t.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data: MetricsData | None = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def total(pts: list[Any], **attrs: object) -> float:
    selected = [p for p in pts if all(p.attributes.get(k) == v for k, v in attrs.items())]
    return sum(p.sum if isinstance(p, HistogramDataPoint) else p.value for p in selected)


def test_accounted_records_feed_the_instruments(
    telemetry: Telemetry, reader: InMemoryMetricReader
) -> None:
    for record in ALL_STEPS:
        telemetry.step_accounted(record)
    for run in ALL_RUNS:
        telemetry.run_accounted(run)
    got = points(reader)
    failed = sum(1 for r in ALL_STEPS if r.step.status == "failed")
    assert total(got[mm.STEPS], **{sc.LETTA_STEP_STATUS: "failed"}) == failed
    assert total(got[mm.STEPS]) == len(ALL_STEPS)
    assert total(got[mm.RUNS]) == len(ALL_RUNS)
    prompt = sum(r.step.prompt_tokens or 0 for r in ALL_STEPS if r.trace is not None)
    assert total(got[mm.TOKEN_USAGE], **{mm.TOKEN_TYPE: "input"}) == prompt
    for point in got[mm.TOKEN_USAGE]:
        assert tuple(point.explicit_bounds) == tuple(float(b) for b in mm.TOKEN_BUCKETS)
    for point in got[mm.OPERATION_DURATION]:
        assert tuple(point.explicit_bounds) == mm.DURATION_BUCKETS
    for point in got[mm.STEP_DURATION]:
        assert tuple(point.explicit_bounds) == mm.STEP_DURATION_BUCKETS


def test_a_bad_record_never_raises_into_the_bridge(
    telemetry: Telemetry, reader: InMemoryMetricReader, caplog: pytest.LogCaptureFixture
) -> None:
    broken = StepRecord(step=Step(id="step-x", status="success"), metrics=object())  # type: ignore[arg-type]
    telemetry.step_accounted(broken)
    assert "recording metrics for step step-x failed" in caplog.text


def test_export_results_lag_and_letta_errors(
    telemetry: Telemetry, reader: InMemoryMetricReader, clock: Clock
) -> None:
    telemetry.exported(False, 10, 0)
    telemetry.exported(True, 7, int((clock.now - 2.5) * 1e9))
    telemetry.letta_request_failed("429", 429)
    telemetry.letta_request_failed("timeout", None)
    telemetry.metrics_exported(False)
    got = points(reader)
    assert total(got[EXPORT_ATTEMPTS], **{"letta_otel.signal": "traces"}) == 2
    assert total(got[EXPORT_FAILURES], **{"letta_otel.signal": "traces"}) == 1
    assert total(got[EXPORT_FAILURES], **{"letta_otel.signal": "metrics"}) == 1
    assert total(got[SPANS_EXPORTED]) == 7
    assert total(got[POLL_LAG]) == pytest.approx(2.5)
    assert total(got[LETTA_ERRORS], **{"error.type": "429", "http.response.status_code": 429}) == 1
    assert total(got[LETTA_ERRORS], **{"error.type": "timeout"}) == 1


def test_readiness_needs_a_recent_poll_and_no_lasting_export_failure(
    telemetry: Telemetry, reader: InMemoryMetricReader, clock: Clock
) -> None:
    state = telemetry.readiness()
    assert not state.ready and "no successful poll" in state.reasons[0]
    assert total(points(reader)[READY]) == 0

    telemetry.polled([])
    assert telemetry.readiness().ready
    assert total(points(reader)[LAST_POLL]) == clock.now

    clock.now += 14  # within 3 x 5 s
    telemetry.exported(False, 3, 0)
    telemetry.cycle_finished(CycleReport("steps", failed_batches=1))
    assert telemetry.readiness().ready  # a failure, but the last good export is recent
    clock.now += 2
    state = telemetry.readiness()
    assert not state.ready
    assert any("last successful poll" in r for r in state.reasons)
    assert any("span export failing" in r for r in state.reasons)

    telemetry.polled([])
    telemetry.cycle_finished(CycleReport("steps"))  # an idle cycle is a good export
    assert telemetry.readiness().ready
    assert total(points(reader)[READY]) == 1


@pytest.mark.parametrize(
    ("result", "ok"),
    [
        (MetricExportResult.SUCCESS, True),
        (MetricExportResult.FAILURE, False),
        (RuntimeError("exporter bug"), False),
    ],
)
def test_counting_exporter_reports_each_push(
    result: MetricExportResult | Exception, ok: bool
) -> None:
    seen: list[bool] = []

    def push() -> MetricExportResult:
        if isinstance(result, Exception):
            raise result
        return result

    pushes = PushCounter(seen.append)
    expected = MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE
    assert pushes.export(push) is expected
    assert seen == [ok]
    pushes.discard = True  # a failed start: the last push is dropped, and not counted
    assert pushes.export(push) is MetricExportResult.SUCCESS
    assert seen == [ok]


# ------------------------------------------------------------------- metrics transport


def test_metric_exporter_follows_the_metrics_transport() -> None:
    grpc = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    exporter = build_metric_exporter(grpc)
    assert isinstance(exporter, GrpcMetricExporter)
    assert metrics_transport(grpc).otlp_traces_endpoint == "http://collector:4317"

    http = load_settings(
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:4318/v1/metrics",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "x-key=m",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-key=t",
        }
    )
    assert http.otlp_protocol == "grpc"
    exporter = build_metric_exporter(http)
    assert isinstance(exporter, HttpMetricExporter)
    exporter.shutdown()
    transport = metrics_transport(http)
    assert transport.otlp_protocol == "http/protobuf"
    assert transport.otlp_traces_endpoint == "http://metrics:4318/v1/metrics"
    assert dict(transport.otlp_headers) == {"x-key": "m"}
    assert dict(http.otlp_headers) == {"x-key": "t"}  # traces keep theirs


def test_feedback_pairs_are_counted_once_across_restarts(
    tmp_path: Path, reader: InMemoryMetricReader, telemetry: Telemetry
) -> None:
    step = ALL_STEPS[0].step
    liked = struct_replace(step, feedback="positive")
    with_db = tmp_path / "state.db"
    state = StateStore(with_db)
    telemetry.feedback = FeedbackTracker(state, telemetry.feedback_given)
    telemetry.polled([step, liked, liked])  # no feedback, then the same pair twice
    telemetry.step_accounted(replace(ALL_STEPS[0], step=liked))
    state.close()

    state = StateStore(with_db)  # a restart: the pair is remembered
    telemetry.feedback = FeedbackTracker(state, telemetry.feedback_given)
    telemetry.polled([liked])
    telemetry.polled([struct_replace(liked, feedback="negative")])
    state.close()
    got = points(reader)[mm.FEEDBACK]
    assert total(got, **{sc.LETTA_STEP_FEEDBACK: "positive"}) == 1
    assert total(got, **{sc.LETTA_STEP_FEEDBACK: "negative"}) == 1


def test_number_points_are_plain_values(reader: InMemoryMetricReader, telemetry: Telemetry) -> None:
    telemetry.cycle_finished(CycleReport("runs", open_steps=4, open_runs=2, skipped=3))
    got = points(reader)
    assert all(isinstance(p, NumberDataPoint) for p in got["letta_otel.steps.pending"])
    assert total(got["letta_otel.steps.pending"]) == 4
    assert total(got["letta_otel.runs.pending"]) == 2
    assert total(got["letta_otel.steps.skipped"]) == 3
