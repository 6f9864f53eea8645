"""Run ``letta-otel`` under an in-process CPU sampler: ``python -m benchmarks._profile OUT ARGS``.

A ``SIGPROF`` timer (process CPU time, not wall time) interrupts the daemon every
millisecond of CPU; the handler records the Python stack it lands in. Unlike a ptrace
sampler (py-spy), it never stops the process at system-call boundaries, so short system
calls are not over-sampled. Time spent in C code (the event loop, parsers) is charged to
the Python frame that resumes after it. At exit it writes ``OUT`` with one
``frame;frame;... count`` line per stack (flame-graph "collapsed" format) and prints the
top functions by self and inclusive samples to stderr.
"""

from __future__ import annotations

import atexit
import collections
import os
import signal
import sys
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.001


def _label(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("/letta_otel/", "/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_name}"


def _cprofile(out: Path, args: list[str]) -> int:
    """Deterministic alternative (``LETTA_OTEL_PROFILER=cprofile``): exact call counts and
    time in C functions (parsers, SQLite, sockets), but every Python call costs more."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    from letta_otel.cli import main as cli_main  # noqa: PLC0415

    profiler = cProfile.Profile()

    def dump() -> None:
        profiler.disable()
        profiler.dump_stats(out)
        stats = pstats.Stats(str(out), stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(45)
        stats.sort_stats("cumulative").print_stats(60)

    atexit.register(dump)
    profiler.enable()
    return cli_main(args)


# (module, attribute) of synchronous functions timed by LETTA_OTEL_PROFILER=sections.
_SECTIONS = (
    ("letta_otel.pipeline.steps", "map_step"),
    ("letta_otel.pipeline.runs", "map_run"),
    ("letta_otel.pipeline.batches", "BatchExporter.measure"),
    ("letta_otel.letta.client", "lean_trace"),
    ("letta_otel.letta.decode", "lean_trace_fields"),
    ("letta_otel.letta.client", "parse_list"),
    ("letta_otel.state.store", "StateStore.mark_exported"),
    ("letta_otel.state.store", "StateStore.record_discovered"),
    ("letta_otel.state.store", "StateStore.open_steps"),
    ("letta_otel.state.store", "StateStore.counts"),
    ("letta_otel.telemetry", "Telemetry.step_accounted"),
    ("letta_otel.telemetry", "Telemetry.run_accounted"),
)


def _sections(out: Path, args: list[str]) -> int:
    """Main-thread CPU inside chosen synchronous functions, in the running daemon: what
    each stage costs where caches are as cold as they really are. Nested sections are
    each counted in full (parse_list includes the Step validation under it)."""
    import importlib  # noqa: PLC0415
    import time  # noqa: PLC0415
    from collections.abc import Callable  # noqa: PLC0415
    from typing import Any  # noqa: PLC0415

    spent: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    clock = time.thread_time_ns

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = clock()
            try:
                return fn(*a, **kw)
            finally:
                spent[name] += clock() - t0
                calls[name] += 1

        return wrapper

    for module_name, attr in _SECTIONS:
        owner: Any = importlib.import_module(module_name)
        *path, leaf = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, leaf, timed(attr, getattr(owner, leaf)))
    import gc  # noqa: PLC0415

    gc_started = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = clock()
        else:
            name = f"garbage collection (generation {info['generation']})"
            spent[name] += clock() - gc_started[0]
            calls[name] += 1

    gc.callbacks.append(on_gc)
    start = time.process_time()

    def dump() -> None:
        total = (time.process_time() - start) * 1e9
        lines = [f"process CPU {total / 1e9:.2f} s (all threads); main-thread CPU inside:"]
        for name, ns in spent.most_common():
            lines.append(f"{ns / total:6.1%} {ns / 1e9:7.2f} s {calls[name]:8d} calls  {name}")
        text = "\n".join(lines)
        out.write_text(text + "\n")
        print(text, file=sys.stderr)

    atexit.register(dump)
    from letta_otel.cli import main as cli_main  # noqa: PLC0415

    return cli_main(args)


def main() -> int:
    out = Path(sys.argv[1])
    if os.environ.get("LETTA_OTEL_PROFILER") == "sections":
        return _sections(out, sys.argv[2:])
    if os.environ.get("LETTA_OTEL_PROFILER") == "cprofile":
        return _cprofile(out, sys.argv[2:])
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()

    def sample(_sig: int, frame: FrameType | None) -> None:
        labels = []
        while frame is not None:
            labels.append(_label(frame))
            frame = frame.f_back
        stacks[tuple(reversed(labels))] += 1

    def dump() -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        total = sum(stacks.values()) or 1
        out.write_text("".join(f"{';'.join(s)} {n}\n" for s, n in stacks.most_common()))
        own: collections.Counter[str] = collections.Counter()
        incl: collections.Counter[str] = collections.Counter()
        for stack, n in stacks.items():
            own[stack[-1]] += n
            for label in set(stack):
                incl[label] += n
        lines = [f"{total} samples of {INTERVAL_S * 1000:g} ms CPU; collapsed stacks in {out}"]
        lines += ["-- self --"] + [f"{n / total:6.1%}  {k}" for k, n in own.most_common(45)]
        lines += ["-- inclusive --"] + [f"{n / total:6.1%}  {k}" for k, n in incl.most_common(70)]
        print("\n".join(lines), file=sys.stderr)

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)
    atexit.register(dump)
    from letta_otel.cli import main as cli_main  # noqa: PLC0415 - after the timer, like the rest

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
