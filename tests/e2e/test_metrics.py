"""Metrics, health and alert recipes end to end, over real sockets.

Metric values are compared with what the fake Letta served (failed steps, token sums,
run statuses); the OTLP receiver decodes the pushed metrics, and ``/metrics`` is read
with ``prometheus_client``'s parser. The shipped alert recipes are checked against
what the bridge really emits: every metric name a Prometheus rule uses must be in the
exposition, and the failed-step selectors must match exactly the failed steps.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from letta_otel import cli
from letta_otel.mapping import metrics as mm
from tests.e2e.conftest import REPO, BridgeEnv, RunOnce, spawn, step_spans
from tests.e2e.test_daemon_process import finish, wait_until
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedDataPoint, ReceivedSpan

CONFIG = REPO / "config"


def latest(receiver: OtlpReceiver, name: str) -> tuple[ReceivedDataPoint, ...]:
    """The data points of the last push of ``name`` (cumulative: the totals)."""
    return receiver.wait_for_metrics(name)[-1].data_points


def total(points: tuple[ReceivedDataPoint, ...], **attrs: object) -> float:
    chosen = [p for p in points if all(p.attributes.get(k) == v for k, v in attrs.items())]
    return sum((p.sum if p.sum is not None else p.value) or 0 for p in chosen)


def served_steps(data: FakeLettaData) -> list[dict[str, Any]]:
    terminal = set(data.expected_terminal_step_ids())
    return [s for s in data.steps() if s["id"] in terminal]


# ------------------------------------------------------------------- OTLP metrics push


def test_pushed_metrics_equal_the_served_data(
    run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer
) -> None:
    assert run_once() == 0
    steps = served_steps(letta.data)
    counted = latest(receiver, mm.STEPS)
    failed = [s for s in steps if s["status"] == "failed"]
    assert len(failed) == 3
    assert total(counted, **{"letta.step.status": "failed"}) == len(failed)
    assert total(counted) == len(steps)
    by_error = Counter(
        p.attributes.get("error.type") for p in counted for _ in range(int(p.value or 0))
    )
    assert by_error["LLMServerError"] == len(failed)

    usage = latest(receiver, mm.TOKEN_USAGE)
    assert total(usage, **{"gen_ai.token.type": "input"}) == sum(s["prompt_tokens"] for s in steps)
    assert total(usage, **{"gen_ai.token.type": "output"}) == sum(
        s["completion_tokens"] for s in steps
    )
    assert all(p.explicit_bounds == tuple(float(b) for b in mm.TOKEN_BUCKETS) for p in usage)
    assert all(p.attributes["gen_ai.operation.name"] == "chat" for p in usage)

    runs = latest(receiver, mm.RUNS)
    served_runs = Counter(r["status"] for r in letta.data.runs())
    assert {
        status: total(runs, **{"letta.run.status": status}) for status in served_runs
    } == served_runs

    metric = receiver.metrics_by_name()[mm.STEPS][-1]
    assert metric.aggregation_temporality == "CUMULATIVE"
    assert metric.resource["service.name"] == "letta"
    assert metric.resource == receiver.spans[0].resource  # one resource for both signals
    attempts = latest(receiver, "letta_otel.export.attempts")
    trace_requests = [r for r in receiver.requests if r.signal == "traces"]
    assert total(attempts, **{"letta_otel.signal": "traces"}) == len(trace_requests)
    assert total(latest(receiver, "letta_otel.spans.exported")) == len(receiver.spans)


def test_a_failed_export_counts_each_step_once(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    # The first (trace) request is refused for good; the metrics push at exit goes through.
    receiver.fail_next(1, grpc_code=grpc.StatusCode.PERMISSION_DENIED, http_status=400)
    assert run_once() == 1
    assert mm.STEPS not in receiver.metrics_by_name()  # nothing confirmed, nothing counted
    failures = latest(receiver, "letta_otel.export.failures")
    assert total(failures, **{"letta_otel.signal": "traces"}) == 1

    receiver.clear()
    assert run_once() == 0
    assert total(latest(receiver, mm.STEPS)) == len(served_steps(bridge_env.letta.data))

    receiver.clear()
    assert run_once() == 0  # nothing new: a restart does not count anything again
    assert mm.STEPS not in receiver.metrics_by_name()
    assert mm.FEEDBACK not in receiver.metrics_by_name()


@pytest.mark.parametrize(
    "switch", [{"LETTA_OTEL_METRICS": "false"}, {"OTEL_METRICS_EXPORTER": "none"}]
)
def test_metrics_push_can_be_turned_off(
    run_once: RunOnce, receiver: OtlpReceiver, switch: dict[str, str]
) -> None:
    assert run_once(**switch) == 0
    assert len(receiver.spans) == 43
    assert [r for r in receiver.requests if r.signal != "traces"] == []


def test_metrics_transport_over_http_with_its_own_headers(
    bridge_env: BridgeEnv,
    run_once: RunOnce,
    receiver: OtlpReceiver,
    capfd: pytest.CaptureFixture[str],
) -> None:
    bridge_env.protocol = "http/protobuf"
    assert run_once(OTEL_EXPORTER_OTLP_METRICS_HEADERS="x-metrics-key=m-secret-77") == 0
    out, err = capfd.readouterr()
    assert "m-secret-77" not in out + err  # a secret, like the trace headers
    pushes = [r for r in receiver.requests if r.signal == "metrics"]
    assert pushes and all(r.path == "/v1/metrics" and r.protocol == "http" for r in pushes)
    assert all(r.headers["x-metrics-key"] == "m-secret-77" for r in pushes)
    traces = [r for r in receiver.requests if r.signal == "traces"]
    assert traces and all("x-metrics-key" not in r.headers for r in traces)


# ------------------------------------------------------------------------------ feedback


def test_feedback_present_at_export_is_counted_once(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    data = bridge_env.letta.data
    ids = [s["id"] for s in served_steps(data)]
    for step_id, value in zip(ids[:3], ("positive", "positive", "negative"), strict=True):
        data.patch_step(step_id, feedback=value)
    assert run_once() == 0
    points = latest(receiver, mm.FEEDBACK)
    assert total(points, **{"letta.step.feedback": "positive"}) == 2
    assert total(points, **{"letta.step.feedback": "negative"}) == 1

    receiver.clear()
    assert run_once() == 0
    assert mm.FEEDBACK not in receiver.metrics_by_name()


@pytest.fixture
def steps_letta(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[BridgeEnv]:
    """The working steps route only (where the has_feedback listing exists)."""
    with (
        OtlpReceiver() as rx,
        FakeLettaServer(FakeLettaData.from_samples(), steps_route="ok") as server,
    ):
        env = BridgeEnv(server, rx, tmp_path / "state.db")
        for key, value in env.env().items():
            monkeypatch.setenv(key, value)
        yield env


def test_feedback_given_after_export_is_counted_on_the_steps_route(
    steps_letta: BridgeEnv,
) -> None:
    receiver, data = steps_letta.receiver, steps_letta.letta.data
    assert cli.main(["run", "--once"]) == 0
    assert mm.FEEDBACK not in receiver.metrics_by_name()
    first, second = (s["id"] for s in served_steps(data)[:2])
    data.patch_step(first, feedback="negative")
    data.patch_step(second, feedback="positive")

    receiver.clear()
    assert cli.main(["run", "--once"]) == 0
    assert receiver.spans == []  # the steps are not exported again...
    points = latest(receiver, mm.FEEDBACK)  # ...but their late feedback is counted
    assert total(points, **{"letta.step.feedback": "negative"}) == 1
    assert total(points, **{"letta.step.feedback": "positive"}) == 1
    listing = [
        r
        for r in steps_letta.letta.requests
        if r.path == "/v1/steps/" and r.query.get("has_feedback") == ["true"]
    ]
    assert listing

    data.patch_step(second, feedback="negative")  # changed its mind
    receiver.clear()
    assert cli.main(["run", "--once"]) == 0
    points = latest(receiver, mm.FEEDBACK)
    assert total(points, **{"letta.step.feedback": "negative"}) == 1
    assert total(points, **{"letta.step.feedback": "positive"}) == 0


# ------------------------------------------------------------------- trace alert recipes


def _span_matches_traceql(span: ReceivedSpan, query: str) -> bool:
    conditions = re.findall(r'(span\.[\w.]+|name)\s*=\s*"([^"]*)"', query)
    assert conditions, query
    return all(
        (span.name if key == "name" else span.attributes.get(key.removeprefix("span."))) == value
        for key, value in conditions
    )


def _span_matches_honeycomb(span: ReceivedSpan, query: dict[str, Any]) -> bool:
    assert query["filter_combination"] == "AND"
    for f in query["filters"]:
        assert f["op"] == "="
        actual = span.name if f["column"] == "name" else span.attributes.get(f["column"])
        if actual != f["value"]:
            return False
    return True


def test_tempo_and_honeycomb_recipes_find_exactly_the_failed_steps(
    run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer
) -> None:
    assert run_once() == 0
    failed = {s["id"] for s in served_steps(letta.data) if s["status"] == "failed"}
    traceql = (CONFIG / "tempo-failed-steps.traceql").read_text().strip()
    found = {
        str(s.attributes["letta.step.id"])
        for s in receiver.spans
        if _span_matches_traceql(s, traceql)
    }
    assert found == failed

    trigger = json.loads((CONFIG / "honeycomb-trigger-failed-steps.json").read_text())
    assert trigger["threshold"] == {"op": ">", "value": 0}
    assert trigger["alert_type"] in ("on_change", "on_true")
    assert 60 <= trigger["frequency"] <= 86400
    assert trigger["query"]["time_range"] <= 4 * trigger["frequency"]
    query = trigger["query"]
    matched = [s for s in receiver.spans if _span_matches_honeycomb(s, query)]
    assert {str(s.attributes["letta.step.id"]) for s in matched} == failed
    for span in matched:  # the breakdown columns exist on every matched span
        assert all(column in span.attributes for column in query["breakdowns"])
        assert span.status_code == "ERROR"


# --------------------------------------------------- the daemon: /readyz, /metrics, rules

_PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "time", "absent", "and", "or", "unless", "ignoring",
    "on", "without", "avg", "max", "min", "count", "humanize",
}  # fmt: skip
_MATCHER = re.compile(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"')


def rule_metric_names(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}", "", expr)
    bare = re.sub(r"\b(by|without|ignoring|on)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return words - _PROMQL_WORDS


def select(samples: list[Sample], selector: str) -> float:
    """Sum of the samples a PromQL vector selector such as ``m{a="b"}`` picks."""
    name, _, matchers = selector.partition("{")
    wanted = _MATCHER.findall(matchers)

    def ok(sample: Sample) -> bool:
        for label, op, value in wanted:
            actual = sample.labels.get(label, "")
            hit = re.fullmatch(value, actual) is not None if op == "=~" else actual == value
            if hit == (op == "!="):
                return False
        return True

    return sum(s.value for s in samples if s.name == name.strip() and ok(s))


def scrape(port: int) -> list[Sample]:
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert reply.status_code == 200
    return [s for family in text_string_to_metric_families(reply.text) for s in family.samples]


def ready(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
    except httpx.TransportError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_daemon_readiness_exposition_and_shipped_alert_rules(
    steps_letta: BridgeEnv,
) -> None:
    receiver, data = steps_letta.receiver, steps_letta.letta.data
    port = free_port()
    env = steps_letta.env(
        LETTA_OTEL_HEALTH_ADDR=f"127.0.0.1:{port}",
        LETTA_OTEL_READY_INTERVALS="10",  # 10 x 0.2 s
        LETTA_OTEL_ENRICH_GRACE="1s",
        OTEL_EXPORTER_OTLP_TIMEOUT="1000",
        LETTA_OTEL_LOG_FORMAT="json",
        LETTA_OTEL_LOG_LEVEL="INFO",
    )
    proc = spawn(env, "run")
    try:
        wait_until(lambda: ready(port) == 200, 20, "/readyz to turn ready")
        wait_until(lambda: len(receiver.spans) >= 43, 20, "the first 43 spans")
        before = scrape(port)
        steps = served_steps(data)
        failed_selector = 'letta_steps_total{letta_step_status="failed"}'
        assert select(before, failed_selector) == 3
        assert select(before, "letta_steps_total") == len(steps)
        input_tokens = 'gen_ai_client_token_usage_sum{gen_ai_token_type="input"}'
        assert select(before, input_tokens) == sum(s["prompt_tokens"] for s in steps)

        receiver.pause()  # the backend goes down while new work arrives
        data.add_run("fail_http500")
        data.add_run("plain")
        wait_until(lambda: ready(port) == 503, 30, "/readyz to report the failing export")
        reply = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        assert "span export failing" in reply.text
        failures = 'letta_otel_export_failures_total{letta_otel_signal="traces"}'
        wait_until(lambda: select(scrape(port), failures) >= 1, 30, "a failed export attempt")
        receiver.resume()
        wait_until(lambda: ready(port) == 200, 60, "/readyz to recover")
        wait_until(lambda: len(step_spans(receiver.spans)) >= 16, 30, "the new steps")
        after = scrape(port)
    finally:
        proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err[-3000:]

    # The failed-step alert: its selector grew by exactly the one new failed step.
    assert select(after, failed_selector) - select(before, failed_selector) == 1
    assert select(after, "letta_steps_total") - select(before, "letta_steps_total") == 2
    assert select(after, failures) >= 1

    check_shipped_rules(after)
    check_cycle_logs(err, len(step_spans(receiver.spans)))


def check_shipped_rules(after: list[Sample]) -> None:
    """Every rule parses, names only served metrics, and its selectors match series."""
    rules = yaml.safe_load((CONFIG / "prometheus-rules.yml").read_text())
    exposed = {s.name for s in after}
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    shipped = {r["alert"] for r in alerts}
    assert {"LettaAgentStepFailed", "LettaAgentStepFailureRatioHigh", "LettaOtelStalled",
            "LettaOtelExportFailing", "LettaOtelLagHigh"} <= shipped  # fmt: skip
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert rule["annotations"]["summary"]
        names = rule_metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exposed, f"{rule['alert']} uses metrics letta-otel does not serve"
        for selector in re.findall(r"\w+\{[^}]*\}", rule["expr"]):
            assert select(after, selector) > 0, f"{rule['alert']}: {selector} matches nothing"


def check_cycle_logs(err: str, steps_exported: int) -> None:
    """JSON mode: each cycle summary carries its numbers as fields."""
    cycles = [
        json.loads(line)
        for line in err.splitlines()
        if line.startswith("{") and '"event": "cycle"' in line
    ]
    assert cycles
    for entry in cycles:
        assert {"steps_seen", "steps_exported", "steps_pending", "lag_s", "letta_errors"} <= set(
            entry
        )
    assert any(e["failed_batches"] and e["level"] == "WARNING" for e in cycles)
    assert sum(e["steps_exported"] for e in cycles) == steps_exported


def test_busy_health_port_is_exit_2_with_one_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = spawn(
            {
                "LETTA_BASE_URL": "http://localhost:8283",  # self-hosted: no API key needed
                "LETTA_OTEL_HEALTH_ADDR": f"127.0.0.1:{port}",
                "LETTA_OTEL_STATE_PATH": str(tmp_path / "state.db"),
            },
            "run",
        )
        code, err = finish(proc)
    assert code == 2
    assert f"LETTA_OTEL_HEALTH_ADDR=127.0.0.1:{port}: cannot listen there" in err
    assert "Traceback" not in err
    assert "Failed to export" not in err  # no final metrics push burying the real error
