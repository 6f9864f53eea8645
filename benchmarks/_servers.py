"""The benchmark's other processes: the fake Letta API and the OTLP receiver.

Each runs in its own process (``python -m benchmarks._servers letta|otlp ...``) so it
shares neither the bridge's GIL nor its CPU accounting. It prints one JSON line with
its address when ready, serves until SIGTERM/SIGINT (or ``--max-seconds``), then
prints one JSON line of statistics and exits.

Two Letta workloads: ``traced`` (every step terminal, with its provider trace and
metrics at once) and ``letta-like`` (``tests/fakes/workload.py``: the live workload's
dynamics frozen at a point in time; see ``LettaLikeWorkload.backlog``).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.fakes.workload import LettaLikeWorkload, WorkloadConfig, requests_by_kind

# Every step of these scenarios has a provider trace and metrics (stream_fail has no trace).
TRACED_SCENARIOS = (
    "plain",
    "tool_two_steps",
    "slow",
    "fail_http500",
    "fail_malformed",
    "stream_tool",
    "async_slow_tool",
    "memgpt_plain",
    "memgpt_tool",
)
STEPS_PER_ROUND = 13  # steps in one round of TRACED_SCENARIOS


def _wait_for_stop(max_seconds: float) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait(max_seconds)


def _emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def _traced(steps: int, spacing_ms: float) -> tuple[FakeLettaData, dict[str, Any]]:
    n_runs = math.ceil(steps * len(TRACED_SCENARIOS) / STEPS_PER_ROUND)
    data = FakeLettaData.generate(
        n_runs, scenarios=TRACED_SCENARIOS, spacing=timedelta(milliseconds=spacing_ms)
    )
    return data, {"runs": len(data.run_ids())}


def _letta_like(steps: int, rate: float, seed: int) -> tuple[FakeLettaData, dict[str, Any]]:
    """The live workload frozen at its last arrival: what is in flux then stays so."""
    data = FakeLettaData.empty(seed=seed)
    workload = LettaLikeWorkload.backlog(data, steps, WorkloadConfig(rate=rate), seed=seed)
    now = data.clock()
    truth = workload.steps()
    due = [s for s in truth if s.ready <= now]
    return data, {
        "runs": len(workload.runs()),
        "frozen_at": now.isoformat(),
        "generated_steps": len(truth),
        "not_started": sum(1 for s in truth if s.created > now),
        "pending": sum(1 for s in truth if s.created <= now < s.terminal),
        "not_committed": sum(1 for s in truth if s.created <= now < s.visible),
        "failed": sum(1 for s in due if s.failed),
        "never_traced": sum(1 for s in due if not s.has_trace),
        "trace_not_written_yet": sum(1 for s in due if s.trace_at is not None and s.trace_at > now),
        "metrics_not_written_yet": sum(
            1 for s in due if s.metrics_at is not None and s.metrics_at > now
        ),
        "late_committed": sum(1 for s in due if s.late_commit),
        "without_run": sum(1 for s in due if s.run_id is None),
    }


def serve_letta(  # noqa: PLR0917 - the subcommand's options
    steps: int,
    latency: float,
    max_seconds: float,
    spacing_ms: float,
    workload: str = "traced",
    rate: float = 10.0,
    seed: int = 0,
) -> None:
    data, about = (
        _letta_like(steps, rate, seed) if workload == "letta-like" else _traced(steps, spacing_ms)
    )
    with FakeLettaServer(data, latency_s=latency) as server:
        _emit(
            {
                "url": server.base_url,
                "workload": workload,
                "steps": len(data.expected_terminal_step_ids()),
                "agents": sorted({s["agent_id"] for s in data.steps()}),
                **about,
            }
        )
        _wait_for_stop(max_seconds)
        kinds: Counter[str] = Counter()
        for request in server.requests:
            parts = request.path.strip("/").split("/")  # v1, steps, {id}, trace
            kind = "/".join(parts[1:2] + ["{id}"] * (len(parts) > 2) + parts[3:4])
            kinds[kind] += 1
        _emit(
            {
                "requests": sum(kinds.values()),
                "by_route": dict(kinds.most_common()),
                "by_kind": dict(requests_by_kind(server.requests).most_common()),
            }
        )


def serve_otlp(max_seconds: float) -> None:
    with OtlpReceiver() as receiver:
        _emit({"grpc_endpoint": receiver.grpc_endpoint, "http_endpoint": receiver.http_endpoint})
        _wait_for_stop(max_seconds)
        spans = receiver.spans
        step_ids = Counter(
            str(s.attributes.get("letta.step.id")) for s in spans if s.name == "agent_step"
        )
        run_ids = Counter(
            str(s.attributes.get("letta.run.id"))
            for s in spans
            if s.name.startswith("invoke_agent")
        )
        _emit(
            {
                "spans": len(spans),
                "unique_steps": len(step_ids),
                "duplicate_steps": sum(n - 1 for n in step_ids.values()),
                "unique_runs": len(run_ids),
                "duplicate_runs": sum(n - 1 for n in run_ids.values()),
                "requests": len(receiver.requests),
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    letta = sub.add_parser("letta")
    letta.add_argument("--steps", type=int, default=20_000)
    letta.add_argument("--latency", type=float, default=0.02)
    letta.add_argument("--spacing-ms", type=float, default=100.0)
    letta.add_argument("--workload", choices=["traced", "letta-like"], default="traced")
    letta.add_argument("--rate", type=float, default=10.0, help="letta-like: runs per second")
    letta.add_argument("--seed", type=int, default=0)
    letta.add_argument("--max-seconds", type=float, default=3600)
    otlp = sub.add_parser("otlp")
    otlp.add_argument("--max-seconds", type=float, default=3600)
    ns = parser.parse_args(argv)
    if ns.what == "letta":
        serve_letta(
            ns.steps, ns.latency, ns.max_seconds, ns.spacing_ms, ns.workload, ns.rate, ns.seed
        )
    else:
        serve_otlp(ns.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
