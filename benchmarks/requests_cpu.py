"""Process CPU per Letta request through letta-otel's Letta client, nothing else.

``python benchmarks/requests_cpu.py MODE [--steps N]`` starts the fake Letta API
(``benchmarks._servers letta``, 20 ms added to every request) in its own process,
lists its steps, then fetches each step with 16 requests in flight and prints the
process CPU (user and system) per step:

- ``metrics``: two GETs of the step's metrics (small bodies: the client's own cost);
- ``trace``: two GETs of the step's provider trace (about 13 KB bodies);
- ``raw``: trace, metrics and, for 46% of the steps, messages, as the daemon does,
  one attempt each through the client's transport (its aiohttp session), without the
  retry policy or decoding;
- ``full``: the same through ``LettaClient`` (retry policy, decoding and validation
  included).

``metrics`` and ``trace`` go through the transport as ``raw`` does.

The figure is the whole process's CPU, the event loop's and the kernel's included.
Compare it with a minimal asyncio Protocol that writes a fixed GET and resolves a
future in ``data_received`` (about 40 µs per request on the 2-core development
machine). The machine is shared: run each variant three times, compare best-of.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

# Run as a script from anywhere: the repository root (this worktree) first on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yarl import URL

from benchmarks.bench import start_server, stop_server
from letta_otel import eventloop
from letta_otel.letta.client import LettaClient
from letta_otel.retry import Deadline

IN_FLIGHT = 16
MODES = ("metrics", "trace", "raw", "full")


async def _measure(url: str, mode: str, steps: int) -> None:
    client = LettaClient(url, max_connections=IN_FLIGHT)

    async def get(path: str) -> None:
        """One attempt through the client's transport: no retry policy, no decoding."""
        await client._fetch(URL(url + path, encoded=True), path, Deadline(120.0))

    ids: list[str] = []
    after: str | None = None
    while len(ids) < steps:
        page, _ = await client.list_steps(after=after)
        if not page:
            break
        ids += [step.id for step in page]
        after = page[-1].id
    ids = ids[:steps]
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int, step_id: str) -> None:
        async with gate:
            if mode == "metrics":
                await get(f"/v1/steps/{step_id}/metrics")
                await get(f"/v1/steps/{step_id}/metrics")
            elif mode == "trace":
                await get(f"/v1/steps/{step_id}/trace")
                await get(f"/v1/steps/{step_id}/trace")
            elif mode == "raw":
                await get(f"/v1/steps/{step_id}/trace")
                await get(f"/v1/steps/{step_id}/metrics")
                if i % 100 < 46:
                    await get(f"/v1/steps/{step_id}/messages")
            else:
                await client.get_trace(step_id, lean=True)
                await client.get_metrics(step_id)
                if i % 100 < 46:
                    await client.get_messages(step_id)

    times0, cpu0, wall0 = os.times(), time.process_time(), time.monotonic()
    await asyncio.gather(*(one(i, step_id) for i, step_id in enumerate(ids)))
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    times1 = os.times()
    n = len(ids)
    user = (times1.user - times0.user) / n * 1e6
    system = (times1.system - times0.system) / n * 1e6
    print(f"user/step {user:.0f} µs, sys/step {system:.0f} µs")
    print(f"{mode} {n} steps: cpu {cpu:.2f} s = {cpu / n * 1e6:.0f} µs/step, wall {wall:.1f} s")
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--steps", type=int, default=10_000)
    ns = parser.parse_args()
    proc, info = start_server("letta", "--steps", str(ns.steps), "--latency", "0.02", timeout=120)
    try:
        eventloop.tune_gc()
        eventloop.run(_measure(info["url"], ns.mode, ns.steps))
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
