"""The issue's yardstick, run on this machine: a straightforward sequential poller.

    python -m benchmarks.naive --steps 1000 --latency 0.02

Issue 6 sets letta-otel's CPU target (≤ 0.5 CPU-s per 1,000 steps) beside a reference
measured on the machine it was written on: "a straightforward sequential poller (official
SDK + OTel SDK batch processor) manages about 20 steps/s at 20 ms latency and spends
about 7 CPU-seconds per 1000 steps". CPU seconds depend on the machine (the same
letta-otel code measured 0.49-0.54 on earlier development machines and about twice that
on a slower one), so this module rebuilds that reference, and ``benchmarks.bench
--baseline-steps N`` runs it in the same harness to print letta-otel's CPU as a fraction
of it: the target is 0.5 / 7 = 7.1 % of it.

The poller is what a careful user would write in an afternoon, not a strawman: the
official ``letta-client`` SDK (sync, httpx underneath), steps listed oldest first by
cursor, and for each finished step its provider trace, its metrics, its messages only
when the model asked for a tool, its run once (by id: paging the runs listing forward
takes ``before`` on Letta 0.16.8 where its documentation says ``after``, which letta-otel
detects and a straightforward poller would not); spans made with the OTel SDK's tracer
(explicit start and end times, GenAI attribute names) through a ``BatchSpanProcessor``
and the SDK's OTLP gRPC exporter. It makes the requests letta-otel makes plus one a run
(about 3.1 a step; the issue's 20 steps/s at 20 ms imply about 2.5) and sends comparable
spans (a run span, a step span, a chat span, a span per tool call), one request at a
time. It has none of letta-otel's guarantees (no checkpoint, no retry, no export
confirmation): it is a CPU yardstick only.

Needs the SDK: ``pip install -e '.[bench]'`` (``letta-client``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from benchmarks.bench import (
    REPO,
    cpu_plan,
    letta_workload_args,
    pin_threads,
    start_server,
    stop_server,
)

# The harness's poller subprocess prints one JSON line when done.
_DONE = "naive-done "


def _ns(when: datetime | str | None) -> int | None:
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    if when.tzinfo is None:  # Letta writes some run times without a zone: UTC
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1e9)


def _tool_calls(response: Any) -> list[dict[str, Any]]:
    if not isinstance(response, dict):
        return []
    calls: list[dict[str, Any]] = []
    for choice in response.get("choices") or []:
        message = choice.get("message") or {}
        calls.extend(message.get("tool_calls") or [])
    return calls


def poll(url: str, endpoint: str, expected: int) -> dict[str, Any]:  # noqa: PLR0915
    """Export ``expected`` finished steps once, sequentially; CPU from the first request."""
    from letta_client import Letta, NotFoundError  # noqa: PLC0415 - an optional dependency
    from opentelemetry import trace  # noqa: PLC0415
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415

    client = Letta(base_url=url, api_key="bench")
    provider = TracerProvider(resource=Resource.create({"service.name": "letta-naive"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint, insecure=True)))
    tracer = provider.get_tracer("letta-naive")

    cpu0, wall0 = time.process_time(), time.monotonic()
    run_contexts: dict[str, Any] = {}  # the run span of each run seen, as a parent
    seen: set[str] = set()
    after: str | None = None
    while len(seen) < expected:
        page = client.steps.list(after=after, limit=100, order="asc")
        if not page.items:
            time.sleep(0.5)
            continue
        for step in page.items:
            after = step.id
            if step.status not in ("success", "failed") or step.id in seen:
                continue
            seen.add(step.id)
            provider_trace = client.steps.trace.retrieve(step.id)  # None: not written
            try:
                metrics = client.steps.metrics.retrieve(step.id)
            except NotFoundError:  # not written (yet): Letta answers 404
                metrics = None
            response = provider_trace.response_json if provider_trace else None
            calls = _tool_calls(response)
            messages = []
            if calls or provider_trace is None:
                messages = client.steps.messages.list(step.id).items  # one page
            run_id = step.run_id or ""
            if run_id not in run_contexts:
                run = client.runs.retrieve(run_id) if run_id else None
                start = _ns(run.created_at) if run else None
                end = _ns(run.completed_at) if run else None
                span = tracer.start_span(
                    "invoke_agent",
                    kind=SpanKind.INTERNAL,
                    start_time=start,
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.id": step.agent_id or "",
                        "letta.run.id": run_id,
                        "letta.run.status": str(run.status) if run else "",
                    },
                )
                span.end(end_time=end)
                run_contexts[run_id] = trace.set_span_in_context(span)
            end_ns = _ns(provider_trace.created_at) if provider_trace else None
            step_ns = (metrics.step_ns if metrics else None) or 0
            start_ns = end_ns - step_ns if end_ns is not None else None
            step_span = tracer.start_span(
                "agent_step",
                context=run_contexts[run_id],
                start_time=start_ns,
                attributes={
                    "letta.step.id": step.id,
                    "letta.run.id": run_id,
                    "gen_ai.agent.id": step.agent_id or "",
                    "letta.step.status": str(step.status),
                    "gen_ai.usage.input_tokens": step.prompt_tokens or 0,
                    "gen_ai.usage.output_tokens": step.completion_tokens or 0,
                },
            )
            if step.status == "failed":
                step_span.set_status(Status(StatusCode.ERROR, str(step.error_type or "")))
            context = trace.set_span_in_context(step_span)
            if provider_trace is not None:
                llm_ns = (metrics.llm_request_ns if metrics else None) or 0
                chat = tracer.start_span(
                    f"chat {step.model}",
                    kind=SpanKind.CLIENT,
                    context=context,
                    start_time=start_ns,
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": step.provider_name or "",
                        "gen_ai.request.model": step.model or "",
                        "gen_ai.response.model": str((response or {}).get("model") or ""),
                        "gen_ai.response.id": str((response or {}).get("id") or ""),
                        "gen_ai.usage.input_tokens": step.prompt_tokens or 0,
                        "gen_ai.usage.output_tokens": step.completion_tokens or 0,
                        "letta.step.id": step.id,
                    },
                )
                chat.end(end_time=(start_ns + llm_ns) if start_ns is not None else None)
            for call in calls:
                function = call.get("function") or {}
                tool = tracer.start_span(
                    f"execute_tool {function.get('name')}",
                    context=context,
                    start_time=start_ns,
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": function.get("name") or "",
                        "gen_ai.tool.call.id": call.get("id") or "",
                        "letta.step.id": step.id,
                    },
                )
                tool.end(end_time=end_ns)
            step_span.set_attribute("letta.step.messages", len(messages))
            step_span.end(end_time=end_ns)
    provider.force_flush()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    provider.shutdown()
    return {"steps": len(seen), "cpu_s": cpu, "wall_s": wall}


def measure(
    steps: int,
    latency: float,
    *,
    pin: bool | None = None,
    timeout: float = 900,
    workload_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the poller in its own process against fresh fake servers; its numbers.

    ``workload_args``: the fake Letta's workload options (``bench.letta_workload_args``).
    """
    placement = cpu_plan(pin)
    before = os.sched_getaffinity(0) if placement is not None else None
    if placement is not None:
        os.sched_setaffinity(0, placement[0])
    letta, letta_info = start_server(
        "letta", "--steps", str(steps), "--latency", str(latency), *workload_args, timeout=120
    )
    otlp, otlp_info = start_server("otlp", timeout=60)
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.naive",
                "--poll",
                letta_info["url"],
                otlp_info["grpc_endpoint"],
                str(letta_info["steps"]),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONPATH": str(REPO)},
        )
        if placement is not None:
            pin_threads(proc.pid, placement[1])
        out, _ = proc.communicate(timeout=timeout)
    finally:
        letta_stats = stop_server(letta)
        otlp_stats = stop_server(otlp)
        if before is not None:
            os.sched_setaffinity(0, before)
    lines = [line for line in out.splitlines() if line.startswith(_DONE)]
    if proc.returncode or not lines:
        raise SystemExit(
            f"the naive poller failed (exit {proc.returncode}); is letta-client installed?"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(_DONE) :])
    n = result["steps"]
    result |= {
        "steps_per_s": round(n / result["wall_s"], 1),
        "cpu_s_per_1000_steps": round(result["cpu_s"] / n * 1000, 3),
        "requests_per_step": round(int(letta_stats.get("requests", 0)) / n, 3),
        "receiver": otlp_stats,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per Letta request")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--workload", choices=["traced", "letta-like"], default="traced")
    parser.add_argument("--workload-rate", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--poll", nargs=3, metavar=("URL", "ENDPOINT", "STEPS"), help=argparse.SUPPRESS
    )
    ns = parser.parse_args(argv)
    if ns.poll:
        url, endpoint, expected = ns.poll
        print(_DONE + json.dumps(poll(url, endpoint, int(expected))), flush=True)
        return 0
    result = measure(
        ns.steps,
        ns.latency,
        pin=ns.pin,
        workload_args=letta_workload_args(ns.workload, ns.workload_rate, ns.seed),
    )
    print(
        f"sequential SDK poller: {result['steps']} steps in {result['wall_s']:.1f} s = "
        f"{result['steps_per_s']} steps/s; {result['cpu_s_per_1000_steps']:.2f} CPU-s per "
        f"1000 steps; {result['requests_per_step']} Letta requests per step; "
        f"receiver {result['receiver']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
