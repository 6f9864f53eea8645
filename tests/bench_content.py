"""CPU cost of mapping with content capture off and on, per 1000 Letta steps.

Maps the 14 real sample steps (10-16 KB provider payloads each) over and over with
each capture mode, timing process CPU, and reports the OTLP-encoded size per step.
Not a test (no pass/fail); run it and read the numbers:

    python -m tests.bench_content [--steps 7000]

Against an older checkout without content capture, only the NO_CONTENT row is printed
(``PYTHONPATH=<that checkout> python <this file>``), which makes the baseline.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from letta_otel.mapping import ids
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.spans import MappingContext, map_step
from tests.samples import SCENARIOS, load_scenario

BASE = MappingContext(
    resource=Resource({"service.name": "letta"}),
    scope=InstrumentationScope("letta-otel", "bench"),
    letta_server=("127.0.0.1", 8283),
)


def contexts() -> dict[str, MappingContext]:
    found = {"NO_CONTENT (default)": BASE}
    try:
        from letta_otel.mapping.capture import CaptureMode, ContentPolicy  # noqa: PLC0415
        from letta_otel.mapping.limits import Limits  # noqa: PLC0415
    except ImportError:  # a checkout from before content capture
        return found
    for label, mode, limits in (
        ("SPAN_ONLY", CaptureMode.SPAN_ONLY, Limits()),
        ("SPAN_AND_EVENT", CaptureMode.SPAN_AND_EVENT, Limits()),
        ("SPAN_ONLY, Tempo 2048 B", CaptureMode.SPAN_ONLY, Limits(max_attribute_bytes=2048)),
    ):
        found[label] = replace(BASE, content=ContentPolicy(mode, limits=limits))
    return found


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=7000, help="steps to map per mode")
    args = parser.parse_args()
    records: list[tuple[StepRecord, int]] = []
    for name in SCENARIOS:
        scenario = load_scenario(name)
        trace_id = ids.trace_id_from_letta_id(scenario.run.id)
        records += [(r, trace_id) for r in scenario.steps]
    rounds = max(1, args.steps // len(records))
    steps = rounds * len(records)

    def run(ctx: MappingContext) -> None:
        for _ in range(rounds):
            for record, trace_id in records:
                map_step(record, ctx, trace_id)

    print(f"{steps} steps per mode ({len(records)} real sample steps x {rounds})")
    print(f"{'mode':26} {'CPU ms / 1000 steps':>20} {'OTLP bytes / step':>18}")
    for label, ctx in contexts().items():
        run(ctx)  # warm-up
        seconds = min(cpu_seconds(lambda c=ctx: run(c)) for _ in range(3))  # type: ignore[misc]
        spans = [s for record, tid in records for s in map_step(record, ctx, tid)]
        encoded = len(encode_spans(spans).SerializeToString()) / len(records)
        print(f"{label:26} {seconds / steps * 1e6:>20.1f} {encoded:>18.0f}")


if __name__ == "__main__":
    main()
