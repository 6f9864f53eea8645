"""The health endpoint over a real loopback socket: liveness, readiness, exposition.

``/metrics`` is read with ``prometheus_client``'s own parsers (text and OpenMetrics),
so what is checked is what a Prometheus server would ingest.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from letta_otel.config import ConfigError, load_settings
from letta_otel.health import HealthServer, HealthServerError
from letta_otel.pipeline.report import CycleReport
from letta_otel.telemetry import Telemetry, build_telemetry
from tests.samples import SCENARIOS, load_scenario
from tests.test_telemetry import Clock

STEPS = [record for name in SCENARIOS for record in load_scenario(name).steps]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def telemetry(clock: Clock) -> Iterator[Telemetry]:
    registry = CollectorRegistry()
    t = Telemetry(
        resource=Resource({"service.name": "letta"}),
        poll_interval=1,
        ready_intervals=2,
        readers=[PrometheusMetricReader(registry=registry)],
        registry=registry,
        clock=clock,
    )
    yield t
    t.shutdown()


@pytest.fixture
def server(telemetry: Telemetry) -> Iterator[HealthServer]:
    srv = HealthServer("127.0.0.1:0", telemetry).start()
    yield srv
    srv.stop()


def url(server: HealthServer, path: str) -> str:
    host, port = server.address
    return f"http://{host}:{port}{path}"


def test_liveness_and_unknown_paths(server: HealthServer) -> None:
    assert server.address[0] == "127.0.0.1"
    reply = httpx.get(url(server, "/healthz"))
    assert (reply.status_code, reply.text) == (200, "ok\n")
    assert httpx.head(url(server, "/healthz")).status_code == 200
    assert httpx.get(url(server, "/nope")).status_code == 404


def test_readiness_flips_with_polls_and_exports(
    server: HealthServer, telemetry: Telemetry, clock: Clock
) -> None:
    reply = httpx.get(url(server, "/readyz"))
    assert reply.status_code == 503
    assert "no successful poll" in reply.text

    telemetry.polled([])
    assert httpx.get(url(server, "/readyz")).status_code == 200

    telemetry.exported(False, 5, 0)
    telemetry.cycle_finished(CycleReport("steps", failed_batches=1))
    clock.now += 2.5  # more than 2 intervals of 1 s
    telemetry.polled([])
    reply = httpx.get(url(server, "/readyz"))
    assert reply.status_code == 503
    assert "span export failing" in reply.text

    telemetry.exported(True, 5, 0)
    assert httpx.get(url(server, "/readyz")).status_code == 200


def test_readiness_while_starting_names_what_it_waits_for(
    server: HealthServer, telemetry: Telemetry, clock: Clock
) -> None:
    waiting = "waiting for the OTLP endpoint http://collector:4317 (connection refused)"
    telemetry.starting(waiting, 8.0)
    reply = httpx.get(url(server, "/readyz"))
    assert (reply.status_code, reply.text) == (
        503,
        f"not ready: starting: {waiting}; next try in 8s\n",
    )
    assert ready_gauge(server) == 0
    clock.now += 8.5
    assert httpx.get(url(server, "/readyz")).text.endswith("; trying again now\n")

    clock.now += 600  # a long wait, then the endpoints answer
    telemetry.started()
    reply = httpx.get(url(server, "/readyz"))
    # The usual rule from here on; the wait does not count as a failing export.
    assert (reply.status_code, reply.text) == (503, "not ready: no successful poll of Letta yet\n")
    telemetry.polled([])
    assert httpx.get(url(server, "/readyz")).status_code == 200
    assert ready_gauge(server) == 1


def ready_gauge(server: HealthServer) -> float:
    families = text_string_to_metric_families(httpx.get(url(server, "/metrics")).text)
    (value,) = [
        s.value for f in families for s in f.samples if s.name.startswith("letta_otel_ready")
    ]
    return value


def test_metrics_are_valid_prometheus_text(server: HealthServer, telemetry: Telemetry) -> None:
    for record in STEPS:
        telemetry.step_accounted(record)
    telemetry.letta_request_failed("503", 503)
    reply = httpx.get(url(server, "/metrics"))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    steps = families["letta_steps"]  # the parser strips _total from a counter family
    assert steps.type == "counter"
    failed = sum(
        s.value
        for s in steps.samples
        if s.name == "letta_steps_total" and s.labels["letta_step_status"] == "failed"
    )
    assert failed == sum(1 for r in STEPS if r.step.status == "failed")
    usage = families["gen_ai_client_token_usage"]
    assert usage.type == "histogram"
    input_sum = sum(
        s.value
        for s in usage.samples
        if s.name.endswith("_sum") and s.labels["gen_ai_token_type"] == "input"
    )
    assert input_sum == sum(r.step.prompt_tokens or 0 for r in STEPS if r.trace is not None)
    errors = families["letta_otel_letta_request_errors"]
    (sample,) = [s for s in errors.samples if s.name.endswith("_total")]
    assert sample.labels["error_type"] == "503"
    assert sample.labels["http_response_status_code"] == "503"
    assert families["target_info"].samples[0].labels["service_name"] == "letta"


def test_metrics_speak_openmetrics_when_asked(server: HealthServer, telemetry: Telemetry) -> None:
    telemetry.polled([])
    reply = httpx.get(
        url(server, "/metrics"), headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    names = {f.name for f in openmetrics_families(reply.text)}
    assert "letta_otel_poll_last_success_timestamp_seconds" in names


def test_metrics_404_without_a_registry(clock: Clock) -> None:
    bare = Telemetry(
        resource=Resource({}), poll_interval=1, ready_intervals=1, readers=[], clock=clock
    )
    srv = HealthServer("127.0.0.1:0", bare).start()
    try:
        assert httpx.get(url(srv, "/metrics")).status_code == 404
    finally:
        srv.stop()
        bare.shutdown()


def test_busy_port_is_a_clear_error(telemetry: Telemetry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(HealthServerError, match=rf"LETTA_OTEL_HEALTH_ADDR=127.0.0.1:{port}"):
            HealthServer(f"127.0.0.1:{port}", telemetry).start()


def test_ipv6_loopback(telemetry: Telemetry) -> None:
    try:
        srv = HealthServer("[::1]:0", telemetry).start()
    except HealthServerError:
        pytest.fail("IPv6 loopback unavailable on this host")  # every CI host has ::1
    try:
        assert httpx.get(f"http://[::1]:{srv.address[1]}/healthz").status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9464", "127.0.0.1:9464"),
        (" 0.0.0.0:9100 ", "0.0.0.0:9100"),
        ("localhost:0", "localhost:0"),
        ("[::1]:9464", "[::1]:9464"),
        ("off", None),
        ("OFF", None),
        ("none", None),
    ],
)
def test_health_addr_values(value: str, expected: str | None) -> None:
    assert load_settings(env={"LETTA_OTEL_HEALTH_ADDR": value}).health_addr == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (":9464", "has no host"),
        ("127.0.0.1", "must be host:port or off"),
        ("127.0.0.1:99999", "must be host:port or off"),
        ("[::1:9464", "invalid host"),
    ],
)
def test_bad_health_addr_names_the_setting(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"LETTA_OTEL_HEALTH_ADDR": value})
    (problem,) = info.value.problems
    assert problem.startswith("LETTA_OTEL_HEALTH_ADDR")
    assert message in problem


def test_build_telemetry_serves_only_when_asked() -> None:
    settings = load_settings(env={"LETTA_OTEL_METRICS": "false"})
    served = build_telemetry(settings, Resource({}), serve_metrics=True)
    bare = build_telemetry(settings, Resource({}), serve_metrics=False)
    try:
        assert served.registry is not None
        assert bare.registry is None
    finally:
        served.shutdown()
        bare.shutdown()
