"""The bridge's metrics as a user sees them, through both of the daemon's readers.

Everything goes in through :class:`Telemetry` (the SDK's instruments) and is read back
as a backend gets it: the SDK's ``InMemoryMetricReader`` (the data an OTLP push
encodes), real OTLP pushes into the test receiver, and the Prometheus text of
``/metrics`` parsed by ``prometheus_client``. Pinned: names, units, descriptions,
attribute sets, bucket boundaries and counts after the real samples' steps and runs,
delta and cumulative temporality, the cardinality limit's overflow series, exemplars.
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import AttributeValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from letta_otel import __version__
from letta_otel.config import load_settings
from letta_otel.mapping import metrics as mm
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.metrics import Measurement
from letta_otel.metrics_otlp import PushCounter, build_metric_exporter
from letta_otel.telemetry import METER_NAME, Telemetry
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.samples import SCENARIOS, load_scenario

RESOURCE = Resource({"service.name": "letta"})
LETTA = ("letta.internal", 8283)
ALL_STEPS = [record for name in SCENARIOS for record in load_scenario(name).steps]
ALL_RUNS = [load_scenario(name).run_record for name in SCENARIOS]
SAMPLE = [m for r in ALL_STEPS for m in mm.step_measurements(r)] + [
    m for r in ALL_RUNS for m in mm.run_measurements(r, LETTA)
]

# --- what is exported, written out ---------------------------------------------------

TOKEN_BOUNDS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                16777216, 67108864)  # fmt: skip
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)  # fmt: skip
STEP_DURATION_BOUNDS = (*DURATION_BOUNDS, 163.84, 327.68, 655.36)


@dataclass(frozen=True)
class Exported:
    unit: str
    description: str
    bounds: tuple[float, ...] | None  # None: a monotonic sum
    prometheus: str  # the family name on /metrics


INSTRUMENTS = {
    "letta.steps": Exported(
        "{step}", "Letta agent steps, counted once each when settled.", None, "letta_steps"
    ),
    "letta.runs": Exported(
        "{run}", "Letta runs, counted once each when settled.", None, "letta_runs"
    ),
    "letta.feedback": Exported(
        "{feedback}",
        "Feedback given to Letta steps (positive/negative).",
        None,
        "letta_feedback",
    ),
    "gen_ai.client.token.usage": Exported(
        "{token}",
        "Number of input and output tokens used.",
        TOKEN_BOUNDS,
        "gen_ai_client_token_usage",
    ),
    "gen_ai.client.operation.duration": Exported(
        "s",
        "GenAI operation duration.",
        DURATION_BOUNDS,
        "gen_ai_client_operation_duration_seconds",
    ),
    "letta.step.duration": Exported(
        "s",
        "Letta step duration as Letta measured it (step_ns).",
        STEP_DURATION_BOUNDS,
        "letta_step_duration_seconds",
    ),
}

# The attribute keys of each series the samples produce (error.type only on failures).
_LLM = {"gen_ai.operation.name", "gen_ai.provider.name", "server.address", "server.port"}
ATTRIBUTE_KEYS = {
    "letta.steps": [
        {"letta.step.status", "gen_ai.request.model", "gen_ai.provider.name",
         "gen_ai.agent.id", "gen_ai.agent.name"},
        {"letta.step.status", "letta.step.stop_reason", "gen_ai.request.model",
         "gen_ai.provider.name", "gen_ai.agent.id", "gen_ai.agent.name"},
        {"letta.step.status", "letta.step.stop_reason", "gen_ai.request.model",
         "gen_ai.provider.name", "gen_ai.agent.id", "gen_ai.agent.name", "error.type"},
    ],
    "letta.runs": [
        {"letta.run.status", "gen_ai.agent.id", "gen_ai.agent.name", "error.type"},
        {"letta.run.status", "letta.run.stop_reason", "gen_ai.agent.id", "gen_ai.agent.name"},
        {"letta.run.status", "letta.run.stop_reason", "gen_ai.agent.id", "gen_ai.agent.name",
         "error.type"},
    ],
    "gen_ai.client.token.usage": [
        _LLM | {"gen_ai.request.model", "gen_ai.token.type"},
        _LLM | {"gen_ai.request.model", "gen_ai.response.model", "gen_ai.token.type"},
    ],
    "gen_ai.client.operation.duration": [
        _LLM,
        _LLM | {"error.type"},
        _LLM | {"gen_ai.request.model", "error.type"},
        _LLM | {"gen_ai.request.model", "gen_ai.response.model"},
    ],
    "letta.step.duration": [
        {"letta.step.status", "gen_ai.request.model", "gen_ai.provider.name"},
        {"letta.step.status", "gen_ai.request.model", "gen_ai.provider.name", "error.type"},
    ],
}  # fmt: skip

CHAT: dict[str, AttributeValue] = {
    sc.OPERATION_NAME: "chat",
    sc.PROVIDER_NAME: "openai",
    sc.SERVER_PORT: 443,
}
EDGES = [
    # a value equal to a bound is in that bound's bucket; zero and huge values
    *(Measurement(mm.TOKEN_USAGE, v, {**CHAT, mm.TOKEN_TYPE: "input"}) for v in (0, 1, 4, 5)),
    Measurement(mm.TOKEN_USAGE, 10**9, {**CHAT, mm.TOKEN_TYPE: "output"}),
    *(Measurement(mm.OPERATION_DURATION, v, CHAT) for v in (0.0, 0.01, 0.0100001, 1e6)),
    # the same attribute set in another order is the same series
    Measurement(mm.OPERATION_DURATION, 0.5, dict(reversed(CHAT.items()))),
    Measurement(mm.FEEDBACK, 1, {sc.LETTA_STEP_FEEDBACK: "positive"}),
]

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


# --------------------------------------------------------------------------- helpers


@dataclass
class Series:
    """One attribute set of one instrument: what its exported point must hold."""

    sum: float = 0
    count: int = 0
    buckets: list[int] | None = None
    min: float = math.inf
    max: float = -math.inf


Key = tuple[str, frozenset[tuple[str, Any]]]


def expected(measurements: Iterable[Measurement]) -> dict[Key, Series]:
    """The series an SDK reader must export for ``measurements``, written plainly."""
    out: dict[Key, Series] = {}
    for name, value, attributes in measurements:
        bounds = INSTRUMENTS[name].bounds
        s = out.setdefault(
            (name, frozenset(attributes.items())),
            Series(buckets=None if bounds is None else [0] * (len(bounds) + 1)),
        )
        s.sum += value
        s.count += 1
        s.min, s.max = min(s.min, value), max(s.max, value)
        if bounds is not None and s.buckets is not None:
            s.buckets[bisect_left(bounds, value)] += 1
    return out


def metrics_of(data: MetricsData | None) -> dict[str, Metric]:
    out = {}
    for rm in data.resource_metrics if data else ():
        assert rm.resource == RESOURCE
        for sm in rm.scope_metrics:
            assert (sm.scope.name, sm.scope.version) == (METER_NAME, __version__)
            assert sm.scope.schema_url == sc.SCHEMA_URL
            for metric in sm.metrics:
                out[metric.name] = metric
    return out


def step_metrics(data: MetricsData | None) -> dict[str, Metric]:
    return {k: v for k, v in metrics_of(data).items() if k in INSTRUMENTS}


def exported_series(metrics: dict[str, Metric]) -> dict[Key, Series]:
    out: dict[Key, Series] = {}
    for name, metric in metrics.items():
        for p in metric.data.data_points:
            key = (name, frozenset((p.attributes or {}).items()))
            assert key not in out
            if isinstance(p, HistogramDataPoint):
                assert tuple(p.explicit_bounds) == INSTRUMENTS[name].bounds
                out[key] = Series(p.sum, p.count, list(p.bucket_counts), p.min, p.max)
            else:
                assert isinstance(p, NumberDataPoint)
                out[key] = Series(p.value, 1)  # count aside: a sum has none
    return out


def comparable(series: dict[Key, Series]) -> dict[Key, tuple[Any, ...]]:
    """Histograms in full; counters by their value (a measurement's count is no export)."""
    return {
        k: (pytest.approx(s.sum, rel=1e-12), s.count, s.buckets, s.min, s.max)
        if s.buckets is not None
        else (pytest.approx(s.sum, rel=1e-12),)
        for k, s in series.items()
    }


def telemetry_with(*readers: MetricReader, registry: CollectorRegistry | None = None) -> Telemetry:
    return Telemetry(
        resource=RESOURCE,
        poll_interval=5,
        ready_intervals=3,
        readers=list(readers),
        registry=registry,
        letta_server=LETTA,
    )


@pytest.fixture
def made() -> Iterator[list[Telemetry]]:
    made: list[Telemetry] = []
    yield made
    for t in made:
        t.shutdown()


def feed_samples(t: Telemetry) -> None:
    """As the bridge does: each settled step, then each settled run."""
    for record in ALL_STEPS:
        t.step_accounted(record)
    for run in ALL_RUNS:
        t.run_accounted(run)


def steps_total(data: MetricsData | None) -> float:
    metric = step_metrics(data).get(mm.STEPS)
    return 0 if metric is None else sum(p.value for p in metric.data.data_points)


# ------------------------------------------------------------------- the OTLP reader


def test_names_units_descriptions_attributes_and_buckets_after_the_samples(
    made: list[Telemetry],
) -> None:
    reader = InMemoryMetricReader()
    made.append(t := telemetry_with(reader))
    feed_samples(t)
    metrics = step_metrics(reader.get_metrics_data())
    # feedback: none of the samples has any
    assert set(metrics) == set(INSTRUMENTS) - {mm.FEEDBACK}
    for name, metric in metrics.items():
        want = INSTRUMENTS[name]
        assert (metric.unit, metric.description) == (want.unit, want.description)
        assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        if want.bounds is None:
            assert metric.data.is_monotonic is True
        keys = {frozenset(p.attributes or {}) for p in metric.data.data_points}
        assert keys == {frozenset(k) for k in ATTRIBUTE_KEYS[name]}, name

    series = exported_series(metrics)
    assert comparable(series) == comparable(expected(SAMPLE))
    # A few totals by hand, against the samples themselves.
    by_name: dict[str, float] = {}
    for (name, _), s in series.items():
        by_name[name] = by_name.get(name, 0) + (s.count if s.buckets is not None else s.sum)
    assert by_name[mm.STEPS] == len(ALL_STEPS) == 14
    assert by_name[mm.RUNS] == len(ALL_RUNS) == 10
    assert by_name[mm.STEP_DURATION] == 14
    traced = [r for r in ALL_STEPS if r.trace is not None]
    assert by_name[mm.TOKEN_USAGE] == 2 * len(traced)
    assert by_name[mm.OPERATION_DURATION] == len(traced) + len(ALL_RUNS)
    failed = {
        k: s.sum
        for k, s in series.items()
        if k[0] == mm.STEPS and (sc.LETTA_STEP_STATUS, "failed") in k[1]
    }
    assert sum(failed.values()) == sum(1 for r in ALL_STEPS if r.step.status == "failed")


def test_bucket_edges_min_max_and_attribute_order(made: list[Telemetry]) -> None:
    reader = InMemoryMetricReader()
    made.append(t := telemetry_with(reader))
    t.record(EDGES)
    series = exported_series(step_metrics(reader.get_metrics_data()))
    tokens_in = series[(mm.TOKEN_USAGE, frozenset({**CHAT, mm.TOKEN_TYPE: "input"}.items()))]
    # (-inf,1] holds 0 and 1; (1,4] holds 4; (4,16] holds 5
    assert tokens_in.buckets == [2, 1, 1] + [0] * 12
    assert (tokens_in.count, tokens_in.sum, tokens_in.min, tokens_in.max) == (4, 10, 0, 5)
    tokens_out = series[(mm.TOKEN_USAGE, frozenset({**CHAT, mm.TOKEN_TYPE: "output"}.items()))]
    assert tokens_out.buckets == [0] * 14 + [1]  # past the last bound
    (duration,) = [s for (name, _), s in series.items() if name == mm.OPERATION_DURATION]
    #                       ≤0.01 ≤0.02          ≤0.64                        >81.92
    assert duration.buckets == [2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert (duration.count, duration.min, duration.max) == (5, 0.0, 1e6)
    assert series[(mm.FEEDBACK, frozenset({sc.LETTA_STEP_FEEDBACK: "positive"}.items()))].sum == 1


def test_cumulative_points_keep_their_start_and_move_their_end(made: list[Telemetry]) -> None:
    reader = InMemoryMetricReader()
    made.append(t := telemetry_with(reader))
    t.record(SAMPLE)
    first = reader.get_metrics_data()
    t.record(SAMPLE[:3])
    second = reader.get_metrics_data()
    times = {
        (name, frozenset((p.attributes or {}).items())): (p.start_time_unix_nano, p.time_unix_nano)
        for name, metric in step_metrics(first).items()
        for p in metric.data.data_points
    }
    later = {
        (name, frozenset((p.attributes or {}).items())): (p.start_time_unix_nano, p.time_unix_nano)
        for name, metric in step_metrics(second).items()
        for p in metric.data.data_points
    }
    assert times.keys() == later.keys()
    for key, (start, end) in later.items():
        assert start == times[key][0]
        assert start <= times[key][1] < end
    assert comparable(exported_series(step_metrics(second))) == comparable(
        expected(SAMPLE + SAMPLE[:3])
    )


def test_a_delta_collection_holds_only_what_is_new_and_starts_where_the_last_ended(
    made: list[Telemetry],
) -> None:
    reader = InMemoryMetricReader(preferred_temporality=DELTA)
    made.append(t := telemetry_with(reader))
    t.record(SAMPLE)
    first = reader.get_metrics_data()
    assert comparable(exported_series(step_metrics(first))) == comparable(expected(SAMPLE))
    assert {m.data.aggregation_temporality for m in step_metrics(first).values()} == {
        AggregationTemporality.DELTA
    }
    t.record(SAMPLE[:5] + EDGES)
    second = reader.get_metrics_data()
    assert comparable(exported_series(step_metrics(second))) == comparable(
        expected(SAMPLE[:5] + EDGES)
    )
    ended = {p.time_unix_nano for m in step_metrics(first).values() for p in m.data.data_points}
    started = {
        p.start_time_unix_nano
        for name, m in step_metrics(second).items()
        if name in step_metrics(first)
        for p in m.data.data_points
        if (name, frozenset((p.attributes or {}).items())) in expected(SAMPLE)
    }
    assert len(ended) == 1 and started == ended  # one collection time, where the next starts
    assert step_metrics(reader.get_metrics_data()) == {}  # nothing new: no step points


def test_each_reader_keeps_its_own_temporality(made: list[Telemetry]) -> None:
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality=DELTA)
    made.append(t := telemetry_with(cumulative, delta))
    step = [Measurement(mm.STEPS, 1, {"letta.step.status": "success"})]
    t.record(step * 3)
    assert steps_total(cumulative.get_metrics_data()) == 3
    t.record(step * 2)
    assert steps_total(delta.get_metrics_data()) == 5  # its first collection: all of it
    assert steps_total(cumulative.get_metrics_data()) == 5
    t.record(step)
    assert steps_total(delta.get_metrics_data()) == 1
    assert steps_total(delta.get_metrics_data()) == 0
    assert steps_total(cumulative.get_metrics_data()) == 6


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_overflow_past_the_cardinality_limit(made: list[Telemetry], temporality: str) -> None:
    reader = InMemoryMetricReader(
        preferred_temporality=DELTA if temporality == "delta" else None,
        cardinality_limits={Counter: 3, Histogram: 2},
    )
    made.append(t := telemetry_with(reader))
    overflow = frozenset({"otel.metric.overflow": True}.items())

    def collect(agents: range) -> tuple[dict[str, float], dict[str, int]]:
        t.record([Measurement(mm.STEPS, 1, {sc.AGENT_ID: f"a{i}"}) for i in agents])
        t.record([Measurement(mm.STEP_DURATION, 0.1, {sc.REQUEST_MODEL: f"m{i}"}) for i in agents])
        series = exported_series(step_metrics(reader.get_metrics_data()))

        def label(attrs: frozenset[tuple[str, Any]]) -> str:
            return "overflow" if attrs == overflow else str(next(iter(dict(attrs).values())))

        steps = {label(a): s.sum for (n, a), s in series.items() if n == mm.STEPS}
        timed = {label(a): s.count for (n, a), s in series.items() if n == mm.STEP_DURATION}
        return steps, timed

    # the first `limit` attribute sets keep their series; the rest share the overflow one
    assert collect(range(6)) == (
        {"a0": 1, "a1": 1, "a2": 1, "overflow": 3},
        {"m0": 1, "m1": 1, "overflow": 4},
    )
    if temporality == "cumulative":  # the limit holds for the life of the stream
        assert collect(range(4, 9)) == (
            {"a0": 1, "a1": 1, "a2": 1, "overflow": 8},
            {"m0": 1, "m1": 1, "overflow": 9},
        )
    else:  # each delta collection starts afresh
        assert collect(range(4, 9)) == (
            {"a4": 1, "a5": 1, "a6": 1, "overflow": 2},
            {"m4": 1, "m5": 1, "overflow": 3},
        )


def test_invalid_values_are_dropped_with_a_warning(
    made: list[Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    reader = InMemoryMetricReader()
    made.append(t := telemetry_with(reader))
    with caplog.at_level(logging.WARNING):
        t.record(
            [
                Measurement(mm.STEPS, -1, {}),
                Measurement(mm.STEP_DURATION, -0.5, {}),
                Measurement(mm.STEP_DURATION, math.nan, {}),
                Measurement(mm.TOKEN_USAGE, math.inf, {}),
                Measurement(mm.STEP_DURATION, -0.0, {}),  # not negative: kept
            ]
        )
    series = exported_series(step_metrics(reader.get_metrics_data()))
    assert list(series) == [(mm.STEP_DURATION, frozenset())]
    assert series[(mm.STEP_DURATION, frozenset())].count == 1
    for name in (mm.STEPS, mm.STEP_DURATION, mm.TOKEN_USAGE):
        assert name in caplog.text


def test_a_reader_that_prefers_exponential_histograms_gets_them(made: list[Telemetry]) -> None:
    # The GenAI boundaries are an advisory, not a View: a reader's own preference (as
    # OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION sets it) still wins.
    reader = InMemoryMetricReader(
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()}
    )
    made.append(t := telemetry_with(reader))
    t.record(SAMPLE)
    kinds = {
        name: type(m.data).__name__ for name, m in step_metrics(reader.get_metrics_data()).items()
    }
    assert kinds[mm.TOKEN_USAGE] == "ExponentialHistogram"
    assert kinds[mm.STEP_DURATION] == "ExponentialHistogram"
    assert kinds[mm.STEPS] == "Sum"


def test_exemplars_are_the_sdks(made: list[Telemetry], monkeypatch: pytest.MonkeyPatch) -> None:
    def exemplars(reader: InMemoryMetricReader) -> list[Any]:
        return [
            e
            for m in step_metrics(reader.get_metrics_data()).values()
            for p in m.data.data_points
            for e in p.exemplars
        ]

    default = InMemoryMetricReader()
    made.append(t := telemetry_with(default))
    feed_samples(t)
    assert exemplars(default) == []  # trace_based: the bridge records outside any span

    monkeypatch.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_on")
    always = InMemoryMetricReader()
    made.append(t := telemetry_with(always))
    feed_samples(t)
    values = sorted(e.value for e in exemplars(always))
    assert values and set(values) <= {m.value for m in SAMPLE}


def test_concurrent_recording_and_collection_lose_and_double_nothing(
    made: list[Telemetry],
) -> None:
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality=DELTA)
    made.append(t := telemetry_with(cumulative, delta))
    writers, per_writer = 4, 3000
    batch = [
        Measurement(mm.STEPS, 1, {"letta.step.status": "success"}),
        Measurement(mm.STEP_DURATION, 0.25, {"letta.step.status": "success"}),
    ]
    deltas: list[tuple[float, int]] = []
    done = threading.Event()

    def collect_delta() -> None:
        data = delta.get_metrics_data()
        deltas.append((steps_total(data), _histogram_count(data)))

    def collector() -> None:
        while not done.is_set():
            collect_delta()
            cumulative.get_metrics_data()

    def writer() -> None:
        for _ in range(per_writer):
            t.record(batch)

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
    total = writers * per_writer
    assert len(deltas) > 2  # the collections really interleaved with the recording
    assert sum(s for s, _ in deltas) == total
    assert sum(c for _, c in deltas) == total
    final = cumulative.get_metrics_data()
    assert steps_total(final) == total
    assert _histogram_count(final) == total


def _histogram_count(data: MetricsData | None) -> int:
    metric = step_metrics(data).get(mm.STEP_DURATION)
    return 0 if metric is None else sum(p.count for p in metric.data.data_points)


# ------------------------------------------------------------------------ Prometheus


@dataclass
class Scraped:
    text: str
    samples: list[Sample] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)


def scrape(registry: CollectorRegistry) -> Scraped:
    text = generate_latest(registry).decode()
    out = Scraped(text)
    for family in text_string_to_metric_families(text):
        out.types[family.name] = family.type
        out.docs[family.name] = family.documentation
        out.samples.extend(family.samples)
    return out


def prometheus_labels(attributes: frozenset[tuple[str, Any]]) -> dict[str, str]:
    return {k.replace(".", "_"): str(v) for k, v in attributes}


def _matches(sample: Sample, labels: dict[str, str]) -> bool:
    own = {k: v for k, v in sample.labels.items() if not k.startswith("otel_scope_")}
    own.pop("le", None)
    # the exporter fills a label another series of the family has with ""
    return {k: v for k, v in own.items() if v != ""} == labels


def test_prometheus_exposition_after_the_samples(made: list[Telemetry]) -> None:
    registry = CollectorRegistry()
    made.append(t := telemetry_with(PrometheusMetricReader(registry=registry), registry=registry))
    feed_samples(t)
    t.record(EDGES)
    got = scrape(registry)

    for want in INSTRUMENTS.values():
        family = want.prometheus
        kind = "counter" if want.bounds is None else "histogram"
        assert got.types[family] == kind, family
        assert got.docs[family] == want.description
    assert {s.labels["otel_scope_name"] for s in got.samples if "otel_scope_name" in s.labels} == {
        METER_NAME
    }
    target = [s for s in got.samples if s.name == "target_info"]
    assert target and target[0].labels["service_name"] == "letta"

    # Each series of the OTLP data is on /metrics with the same numbers.
    for (name, attributes), series in expected(SAMPLE + EDGES).items():
        family = INSTRUMENTS[name].prometheus
        labels = prometheus_labels(attributes)
        mine = [s for s in got.samples if _matches(s, labels)]
        if series.buckets is None:
            (total,) = [s for s in mine if s.name == f"{family}_total"]
            assert total.value == series.sum
            continue
        (count,) = [s for s in mine if s.name == f"{family}_count"]
        (summed,) = [s for s in mine if s.name == f"{family}_sum"]
        assert (count.value, summed.value) == pytest.approx((series.count, series.sum))
        buckets = [s for s in mine if s.name == f"{family}_bucket"]
        bounds = INSTRUMENTS[name].bounds or ()
        assert [float(s.labels["le"]) for s in buckets] == [*map(float, bounds), math.inf]
        running = [sum(series.buckets[: i + 1]) for i in range(len(series.buckets))]
        assert [s.value for s in buckets] == running  # Prometheus buckets are cumulative

    failed = sum(
        s.value
        for s in got.samples
        if s.name == "letta_steps_total" and s.labels.get("letta_step_status") == "failed"
    )
    assert failed == sum(1 for r in ALL_STEPS if r.step.status == "failed") == 3


def test_the_default_cardinality_limit_shows_as_an_overflow_series(made: list[Telemetry]) -> None:
    registry = CollectorRegistry()
    made.append(t := telemetry_with(PrometheusMetricReader(registry=registry), registry=registry))
    t.record([Measurement(mm.STEPS, 1, {sc.AGENT_ID: f"agent-{i}"}) for i in range(2005)])
    steps = [s for s in scrape(registry).samples if s.name == "letta_steps_total"]
    overflow = [s for s in steps if s.labels.get("otel_metric_overflow") == "true"]
    assert len(steps) == 2001 and len(overflow) == 1  # the SDK's default limit: 2000
    assert overflow[0].value == 5
    assert sum(s.value for s in steps) == 2005


# ----------------------------------------------------------------- real OTLP pushes


@pytest.mark.parametrize("preference", ["delta", "cumulative", None])
def test_otlp_pushes_follow_the_temporality_preference(
    monkeypatch: pytest.MonkeyPatch, preference: str | None
) -> None:
    if preference is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", preference)
    with OtlpReceiver() as receiver:
        settings = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint})
        pushed: list[bool] = []
        # Pushed by hand: an interval that never comes round, then force_flush.
        push = PeriodicExportingMetricReader(
            build_metric_exporter(settings, PushCounter(pushed.append)),
            export_interval_millis=3_600_000,
        )
        registry = CollectorRegistry()
        t = telemetry_with(push, PrometheusMetricReader(registry=registry), registry=registry)
        first, second = ALL_STEPS[:4], ALL_STEPS[4:]
        for record in first:
            t.step_accounted(record)
        assert push.force_flush()
        for record in second:
            t.step_accounted(record)
        assert push.force_flush()
        assert push.force_flush()  # nothing new
        pushes = [
            (m.aggregation_temporality, m.unit, m.description, m.data_points)
            for m in receiver.metrics_by_name().get(mm.STEPS, [])
        ]
        usage = receiver.metrics_by_name()[mm.TOKEN_USAGE]
        served = scrape(registry)
        assert pushed == [True, True, True]
        t.shutdown()  # while the receiver still takes the last push

    totals = [sum(p.value or 0 for p in points) for *_, points in pushes]
    assert {(unit, text) for _, unit, text, _ in pushes} == {
        ("{step}", INSTRUMENTS[mm.STEPS].description)
    }
    assert all(
        p.explicit_bounds == tuple(map(float, TOKEN_BOUNDS)) for m in usage for p in m.data_points
    )
    if preference == "delta":
        assert totals == [len(first), len(second)]  # the idle push has no letta.steps
        assert {temporality for temporality, *_ in pushes} == {"DELTA"}
        first_end = {p.time_ns for p in pushes[0][3]}
        assert {p.start_ns for p in pushes[1][3]} == first_end
    else:
        assert totals == [len(first), len(ALL_STEPS), len(ALL_STEPS)]
        assert {temporality for temporality, *_ in pushes} == {"CUMULATIVE"}
    # /metrics is cumulative whatever the OTLP preference, and unaffected by the pushes
    exposed = sum(s.value for s in served.samples if s.name == "letta_steps_total")
    assert exposed == len(ALL_STEPS)


def test_otlp_pushes_follow_the_default_histogram_aggregation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
        "base2_exponential_bucket_histogram",
    )
    with OtlpReceiver() as receiver:
        settings = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint})
        push = PeriodicExportingMetricReader(
            build_metric_exporter(settings), export_interval_millis=3_600_000
        )
        registry = CollectorRegistry()
        t = telemetry_with(push, PrometheusMetricReader(registry=registry), registry=registry)
        feed_samples(t)
        assert push.force_flush()
        kinds = {m.name: m.type for m in receiver.metrics if m.name in INSTRUMENTS}
        served = scrape(registry)
        t.shutdown()
    assert kinds == {
        mm.STEPS: "sum",
        mm.RUNS: "sum",
        mm.TOKEN_USAGE: "exponential_histogram",
        mm.OPERATION_DURATION: "exponential_histogram",
        mm.STEP_DURATION: "exponential_histogram",
    }
    # /metrics keeps the GenAI buckets: the variable is the OTLP exporter's
    assert served.types["gen_ai_client_token_usage"] == "histogram"
    assert any(s.name == "gen_ai_client_token_usage_bucket" for s in served.samples)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_metric_exporters_report_each_real_push(protocol: str) -> None:
    with OtlpReceiver() as receiver:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_metrics_url
        settings = load_settings(
            env={
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": protocol,
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2000",
            }
        )
        seen: list[bool] = []
        exporter = build_metric_exporter(settings, PushCounter(seen.append))
        reader = InMemoryMetricReader()
        t = telemetry_with(reader)
        feed_samples(t)
        data = reader.get_metrics_data()
        assert data is not None
        assert exporter.export(data).name == "SUCCESS"
        receiver.fail_next(1, grpc_code=grpc.StatusCode.PERMISSION_DENIED, http_status=400)
        assert exporter.export(data).name == "FAILURE"
        exporter.shutdown()
        t.shutdown()
        assert seen == [True, False]
        assert [m.protocol for m in receiver.metrics_by_name()[mm.STEPS]] == [
            "grpc" if protocol == "grpc" else "http"
        ]
