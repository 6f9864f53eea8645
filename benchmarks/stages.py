"""CPU per step of each in-process stage of the bridge, without sockets or an event loop.

``python -m benchmarks.stages [--steps N] [--repeat R] [--profile]`` builds the benchmark's own
fake Letta data, serialises every step's trace, metrics and messages as the server
would, then times (best of ``--repeat``) each stage the bridge runs for a step:
JSON parsing and validation, span mapping, the size estimate batches are packed by,
OTLP encoding (the SDK's, per batch, as its exporters do in ``export()``) and the metric
measurements recorded with the daemon's readers.
The end-to-end benchmark (``benchmarks.bench``) measures the whole process; this one
says where the time goes, repeatably enough (about ±2%) to judge a change of a few
microseconds per step. ``--profile`` also prints a cProfile of one mapping pass over
fresh records (cProfile inflates call-heavy code: confirm a finding with the timings).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import math
import pstats
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource

from benchmarks._servers import STEPS_PER_ROUND, TRACED_SCENARIOS
from letta_otel.assemble import build_context
from letta_otel.config import Settings
from letta_otel.export.budget import estimate_unit_bytes
from letta_otel.letta.decode import lean_trace, list_decoder, parse_list
from letta_otel.letta.enrich import StepParts
from letta_otel.letta.models import Message, Run, Step, StepMetrics, convert, json_decoder
from letta_otel.mapping import ids
from letta_otel.mapping.records import RunRecord, StepRecord, needs_messages
from letta_otel.mapping.spans import map_run, map_step
from letta_otel.telemetry import build_telemetry
from tests.fakes.letta_api import FakeLettaData


def _bodies(steps: int) -> tuple[list[dict[str, bytes]], dict[str, bytes]]:
    n_runs = math.ceil(steps * len(TRACED_SCENARIOS) / STEPS_PER_ROUND)
    data = FakeLettaData.generate(
        n_runs, scenarios=TRACED_SCENARIOS, spacing=timedelta(milliseconds=5)
    )
    out = []
    for step in data.steps()[:steps]:
        sid = step["id"]
        out.append(
            {
                "step": orjson.dumps(step),
                "trace": orjson.dumps(data.trace(sid)),
                "metrics": orjson.dumps(data.metrics(sid)),
                "messages": orjson.dumps(data.messages(sid)),
            }
        )
    runs = {rid: orjson.dumps(data.run(rid)) for rid in data.run_ids()}
    return out, runs


def _best(
    fn: Callable[[], Any], repeat: int, setup: Callable[[], object] = lambda: None
) -> tuple[float, Any]:
    """The least CPU time ``fn`` took over ``repeat`` runs (``setup`` before each, untimed)."""
    best, result = math.inf, None
    for _ in range(repeat):
        setup()
        gc.collect()
        t0 = time.process_time()
        result = fn()
        best = min(best, time.process_time() - t0)
    return best, result


def _profile(fn: Callable[[], Any], setup: Callable[[], object]) -> None:
    """Print the top functions of one run of ``fn`` by own and by cumulative time."""
    setup()
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(30)


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the mapping stage")
    ns = parser.parse_args(argv)
    bodies, run_bodies = _bodies(ns.steps)
    n = len(bodies)
    # A self-hosted Letta, as the spans of earlier measurements named (the default is Cloud).
    settings = Settings(letta_base_url="http://localhost:8283")
    ctx = build_context(settings)

    step_decoder = json_decoder(list[Step]).decode
    metrics_decoder = json_decoder(StepMetrics | None).decode
    messages_decoder = list_decoder(Message)

    def parse() -> list[StepRecord]:
        records = []
        for b in bodies:
            # As the client: straight from the bytes (steps come in pages of many).
            step = step_decoder(b"[" + b["step"] + b"]")[0]
            trace = lean_trace(b["trace"])  # as the daemon, content capture off
            metrics = metrics_decoder(b["metrics"])
            parts = StepParts(trace, metrics, ())
            messages: tuple[Message, ...] = ()
            if needs_messages(parts):
                messages = tuple(parse_list(messages_decoder(b["messages"]), Message, "message")[0])
            records.append(StepRecord(step=step, trace=trace, metrics=metrics, messages=messages))
        return records

    t_parse, records = _best(parse, ns.repeat)
    runs = {rid: convert(Run, orjson.loads(body)) for rid, body in run_bodies.items()}
    records = [
        StepRecord(
            step=r.step,
            trace=r.trace,
            metrics=r.metrics,
            messages=r.messages,
            run=runs.get(r.step.run_id or ""),
        )
        for r in records
    ]
    used_runs = [runs[rid] for rid in {r.step.run_id for r in records if r.step.run_id}]

    cold: list[StepRecord] = []

    def fresh() -> None:  # the memo is per record: each repeat maps records never mapped
        cold[:] = [
            StepRecord(
                step=r.step, trace=r.trace, metrics=r.metrics, messages=r.messages, run=r.run
            )
            for r in records
        ]

    def mapping() -> list[list[Any]]:
        out = [
            map_step(r, ctx, ids.trace_id_from_letta_id(r.step.run_id or r.step.id)) for r in cold
        ]
        out += [
            [map_run(RunRecord(run), ctx, ids.trace_id_from_letta_id(run.id))] for run in used_runs
        ]
        return out

    t_map, units = _best(mapping, ns.repeat, setup=fresh)
    if ns.profile:
        _profile(mapping, setup=fresh)
    n_spans = sum(len(u) for u in units)

    class _U:
        def __init__(self, spans: Any) -> None:
            self.spans = spans

    wrapped = [_U(u) for u in units]
    t_est, _ = _best(lambda: [estimate_unit_bytes(u) for u in wrapped], ns.repeat)

    def encode() -> None:  # as the SDK exporters do in export(), a batch at a time
        for i in range(0, len(units), 160):
            encode_spans([s for u in units[i : i + 160] for s in u]).SerializeToString()

    t_enc, _ = _best(encode, ns.repeat)

    telemetry = build_telemetry(settings, Resource({}), serve_metrics=settings.health_addr != "off")

    def record() -> None:  # after mapping, as in the daemon: the records' memo is filled
        for r in cold:
            telemetry.step_accounted(r)
        for run in used_runs:
            telemetry.run_accounted(RunRecord(run))

    t_metrics, _ = _best(record, ns.repeat)
    telemetry.shutdown(flush=False)

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:7.1f} µs/step"

    print(f"{n} steps, {len(used_runs)} runs, {n_spans} spans ({n_spans / n:.2f} per step)")
    rows = [
        ("parse + validate", t_parse),
        ("map spans", t_map),
        ("estimate size", t_est),
        ("encode OTLP", t_enc),
        ("record metrics", t_metrics),
    ]
    for name, seconds in rows:
        print(f"  {name:<18} {us(seconds)}")
    print(f"  {'total':<18} {us(sum(s for _, s in rows))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
