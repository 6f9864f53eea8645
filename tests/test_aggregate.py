"""The step-metrics aggregator (letta_otel._aggregate) against the SDK it stands in for.

Every equivalence test records the same measurements into the SDK's own instruments
(the reference) and through :class:`Telemetry` (our aggregator), collects both readers
the same way, and compares what an exporter would get: names, units, descriptions,
temporality, attributes, values, buckets, sum/count/min/max. Time stamps are checked
for the SDK's rules separately. Then: real OTLP pushes in delta and cumulative
temporality, the Prometheus text, and concurrent recording and collection.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Counter as ApiCounter
from opentelemetry.metrics import Histogram as ApiHistogram
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry, generate_latest

from letta_otel import __version__
from letta_otel._aggregate import Aggregator, Instrument
from letta_otel.mapping import metrics as mm
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.metrics import Measurement
from letta_otel.settings import load_settings
from letta_otel.telemetry import METER_NAME, STEP_INSTRUMENTS, Telemetry, build_telemetry
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedDataPoint
from tests.samples import SCENARIOS, load_scenario

RESOURCE = Resource({"service.name": "letta"})
NAMES = {i.name for i in STEP_INSTRUMENTS}
ALL_STEPS = [record for name in SCENARIOS for record in load_scenario(name).steps]
ALL_RUNS = [load_scenario(name).run_record for name in SCENARIOS]
SAMPLE = [m for r in ALL_STEPS for m in mm.step_measurements(r)] + [
    m for r in ALL_RUNS for m in mm.run_measurements(r, ("letta.internal", 8283))
]

CHAT: dict[str, AttributeValue] = {
    sc.OPERATION_NAME: "chat",
    sc.PROVIDER_NAME: "openai",
    sc.SERVER_PORT: 443,
}
EDGES = [
    # bucket edges (a value equal to a bound is in that bound's bucket), zero, big values
    *(Measurement(mm.TOKEN_USAGE, v, {**CHAT, mm.TOKEN_TYPE: "input"}) for v in (0, 1, 4, 5)),
    Measurement(mm.TOKEN_USAGE, 10**9, {**CHAT, mm.TOKEN_TYPE: "output"}),
    *(Measurement(mm.OPERATION_DURATION, v, CHAT) for v in (0.0, 0.01, 0.0100001, 1e6)),
    # the same attribute set in another order is the same series
    Measurement(mm.OPERATION_DURATION, 0.5, dict(reversed(CHAT.items()))),
    # a list value is exported as a tuple, as the SDK cleans it
    Measurement(mm.STEPS, 1, {"letta.step.status": "success", "tags": ["a", "b"]}),
    Measurement(mm.STEPS, 2, {"letta.step.status": "success", "tags": ("a", "b")}),
    Measurement(mm.FEEDBACK, 1, {sc.LETTA_STEP_FEEDBACK: "positive"}),
]


# --------------------------------------------------------------------------- helpers


def _preferences(temporality: AggregationTemporality) -> dict[type, AggregationTemporality]:
    return {Counter: temporality, Histogram: temporality}


class Reference:
    """The SDK doing the work: its own instruments on its own provider."""

    def __init__(self, reader: MetricReader) -> None:
        self.provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
        meter = self.provider.get_meter(METER_NAME, __version__, schema_url=sc.SCHEMA_URL)
        self.counters: dict[str, ApiCounter] = {}
        self.histograms: dict[str, ApiHistogram] = {}
        for i in STEP_INSTRUMENTS:
            if i.bounds is None:
                self.counters[i.name] = meter.create_counter(i.name, i.unit, i.description)
            else:
                self.histograms[i.name] = meter.create_histogram(
                    i.name, i.unit, i.description, explicit_bucket_boundaries_advisory=i.bounds
                )

    def record(self, measurements: Sequence[Measurement]) -> None:
        for m in measurements:
            if m.instrument in self.counters:
                self.counters[m.instrument].add(m.value, m.attributes)
            else:
                self.histograms[m.instrument].record(m.value, m.attributes)


def telemetry_with(*readers: InMemoryMetricReader | PrometheusMetricReader) -> Telemetry:
    t = Telemetry(resource=RESOURCE, poll_interval=5, ready_intervals=3, readers=list(readers))
    assert t._aggregator is not None  # the readers are ones the aggregator serves
    return t


@dataclass
class Pair:
    ref: InMemoryMetricReader
    ours: InMemoryMetricReader
    sdk: Reference
    telemetry: Telemetry

    def record(self, measurements: Sequence[Measurement]) -> None:
        self.sdk.record(measurements)
        self.telemetry._record(measurements)

    def collect(self) -> tuple[MetricsData | None, MetricsData | None]:
        return self.ref.get_metrics_data(), self.ours.get_metrics_data()


@pytest.fixture
def pair_factory() -> Iterator[Callable[..., Pair]]:
    made: list[Pair] = []

    def make(**reader_kwargs: Any) -> Pair:
        ref, own = InMemoryMetricReader(**reader_kwargs), InMemoryMetricReader(**reader_kwargs)
        p = Pair(ref, own, Reference(ref), telemetry_with(own))
        made.append(p)
        return p

    yield make
    for p in made:
        p.telemetry.shutdown()
        p.sdk.provider.shutdown()


def _value(p: Any) -> tuple[Any, ...]:
    if isinstance(p, HistogramDataPoint):
        return (
            p.count,
            repr(p.sum),
            tuple(p.bucket_counts),
            tuple(p.explicit_bounds),
            repr(p.min),
            repr(p.max),
            list(p.exemplars),
        )
    assert isinstance(p, NumberDataPoint)
    return (repr(p.value), list(p.exemplars))


def exported(data: MetricsData | None) -> dict[str, Any]:
    """What an exporter sees of the step instruments, time stamps aside."""
    out: dict[str, Any] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name not in NAMES:
                    continue
                d = metric.data
                points = sorted(
                    (repr(sorted((p.attributes or {}).items())), _value(p)) for p in d.data_points
                )
                out[metric.name] = (
                    rm.resource,
                    sm.scope,
                    sm.schema_url,
                    metric.unit,
                    metric.description,
                    type(d).__name__,
                    getattr(d, "aggregation_temporality", None),
                    getattr(d, "is_monotonic", None),
                    points,
                )
    return out


def times(data: MetricsData | None) -> dict[tuple[str, str], tuple[int, int]]:
    """(instrument, attributes) -> (start, time) of each step-instrument point."""
    out = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name in NAMES:
                    for p in metric.data.data_points:
                        key = (metric.name, repr(sorted((p.attributes or {}).items())))
                        out[key] = (p.start_time_unix_nano, p.time_unix_nano)
    return out


def points_of(data: MetricsData | None, name: str) -> list[Any]:
    return [
        p
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


def steps_total(data: MetricsData | None) -> float:
    return float(sum(p.value for p in points_of(data, mm.STEPS)))


# ------------------------------------------------------------------- equal to the SDK


@pytest.mark.parametrize(
    "temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA]
)
def test_same_export_as_the_sdk_over_several_collections(
    pair_factory: Callable[..., Pair], temporality: AggregationTemporality
) -> None:
    pair = pair_factory(preferred_temporality=_preferences(temporality))
    half = len(SAMPLE) // 2
    batches = [SAMPLE[:half], SAMPLE[half:] + EDGES, [], EDGES[:3], SAMPLE]
    seen: set[str] = set()
    for batch in batches:
        pair.record(batch)
        ref, own = pair.collect()
        assert exported(own) == exported(ref)
        if not batch and temporality is AggregationTemporality.DELTA:
            assert exported(own) == {}  # an idle delta collection has no step points
        seen |= set(exported(own))
    assert seen == NAMES  # every instrument was exercised


def test_a_delta_collection_holds_only_what_is_new_and_starts_where_the_last_ended(
    pair_factory: Callable[..., Pair],
) -> None:
    pair = pair_factory(preferred_temporality=_preferences(AggregationTemporality.DELTA))
    pair.record(SAMPLE)
    first = pair.ours.get_metrics_data()
    assert steps_total(first) == len(ALL_STEPS)
    pair.record(SAMPLE[:5])
    second = pair.ours.get_metrics_data()
    assert steps_total(second) == sum(1 for m in SAMPLE[:5] if m.instrument == mm.STEPS)
    (ended,) = {t for _, t in times(first).values()}  # one collection time for all points
    assert all(start == ended for start, _ in times(second).values())
    assert steps_total(pair.ours.get_metrics_data()) == 0


def test_cumulative_points_keep_their_start_and_move_their_end(
    pair_factory: Callable[..., Pair],
) -> None:
    pair = pair_factory()
    pair.record(SAMPLE)
    first = times(pair.ours.get_metrics_data())
    pair.record(SAMPLE[:3])
    second = times(pair.ours.get_metrics_data())
    assert first.keys() == second.keys()
    for key, (start, end) in second.items():
        assert start == first[key][0]  # the first measurement of the series
        assert start <= first[key][1] < end


def test_overflow_past_the_cardinality_limit_as_the_sdk(
    pair_factory: Callable[..., Pair],
) -> None:
    limits: dict[type, int] = {Counter: 3, Histogram: 2}
    for temporality in AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA:
        pair = pair_factory(
            preferred_temporality=_preferences(temporality), cardinality_limits=limits
        )
        for agents in (range(6), range(4, 9)):
            many = [Measurement(mm.STEPS, 1, {sc.AGENT_ID: f"agent-{i}"}) for i in agents]
            many += [
                Measurement(mm.STEP_DURATION, 0.1 * i, {sc.REQUEST_MODEL: f"m{i}"}) for i in agents
            ]
            pair.record(many)
            ref, own = pair.collect()
            assert exported(own) == exported(ref)
            assert "otel.metric.overflow" in repr(exported(own)[mm.STEPS])


def test_invalid_values_are_dropped_with_the_sdk_warning(
    pair_factory: Callable[..., Pair], caplog: pytest.LogCaptureFixture
) -> None:
    pair = pair_factory()
    bad = [
        Measurement(mm.STEPS, -1, {}),
        Measurement(mm.STEP_DURATION, -0.5, {}),
        Measurement(mm.STEP_DURATION, math.nan, {}),
        Measurement(mm.TOKEN_USAGE, math.inf, {}),
        Measurement(mm.STEP_DURATION, -0.0, {}),  # not negative: the SDK keeps it
    ]
    pair.record(bad)
    ref, own = pair.collect()
    assert exported(own) == exported(ref)
    assert list(exported(own)) == [mm.STEP_DURATION]
    assert "Add amount must be non-negative on Counter letta.steps" in caplog.text
    assert "Record amount nan is not finite on Histogram letta.step.duration" in caplog.text


# ------------------------------------------------------------------ histogram arithmetic


def test_histogram_state_is_exact() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("scope")
    aggregator = Aggregator(
        [Instrument("h", "s", "a histogram", (1, 4, 16)), Instrument("c", "1", "a counter")],
        InstrumentationScope("scope"),
        RESOURCE,
    )
    counter = type(meter.create_counter("unused-c"))
    histogram = type(meter.create_histogram("unused-h"))
    aggregator.attach(reader, counter, histogram)
    values = [0, 1, 1.5, 4, 4.0001, 16, 17, 1000, 3]
    aggregator.record([Measurement("h", v, {"k": "v"}) for v in values])
    aggregator.record([Measurement("c", 2, {}), Measurement("c", 3.5, {})])
    data = reader.get_metrics_data()
    assert data is not None
    (scope,) = data.resource_metrics[0].scope_metrics
    by_name = {m.name: m for m in scope.metrics}
    (point,) = by_name["h"].data.data_points
    assert isinstance(point, HistogramDataPoint)
    assert tuple(point.bucket_counts) == (2, 3, 2, 2)  # (-inf,1] (1,4] (4,16] (16,inf)
    assert tuple(point.explicit_bounds) == (1, 4, 16)
    assert point.count == len(values)
    assert point.sum == sum(values)
    assert (point.min, point.max) == (0, 1000)
    assert point.attributes == {"k": "v"}
    (total,) = by_name["c"].data.data_points
    assert isinstance(total, NumberDataPoint)
    assert total.value == 5.5
    assert by_name["h"].unit == "s" and by_name["h"].description == "a histogram"
    provider.shutdown()


# ---------------------------------------------------------------------- two readers


def test_each_reader_keeps_its_own_temporality() -> None:
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality=_preferences(AggregationTemporality.DELTA))
    t = telemetry_with(cumulative, delta)
    step = [Measurement(mm.STEPS, 1, {"letta.step.status": "success"})]
    t._record(step * 3)
    assert steps_total(cumulative.get_metrics_data()) == 3
    t._record(step * 2)
    assert steps_total(delta.get_metrics_data()) == 5  # its first collection: all of it
    assert steps_total(cumulative.get_metrics_data()) == 5
    t._record(step)
    assert steps_total(delta.get_metrics_data()) == 1
    assert steps_total(delta.get_metrics_data()) == 0
    assert steps_total(cumulative.get_metrics_data()) == 6
    t.shutdown()


def test_concurrent_recording_and_collection_lose_and_double_nothing() -> None:
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality=_preferences(AggregationTemporality.DELTA))
    t = telemetry_with(cumulative, delta)
    writers, per_writer = 4, 20_000
    batch = [
        Measurement(mm.STEPS, 1, {"letta.step.status": "success"}),
        Measurement(mm.STEP_DURATION, 0.25, {"letta.step.status": "success"}),
    ]
    deltas: list[float] = []
    delta_counts: list[int] = []
    done = threading.Event()

    def collect_delta() -> None:
        data = delta.get_metrics_data()
        deltas.append(steps_total(data))
        delta_counts.append(_histogram_count(data))

    def collector() -> None:
        while not done.is_set():
            collect_delta()
            cumulative.get_metrics_data()

    def writer() -> None:
        for _ in range(per_writer):
            t._record(batch)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    reading = threading.Thread(target=collector)
    reading.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done.set()
    reading.join()
    collect_delta()
    expected = writers * per_writer
    assert len(deltas) > 2  # the collections really interleaved with the recording
    assert sum(deltas) == expected
    assert sum(delta_counts) == expected
    final = cumulative.get_metrics_data()
    assert steps_total(final) == expected
    assert _histogram_count(final) == expected
    t.shutdown()


def _histogram_count(data: MetricsData | None) -> int:
    return int(sum(p.count for p in points_of(data, mm.STEP_DURATION)))


# ------------------------------------------------------------------------ Prometheus


def test_prometheus_text_has_the_same_series_as_the_sdk() -> None:
    ref_registry, our_registry = CollectorRegistry(), CollectorRegistry()
    ref_reader = PrometheusMetricReader(registry=ref_registry)
    reference = Reference(ref_reader)
    t = telemetry_with(PrometheusMetricReader(registry=our_registry))
    for batch in (SAMPLE, EDGES):
        reference.record(batch)
        t._record(batch)
        ref_text = generate_latest(ref_registry).decode()
        our_text = generate_latest(our_registry).decode()
        prefixes = tuple(n.replace(".", "_") for n in NAMES)
        ours_lines = sorted(line for line in our_text.splitlines() if _about(line, prefixes))
        ref_lines = sorted(line for line in ref_text.splitlines() if _about(line, prefixes))
        assert ours_lines == ref_lines
        assert any(line.startswith("letta_steps_total{") for line in ours_lines)
        assert any("gen_ai_client_token_usage_bucket{" in line for line in ours_lines)
    t.shutdown()
    reference.provider.shutdown()


def _about(line: str, prefixes: tuple[str, ...]) -> bool:
    name = line.split(" ")[2] if line.startswith("#") else line
    return name.startswith(prefixes)


# ---------------------------------------------------------------- real OTLP pushes


def _pushed_steps(receiver: OtlpReceiver) -> list[tuple[str, tuple[ReceivedDataPoint, ...]]]:
    return [
        (m.aggregation_temporality or "", m.data_points)
        for m in receiver.metrics_by_name().get(mm.STEPS, [])
    ]


@pytest.mark.parametrize("preference", ["delta", "cumulative"])
def test_otlp_pushes_follow_the_temporality_preference(
    monkeypatch: pytest.MonkeyPatch, preference: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference)
    with OtlpReceiver() as receiver:
        settings = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint})
        t = build_telemetry(settings, RESOURCE, serve_metrics=True)
        assert t._aggregator is not None and t.registry is not None
        # Push by hand (the provider's force_flush would also queue data in the
        # Prometheus reader, which then renders each queued collection).
        (push,) = [
            r for r in t._provider._metric_readers if isinstance(r, PeriodicExportingMetricReader)
        ]
        first, second = ALL_STEPS[:4], ALL_STEPS[4:]
        for record in first:
            t.step_accounted(record)
        assert push.force_flush()
        for record in second:
            t.step_accounted(record)
        assert push.force_flush()
        assert push.force_flush()  # nothing new
        pushes = _pushed_steps(receiver)
        served = generate_latest(t.registry).decode()
        t.shutdown()

    totals = [sum(p.value or 0 for p in points) for _, points in pushes]
    if preference == "delta":
        assert totals == [len(first), len(second)]  # the idle push has no letta.steps
        assert {temporality for temporality, _ in pushes} == {"DELTA"}
        first_end = {p.time_ns for p in pushes[0][1]}
        assert {p.start_ns for p in pushes[1][1]} == first_end
    else:
        assert totals == [len(first), len(ALL_STEPS), len(ALL_STEPS)]
        assert {temporality for temporality, _ in pushes} == {"CUMULATIVE"}
    # /metrics is cumulative whatever the OTLP preference, and unaffected by the pushes
    exposed = sum(
        float(line.rsplit(" ", 1)[1])
        for line in served.splitlines()
        if line.startswith("letta_steps_total{")
    )
    assert exposed == len(ALL_STEPS)


# ------------------------------------------------------------------------- fallbacks


def test_the_sdk_keeps_the_work_when_a_reader_wants_another_aggregation() -> None:
    reader = InMemoryMetricReader(
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()}
    )
    t = Telemetry(resource=RESOURCE, poll_interval=5, ready_intervals=3, readers=[reader])
    assert t._aggregator is None
    t._record(SAMPLE)
    data = reader.get_metrics_data()
    kinds = {
        m.name: type(m.data).__name__
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert kinds[mm.TOKEN_USAGE] == "ExponentialHistogram"
    assert kinds[mm.STEPS] == "Sum"
    t.shutdown()


def test_always_on_exemplars_keep_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")
    t = Telemetry(
        resource=RESOURCE, poll_interval=5, ready_intervals=3, readers=[InMemoryMetricReader()]
    )
    assert t._aggregator is None
    t.shutdown()
