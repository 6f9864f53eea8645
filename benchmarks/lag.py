"""Lag benchmark: how soon a step that became terminal in Letta reaches the backend.

    python -m benchmarks.lag --duration 300 --poll-interval 1
    python -m benchmarks.lag --duration 300 --poll-interval 5
    python -m benchmarks.lag --duration 300 --poll-interval 1 --hang-fraction 0.003 --faults 0.01

Starts, in this process, the fake Letta API driven by the Letta-like live workload
(``tests/fakes/workload.py``: runs arriving continuously, pending rows, traces written
0-6 s after the step or never, metrics 404 until written, late commits, failed runs,
steps without a run) and the OTLP receiver (``tests/fakes/otlp_receiver.py``), both on
127.0.0.1; runs the daemon as a subprocess (``python -m letta_otel run``, configured by
environment variables only); lets runs arrive for ``--duration`` seconds, then stops the
arrivals and waits (at most ``--drain`` seconds) until everything Letta has made
visible has arrived at the receiver, plus a few poll intervals to catch duplicates.

Printed (wall-clock times; the fake Letta and the receiver share this machine's clock):

- lag from "terminal in Letta" (ground truth: when the step row left ``pending``) to the
  first span of that step at the receiver: p50/p95/max for all steps, failed steps, steps
  that never get a provider trace, late-committed steps (for these also from when they
  became visible);
- the ``letta.steps`` failed counter against the ERROR spans: the daemon's ``/metrics``
  endpoint (Prometheus text, on a free port) is scraped every ``--scrape`` seconds, and
  the k-th failed step counted is paired with the k-th ERROR step span received;
- delivery: every provider trace Letta wrote arrived as exactly one LLM span (and none
  for steps without one), no step or run exported twice, none lost;
- Letta requests per exported step by kind (from the fake's request log);
- poll cycle durations (from the daemon's text log, when it logs them);
- peak RSS of the daemon (``VmHWM``).

A script that prints numbers, never a timed test. Exit status 1 when something was lost
or doubled.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench import bridge_env, extra_settings, first_error, memory_kib
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.fakes.workload import (
    LettaLikeWorkload,
    StepTruth,
    WorkloadConfig,
    add_random_faults,
    requests_by_kind,
)

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
# On an LLM span built from a provider trace (not from the step's metrics alone).
PROVIDER_TRACE_ID = "letta.provider_trace.id"
# letta.steps as Prometheus renders it: letta_steps_total{letta_step_status="failed",...} 3.0
_FAILED_SERIES = re.compile(r"^letta_steps(?:_total)?\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_CYCLE_TOOK = re.compile(r"cycle via \S+: .* took=(?P<s>[0-9.]+)s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failed_count(metrics_text: str) -> float:
    """The sum of the failed series of ``letta.steps`` in a Prometheus exposition."""
    total = 0.0
    for line in metrics_text.splitlines():
        m = _FAILED_SERIES.match(line)
        if m and 'letta_step_status="failed"' in m["labels"]:
            total += float(m["value"])
    return total


def scrape(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return failed_count(resp.read().decode())
    except OSError:
        return None


def percentiles(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, p50, p95 and max (nearest rank), rounded to ``digits``."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], digits)

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "max": round(ordered[-1], digits),
    }


def time_weighted_median(durations: Sequence[float]) -> float | None:
    """The duration of the cycle a moment picked at random (while cycles ran) falls in."""
    total = sum(durations)
    if total <= 0:
        return None
    seen = 0.0
    for d in sorted(durations):
        seen += d
        if seen >= total / 2:
            return round(d, 2)
    return round(max(durations), 2)


def _fmt(stats: dict[str, Any]) -> str:
    if not stats["n"]:
        return "n=0"
    return (
        f"p50 {stats['p50']:g} s, p95 {stats['p95']:g} s, max {stats['max']:g} s (n={stats['n']})"
    )


def _ts(moment: datetime) -> float:
    return moment.timestamp()


@dataclass
class Received:
    """What the receiver got, by Letta id."""

    first_by_step: dict[str, float] = field(default_factory=dict)  # first span of any kind
    step_spans: Counter[str] = field(default_factory=Counter)
    error_spans: dict[str, float] = field(default_factory=dict)  # step id -> first ERROR span
    llm_spans: Counter[str] = field(default_factory=Counter)  # every LLM span of a step
    llm_traced: Counter[str] = field(default_factory=Counter)  # those built from its trace
    run_spans: Counter[str] = field(default_factory=Counter)
    doubled_span_ids: int = 0

    @classmethod
    def of(cls, spans: Iterable[ReceivedSpan]) -> Received:
        out = cls()
        span_ids: Counter[str] = Counter()
        for span in spans:
            span_ids[span.span_id] += 1
            attrs = span.attributes
            step_id = attrs.get("letta.step.id")
            if isinstance(step_id, str):
                first = out.first_by_step.get(step_id)
                if first is None or span.received_wall < first:
                    out.first_by_step[step_id] = span.received_wall
                if span.name == "agent_step":
                    out.step_spans[step_id] += 1
                    if span.status_code == "ERROR" and step_id not in out.error_spans:
                        out.error_spans[step_id] = span.received_wall
                elif attrs.get("gen_ai.operation.name") in LLM_OPERATIONS:
                    out.llm_spans[step_id] += 1
                    if PROVIDER_TRACE_ID in attrs:
                        out.llm_traced[step_id] += 1
            run_id = attrs.get("letta.run.id")
            if span.name.startswith("invoke_agent") and isinstance(run_id, str):
                out.run_spans[run_id] += 1
        out.doubled_span_ids = sum(n - 1 for n in span_ids.values() if n > 1)
        return out


@dataclass
class Expectation:
    """What the backend should have by now, from the workload's ground truth."""

    steps: list[StepTruth]  # visible and terminal: to be exported
    traced: list[StepTruth]  # of those, with a provider trace written
    runs: list[str]  # terminal runs with a visible step, to get a root span
    undiscoverable: list[StepTruth]  # steps without a run on the runs fallback

    @classmethod
    def now(cls, workload: LettaLikeWorkload, *, runs_fallback: bool) -> Expectation:
        now = datetime.now(UTC)
        due = [s for s in workload.steps() if s.ready <= now]
        hidden = [s for s in due if runs_fallback and s.run_id is None]
        steps = [s for s in due if not (runs_fallback and s.run_id is None)]
        traced = [s for s in steps if s.trace_at is not None and s.trace_at <= now]
        stepped = {s.run_id for s in steps if s.run_id}
        runs = [r.run_id for r in workload.runs() if r.terminal <= now and r.run_id in stepped]
        return cls(steps, traced, runs, hidden)

    def complete(self, got: Received) -> bool:
        return (
            all(s.step_id in got.step_spans for s in self.steps)
            and all(s.step_id in got.llm_traced for s in self.traced)
            and all(r in got.run_spans for r in self.runs)
        )


@dataclass
class Watch:
    """Samples taken while the daemon runs."""

    failed_counter: list[tuple[float, float]] = field(default_factory=list)  # (wall, count)
    peak_rss_kib: int = 0
    rss_kib: int = 0

    def sample(self, pid: int, metrics_url: str) -> None:
        count = scrape(metrics_url)
        if count is not None:
            self.failed_counter.append((time.time(), count))
        try:
            mem = memory_kib(pid)
        except OSError:
            return
        self.peak_rss_kib = max(self.peak_rss_kib, mem.get("VmHWM", 0))
        self.rss_kib = mem.get("VmRSS", 0)

    def counted_at(self, k: int) -> float | None:
        """When the failed counter first showed at least ``k``."""
        return next((t for t, c in self.failed_counter if c >= k), None)


def settled(workload: LettaLikeWorkload) -> bool:
    """Nothing more will change in Letta: every step visible and terminal, every trace
    that will be written written, every run final."""
    now = datetime.now(UTC)
    return all(
        s.ready <= now and (s.trace_at is None or s.trace_at <= now) for s in workload.steps()
    ) and all(r.terminal <= now for r in workload.runs())


def wait_for_log(bridge: subprocess.Popen[Any], log_path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline or bridge.poll() is not None:
            raise SystemExit(f"the daemon did not start; see {log_path}")
        time.sleep(0.05)


def cycle_durations(log_path: Path) -> list[float]:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return []
    return [float(m["s"]) for m in _CYCLE_TOOK.finditer(text)]


def report(
    workload: LettaLikeWorkload,
    got: Received,
    expect: Expectation,
    watch: Watch,
    *,
    requests: Counter[str],
    cycles: list[float],
) -> dict[str, Any]:
    def lags(steps: Iterable[StepTruth], since: str = "terminal") -> list[float]:
        out = []
        for s in steps:
            first = got.first_by_step.get(s.step_id)
            if first is not None:
                out.append(first - _ts(s.terminal if since == "terminal" else s.ready))
        return out

    steps = expect.steps
    failed = [s for s in steps if s.failed]
    no_trace = [s for s in steps if not s.has_trace]
    late = [s for s in steps if s.late_commit]
    lost = [s.step_id for s in steps if s.step_id not in got.step_spans]

    # The counter moves without saying which step: pair the k-th failed step it counted
    # with the k-th ERROR span received, and with that step's terminal time.
    errors = sorted((t, sid) for sid, t in got.error_spans.items())
    counter_after_span, counter_lag = [], []
    for k, (span_at, sid) in enumerate(errors, start=1):
        counted = watch.counted_at(k)
        if counted is not None:
            counter_after_span.append(counted - span_at)
            counter_lag.append(counted - _ts(workload.step(sid).terminal))

    traced_ids = {s.step_id for s in expect.traced}
    never = {s.step_id for s in steps if not s.has_trace}
    exported = len(got.step_spans)
    result: dict[str, Any] = {
        "generated": {
            "runs": len(workload.runs()),
            "steps": len(workload.steps()),
            "steps_due": len(steps),
            "failed_steps": len(failed),
            "steps_never_traced": len(no_trace),
            "late_committed_steps": len(late),
            "steps_without_run": sum(1 for s in steps if s.run_id is None),
            "undiscoverable_steps_without_run": len(expect.undiscoverable),
        },
        "lag_s": {
            "all": percentiles(lags(steps)),
            "failed": percentiles(lags(failed)),
            "never_traced": percentiles(lags(no_trace)),
            "late_committed": percentiles(lags(late)),
            "late_committed_from_visible": percentiles(lags(late, since="ready")),
        },
        "failed_counter": {
            "source": "scrape of the daemon's /metrics (Prometheus text)",
            "error_spans": len(errors),
            "counted_failed": watch.failed_counter[-1][1] if watch.failed_counter else None,
            "lag_s": percentiles(counter_lag),
            "after_error_span_s": percentiles(counter_after_span),
        },
        "delivery": {
            "steps_exported": exported,
            "steps_lost": len(lost),
            "lost_examples": lost[:5],
            "steps_doubled": sum(1 for n in got.step_spans.values() if n > 1),
            "runs_expected": len(expect.runs),
            "runs_exported": len(got.run_spans),
            "runs_lost": sum(1 for r in expect.runs if r not in got.run_spans),
            "runs_doubled": sum(1 for n in got.run_spans.values() if n > 1),
            "llm_traces_written": len(traced_ids),
            # exactly one LLM span for the step, and it carries the trace
            "llm_spans_once": sum(
                1 for sid in traced_ids if got.llm_spans[sid] == 1 and got.llm_traced[sid] == 1
            ),
            "llm_spans_missing": sum(1 for sid in traced_ids if not got.llm_traced[sid]),
            "llm_spans_doubled": sum(1 for sid in traced_ids if got.llm_spans[sid] > 1),
            # a trace on a step for which Letta wrote none: cannot be right
            "llm_spans_without_trace": sum(1 for sid in never if got.llm_traced[sid]),
            # LLM spans the daemon built from a step's metrics, without its trace
            "llm_spans_from_metrics_only": sum(
                got.llm_spans[sid] - got.llm_traced[sid] for sid in got.llm_spans
            ),
            "span_ids_received_twice": got.doubled_span_ids,
        },
        "letta_requests": {
            "total": sum(requests.values()),
            "per_exported_step": round(sum(requests.values()) / max(1, exported), 2),
            "per_exported_step_by_kind": {
                kind: round(n / max(1, exported), 3) for kind, n in requests.most_common()
            },
        },
        "cycles_s": percentiles(cycles, 2)
        | {
            "min": round(min(cycles), 2) if cycles else None,
            # The cycle a random moment falls in: long cycles weigh by their length.
            "time_weighted_p50": time_weighted_median(cycles),
            "time_in_cycles_over_10s": round(
                sum(c for c in cycles if c > 10) / max(sum(cycles), 1e-9), 3
            ),
        },
        "peak_rss_mb": round(watch.peak_rss_kib / 1024, 1),
    }
    return result


def print_report(r: dict[str, Any], ns: argparse.Namespace) -> None:
    g, lag, fc, d, req = (
        r["generated"],
        r["lag_s"],
        r["failed_counter"],
        r["delivery"],
        r["letta_requests"],
    )
    print(
        f"\nworkload: {g['runs']} runs, {g['steps']} steps ({g['steps_due']} terminal and "
        f"visible: {g['failed_steps']} failed, {g['steps_never_traced']} never traced, "
        f"{g['late_committed_steps']} committed late, {g['steps_without_run']} without a run"
        + (
            f"; {g['undiscoverable_steps_without_run']} more without a run, which the runs "
            "fallback cannot list"
            if g["undiscoverable_steps_without_run"]
            else ""
        )
        + ")"
    )
    print("lag from terminal in Letta to the step's first span at the receiver:")
    for label, key in (
        ("all steps", "all"),
        ("failed steps", "failed"),
        ("steps never traced", "never_traced"),
        ("late-committed steps", "late_committed"),
        ("  the same, from when they became visible", "late_committed_from_visible"),
    ):
        print(f"  {label:<44} {_fmt(lag[key])}")
    print(
        f"letta.steps failed counter ({fc['source']}, every {ns.scrape:g} s): "
        f"{fc['counted_failed']} counted for {fc['error_spans']} ERROR step spans; "
        f"lag from terminal {_fmt(fc['lag_s'])}; "
        f"after the ERROR span {_fmt(fc['after_error_span_s'])}"
    )
    print(
        f"delivery: {d['steps_exported']} steps exported, {d['steps_lost']} lost, "
        f"{d['steps_doubled']} doubled; runs {d['runs_exported']} exported of "
        f"{d['runs_expected']} due, {d['runs_lost']} lost, {d['runs_doubled']} doubled; "
        f"LLM spans: {d['llm_spans_once']} of {d['llm_traces_written']} written traces "
        f"arrived exactly once, {d['llm_spans_missing']} missing, {d['llm_spans_doubled']} "
        f"doubled, {d['llm_spans_without_trace']} carrying a trace Letta never wrote "
        f"({d['llm_spans_from_metrics_only']} built from step metrics alone); "
        f"span ids received twice: {d['span_ids_received_twice']}"
    )
    by_kind = ", ".join(f"{k} {v:g}" for k, v in req["per_exported_step_by_kind"].items())
    print(
        f"Letta requests: {req['total']}, {req['per_exported_step']} per exported step ({by_kind})"
    )
    c = r["cycles_s"]
    print(
        "poll cycles: "
        + (
            f"{c['n']}, took min {c['min']} s, {_fmt(c)}; the cycle a random moment falls "
            f"in took {c['time_weighted_p50']} s (time-weighted median), "
            f"{c['time_in_cycles_over_10s']:.0%} of the time was spent in cycles over 10 s"
            if c["n"]
            else "(no cycle lines in the daemon's log)"
        )
    )
    print(f"daemon peak RSS: {r['peak_rss_mb']} MB")


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of arrivals")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=1.0, help="runs per second")
    parser.add_argument("--hang-fraction", type=float, default=0.0, help="e.g. 0.003")
    parser.add_argument("--hang-seconds", type=float, default=20.0)
    parser.add_argument(
        "--faults", type=float, default=0.0, help="share of requests with another fault"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps-route", choices=["ok", "legacy400"], default="ok")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per Letta request")
    parser.add_argument(
        "--drain", type=float, default=180.0, help="at most this long after the arrivals stop"
    )
    parser.add_argument("--scrape", type=float, default=0.5, help="seconds between scrapes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="an extra environment setting for the daemon",
    )
    ns = parser.parse_args(argv)

    data = FakeLettaData.empty(seed=ns.seed)
    workload = LettaLikeWorkload(data, WorkloadConfig(rate=ns.rate), seed=ns.seed)
    workdir = Path(tempfile.mkdtemp(prefix="letta-otel-lag-"))
    log_path = workdir / "daemon.log"
    health_port = free_port()
    metrics_url = f"http://127.0.0.1:{health_port}/metrics"
    runs_fallback = ns.steps_route == "legacy400"
    with (
        FakeLettaServer(data, steps_route=ns.steps_route, latency_s=ns.latency) as letta,
        OtlpReceiver() as otlp,
    ):
        env = bridge_env(
            letta.base_url,
            otlp.grpc_endpoint,
            protocol="grpc",
            state_path=workdir / "state.db",
            poll_interval=ns.poll_interval,
            concurrency=16,
        )
        env.pop("LETTA_OTEL_MAX_CONCURRENCY")  # the daemon's default
        env |= {
            "LETTA_OTEL_INITIAL_LOOKBACK": "1h",
            "LETTA_OTEL_HEALTH_ADDR": f"127.0.0.1:{health_port}",
        }
        env |= extra_settings(ns.set)
        with log_path.open("w") as log:
            bridge = subprocess.Popen(
                [sys.executable, "-m", "letta_otel", "run"],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        watch = Watch()
        try:
            wait_for_log(bridge, log_path, "discovering steps through", timeout=60)
            # Faults start with the workload: the daemon's start-up is not what is measured.
            letta.faults.reseed(ns.seed)
            add_random_faults(
                letta.faults,
                hang_fraction=ns.hang_fraction,
                hang_seconds=ns.hang_seconds,
                fault_fraction=ns.faults,
            )
            workload.start()
            print(
                f"daemon pid {bridge.pid} (log {log_path}); poll interval {ns.poll_interval:g} s; "
                f"{ns.rate:g} runs/s for {ns.duration:g} s, seed {ns.seed}, steps route "
                f"{ns.steps_route}; {ns.hang_fraction:.2%} of requests hang "
                f"{ns.hang_seconds:g} s, {ns.faults:.2%} get another fault",
                flush=True,
            )
            end = time.monotonic() + ns.duration
            while time.monotonic() < end:
                if bridge.poll() is not None:
                    raise SystemExit(f"the daemon exited ({bridge.returncode}); see {log_path}")
                watch.sample(bridge.pid, metrics_url)
                time.sleep(ns.scrape)
            workload.stop()
            drained_at = None
            deadline = time.monotonic() + ns.drain
            while time.monotonic() < deadline:
                watch.sample(bridge.pid, metrics_url)
                expect = Expectation.now(workload, runs_fallback=runs_fallback)
                if settled(workload) and expect.complete(Received.of(otlp.spans)):
                    drained_at = time.monotonic()
                    break
                time.sleep(ns.scrape)
            # Duplicates come a cycle or two later, if at all.
            linger = time.monotonic() + 2 * ns.poll_interval + 2
            while time.monotonic() < linger:
                watch.sample(bridge.pid, metrics_url)
                time.sleep(ns.scrape)
            print(
                "drained: everything due arrived"
                if drained_at is not None
                else f"drain period of {ns.drain:g} s over with steps still missing",
                flush=True,
            )
        finally:
            bridge.terminate()
            try:
                bridge.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bridge.kill()
        expect = Expectation.now(workload, runs_fallback=runs_fallback)
        got = Received.of(otlp.spans)
        requests = requests_by_kind(letta.requests)
    result = report(
        workload, got, expect, watch, requests=requests, cycles=cycle_durations(log_path)
    )
    result["settings"] = {
        "duration_s": ns.duration,
        "poll_interval_s": ns.poll_interval,
        "rate_runs_per_s": ns.rate,
        "hang_fraction": ns.hang_fraction,
        "hang_s": ns.hang_seconds,
        "faults": ns.faults,
        "seed": ns.seed,
        "steps_route": ns.steps_route,
        "latency_s": ns.latency,
        "extra": ns.set,
    }
    print_report(result, ns)
    error = first_error(log_path)
    if error:
        print(f"first ERROR in the daemon's log: {error}")
    if ns.json:
        print(json.dumps(result))
    d = result["delivery"]
    bad = (
        d["steps_lost"]
        or d["steps_doubled"]
        or d["runs_lost"]
        or d["runs_doubled"]
        or d["llm_spans_missing"]
        or d["llm_spans_doubled"]
        or d["llm_spans_without_trace"]
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
