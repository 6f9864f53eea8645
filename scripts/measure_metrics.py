"""Measure what metrics cost the bridge: recording per step, collection, /metrics size.

    python -m scripts.measure_metrics [--agents 50] [--steps 20000] [--repeat 5]

From the repo root. Records the real Letta samples' steps through ``Telemetry`` as the
bridge does after each confirmed batch (``step_accounted``: the pure mapping of
``mapping/metrics.py``, then the SDK instruments), spread over ``--agents`` agents, into
the daemon's two readers: the Prometheus reader and a second SDK reader standing in
for the OTLP push (an in-memory one: the same work per measurement, no network). Then
one collection of each, as a push and a scrape do. CPU time (``process_time``), best of
``--repeat``. Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace

from msgspec.structs import replace as struct_replace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from letta_otel.letta.models import Agent
from letta_otel.mapping.metrics import step_measurements
from letta_otel.mapping.records import StepRecord
from letta_otel.telemetry import Telemetry
from tests.samples import SCENARIOS, load_scenario


def _records(steps: int, agents: int) -> list[StepRecord]:
    samples = [r for name in SCENARIOS for r in load_scenario(name).steps]
    records = []
    for i in range(steps):
        base = samples[i % len(samples)]
        agent_id = f"agent-{i % agents:08d}"
        records.append(
            replace(
                base,
                step=struct_replace(base.step, agent_id=agent_id),
                agent=Agent(id=agent_id, name=f"agent {i % agents}"),
            )
        )
    return records


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = _records(args.steps, args.agents)
    n = len(records)

    def map_only() -> None:
        for record in records:
            step_measurements(record)

    mapping = _best(map_only, args.repeat)
    measurements = sum(len(step_measurements(r)) for r in records)

    registry = CollectorRegistry()
    otlp = InMemoryMetricReader()
    telemetry = Telemetry(
        resource=Resource({"service.name": "letta"}),
        poll_interval=5,
        ready_intervals=12,
        readers=[PrometheusMetricReader(registry=registry), otlp],
        registry=registry,
    )

    def account() -> None:
        for record in records:
            telemetry.step_accounted(record)

    accounted = _best(account, args.repeat)
    tracemalloc.start()  # slows allocation down: timed above, without it
    account()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    started = time.process_time()
    otlp.get_metrics_data()
    collect = time.process_time() - started
    started = time.process_time()
    body = generate_latest(registry)
    scrape = time.process_time() - started
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    telemetry.shutdown()

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:6.1f} µs"

    print(f"steps recorded:                  {n} over {args.agents} agents")
    print(f"measurements per step:           {measurements / n:.2f}")
    print(f"pure mapping per step:           {us(mapping)}")
    print(f"step_accounted per step:         {us(accounted)}  (mapping + recording)")
    print(f"recording alone per step:        {us(accounted - mapping)}  (two readers)")
    print(f"peak memory of one more pass:    {peak / 1e3:.0f} kB (tracemalloc)")
    print(f"OTLP-side collection:            {collect * 1e3:.1f} ms")
    print(
        f"/metrics render:                 {scrape * 1e3:.1f} ms, {len(body) / 1e3:.0f} kB, "
        f"{series} samples"
    )


if __name__ == "__main__":
    main()
