"""Measure what metrics cost the bridge: recording per step, /metrics size and scrape time.

    python -m scripts.measure_metrics [--agents 50] [--steps 20000]   (from the repo root)

Records the real Letta samples' steps through Telemetry (as the bridge does after each
confirmed batch), spread over ``--agents`` agents, then renders /metrics the way the
health endpoint does. Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import replace

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from letta_otel.letta.models import Agent
from letta_otel.mapping.metrics import step_measurements
from letta_otel.telemetry import Telemetry
from tests.samples import SCENARIOS, load_scenario


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()

    samples = [r for name in SCENARIOS for r in load_scenario(name).steps]
    records = []
    for i in range(args.steps):
        base = samples[i % len(samples)]
        agent_id = f"agent-{i % args.agents:08d}"
        records.append(
            replace(
                base,
                step=base.step.model_copy(update={"agent_id": agent_id}),
                agent=Agent(id=agent_id, name=f"agent {i % args.agents}"),
            )
        )

    started = time.perf_counter()
    for record in records:
        step_measurements(record)
    mapping = time.perf_counter() - started

    registry = CollectorRegistry()
    telemetry = Telemetry(
        resource=Resource({"service.name": "letta"}),
        poll_interval=5,
        ready_intervals=12,
        readers=[PrometheusMetricReader(registry=registry)],
        registry=registry,
    )
    half = len(records) // 2
    started = time.perf_counter()
    for record in records[:half]:
        telemetry.step_accounted(record)
    recording = (time.perf_counter() - started) / half * args.steps
    tracemalloc.start()  # slows allocation down: timed above, without it
    for record in records[half:]:
        telemetry.step_accounted(record)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    started = time.perf_counter()
    body = generate_latest(registry)
    scrape = time.perf_counter() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    telemetry.shutdown()

    print(f"steps recorded:            {args.steps} over {args.agents} agents")
    print(f"pure mapping per step:     {mapping / args.steps * 1e6:.1f} us")
    print(f"mapping + recording/step:  {recording / args.steps * 1e6:.1f} us")
    print(f"peak memory, 2nd half:     {peak / 1e6:.1f} MB (tracemalloc)")
    print(
        f"/metrics render:           {scrape * 1e3:.1f} ms, {len(body) / 1e3:.0f} kB, "
        f"{series} samples"
    )


if __name__ == "__main__":
    main()
