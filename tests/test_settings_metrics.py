"""Settings of the metrics push and the health endpoint (issue #4)."""

from __future__ import annotations

import pytest

from letta_otel.config import ConfigError, Settings, derive_metrics_endpoint, load_settings


def load(**env: str) -> Settings:
    return load_settings(env=env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),
        ({"LETTA_OTEL_METRICS": "false"}, False),
        ({"OTEL_METRICS_EXPORTER": "none"}, False),
        ({"OTEL_METRICS_EXPORTER": "prometheus"}, False),
        ({"OTEL_METRICS_EXPORTER": "otlp,prometheus"}, True),
        ({"OTEL_METRICS_EXPORTER": "none", "LETTA_OTEL_METRICS": "true"}, True),
    ],
)
def test_metrics_switch(env: dict[str, str], expected: bool) -> None:
    assert load(**env).otlp_metrics is expected


@pytest.mark.parametrize("value", ["console", "none,otlp", "zipkin"])
def test_bad_metrics_exporter_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(OTEL_METRICS_EXPORTER=value)
    (problem,) = info.value.problems
    assert problem.startswith("OTEL_METRICS_EXPORTER")
    assert "otlp, prometheus or none" in problem


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://localhost:4317"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http://localhost:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, "http://c:4317"),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
            },
            "http://c:4318/v1/metrics",
        ),
        (  # a traces-only configuration serves both signals
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example.com/otlp/v1/traces",
            },
            "https://otlp.example.com/otlp/v1/metrics",
        ),
        (  # the generic base beats a traces-only URL for metrics (OTel spec)
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4317",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            },
            "http://collector:4317",
        ),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "collector:4317"}, "https://collector:4317"),
        (
            {
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
            },
            "http://c:4317/v1/metrics",
        ),
        (  # a custom traces path cannot be translated: the push stays off
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://vendor/ingest/spans",
            },
            None,
        ),
    ],
)
def test_metrics_endpoint_resolution(env: dict[str, str], expected: str | None) -> None:
    assert load(**env).otlp_metrics_endpoint == expected


def test_direct_construction_derives_the_same_endpoint() -> None:
    assert Settings().otlp_metrics_endpoint == load().otlp_metrics_endpoint
    assert Settings(otlp_protocol="http/protobuf").otlp_metrics_endpoint == (
        "http://localhost:4318/v1/metrics"
    )
    assert derive_metrics_endpoint("http://x:4318/v1/traces", "grpc", "http/protobuf") is None


def test_metrics_transport_falls_back_per_setting() -> None:
    s = load(
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="a=trace",
        OTEL_EXPORTER_OTLP_HEADERS="a=generic",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="2000",
        OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="gzip",
    )
    assert dict(s.otlp_headers) == {"a": "trace"}
    assert dict(s.otlp_metrics_headers or {}) == {"a": "generic"}  # OTel spec: not TRACES_
    assert s.otlp_timeout == 2.0 and s.otlp_metrics_timeout is None  # None: as for traces
    assert s.otlp_compression == "none" and s.otlp_metrics_compression == "gzip"


def test_metrics_transport_contradictions_are_reported() -> None:
    with pytest.raises(ConfigError) as info:
        load(
            OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="deflate",
            OTEL_EXPORTER_OTLP_METRICS_INSECURE="false",
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://c:4317",
        )
    text = " ".join(info.value.problems)
    assert "'deflate' only works with http/protobuf" in text
    assert "insecure is false" in text


def test_export_interval_and_ready_intervals() -> None:
    s = load(OTEL_METRIC_EXPORT_INTERVAL="60000", LETTA_OTEL_READY_INTERVALS="3")
    assert (s.metric_export_interval, s.ready_intervals) == (60.0, 3)
    assert Settings().metric_export_interval == 15.0
    with pytest.raises(ConfigError) as info:
        load(OTEL_METRIC_EXPORT_INTERVAL="15", LETTA_OTEL_READY_INTERVALS="0")
    first, second = info.value.problems
    assert first.startswith("OTEL_METRIC_EXPORT_INTERVAL") and "did you mean 15000" in first
    assert second.startswith("LETTA_OTEL_READY_INTERVALS")


def test_metrics_headers_are_secret() -> None:
    s = load(OTEL_EXPORTER_OTLP_METRICS_HEADERS="x-key=SECRET-m1")
    assert "SECRET" not in repr(s) + str(s.describe())
    with pytest.raises(ConfigError) as info:
        load(OTEL_EXPORTER_OTLP_METRICS_HEADERS="SECRET-m2")
    assert "SECRET" not in str(info.value)
