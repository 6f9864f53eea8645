"""Instructions per step of the running bridge, counted by valgrind's callgrind.

    python -m benchmarks.instructions --steps 2000 [--top 25] [--keep OUT]

CPU seconds on a shared virtual machine move by 10-20% between runs of the same code,
more than most single changes are worth. Instruction counts do not: callgrind counts
the same total for the same work, whatever else the machine does. This runs the
benchmark's harness (fake Letta with 20 ms per request, OTLP receiver, each in its
own process) with ``letta-otel run`` under ``valgrind --tool=callgrind``, counting
only from the moment the daemon starts discovering (imports and start-up checks are
left out) until the state file records every step as exported.

Printed: instructions per step and their split by library (the interpreter, libc,
msgspec, SQLite, ...), and with ``--top N`` the N functions with the most
instructions of their own. Instructions are not time: cache misses and system calls
are not in them (system calls are about a tenth of the bridge's CPU), so confirm a
change with ``benchmarks.bench`` too. Under valgrind the bridge runs about 50 times
slower, so keep ``--steps`` small: 2,000 steps take about a minute.

Needs valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.bench import (
    ProgressWatch,
    bridge_env,
    exported_steps,
    start_server,
    stop_server,
    wait_until_discovering,
)
from letta_otel.config import Settings

# Under valgrind the bridge is about 50 times slower: allow that long without an export.
STALL_S = 300.0

# One line of callgrind_annotate's table: count, percentage, file:function [object].
_ROW = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+(\S.*?)(?:\s+\[(.+)\])?\s*$")


def _table(annotated: str) -> tuple[int, list[tuple[int, str, str]]]:
    """Program total and (instructions, function, object) rows of ``callgrind_annotate``."""
    total = 0
    rows: list[tuple[int, str, str]] = []
    for line in annotated.splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        count = int(match.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
            continue
        function = match.group(2)
        # Inlined code has no object of its own: it belongs to the interpreter's.
        obj = Path(match.group(3)).name if match.group(3) else "libpython (inlined)"
        rows.append((count, function, obj))
    return total, rows


# Shared objects by library, first match wins (a file name contains the key).
_LIBRARIES = {
    "libpython": "the Python interpreter",
    "python3": "the Python interpreter",  # a statically linked one (Debian's)
    "_core.cpython": "msgspec",
    "orjson": "orjson",
    "libsqlite3": "SQLite",
    "_sqlite3": "SQLite",
    "libc.so": "libc (memcpy, malloc, ...)",
    "libcrypto": "OpenSSL (sha256 ids)",
    "_hashlib": "OpenSSL (sha256 ids)",
    "loop.cpython": "uvloop",
    "cygrpc": "gRPC",
    "_message": "protobuf",
    "_datetime": "datetime",
    "_asyncio": "asyncio (C)",
}


def _library(obj: str) -> str:
    return next((label for key, label in _LIBRARIES.items() if key in obj), obj)


def measure(steps: int, out: Path, timeout: float) -> int:
    """Run the bridge under callgrind over ``steps`` steps; the number of steps done."""
    letta, letta_info = start_server(
        "letta", "--steps", str(steps), "--latency", "0.02", timeout=120
    )
    otlp, otlp_info = start_server("otlp", timeout=60)
    workdir = Path(tempfile.mkdtemp(prefix="letta-otel-instructions-"))
    state_path = workdir / "state.db"
    env = bridge_env(
        letta_info["url"],
        otlp_info["grpc_endpoint"],
        protocol="grpc",
        state_path=state_path,
        poll_interval=5.0,
        concurrency=Settings().max_concurrency,
    )
    log_path = workdir / "bridge.log"
    expected = int(letta_info["steps"])
    with log_path.open("w") as log:
        bridge = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "letta_otel",
                "run",
            ],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        wait_until_discovering(bridge, log_path, deadline, poll=0.2)
        subprocess.run(
            ["callgrind_control", "--instr=on", str(bridge.pid)], check=True, capture_output=True
        )
        watch = ProgressWatch(STALL_S, log_path)
        while (done := exported_steps(state_path)) < expected:
            if time.monotonic() > deadline or bridge.poll() is not None:
                raise SystemExit(f"bridge did not finish ({done} of {expected}); see {log_path}")
            watch.check(done, expected, time.monotonic())
            time.sleep(0.5)
        subprocess.run(
            ["callgrind_control", "--instr=off", str(bridge.pid)], check=True, capture_output=True
        )
    finally:
        bridge.terminate()  # the daemon stops cleanly; callgrind writes its file then
        try:
            bridge.wait(300)
        except subprocess.TimeoutExpired:
            bridge.kill()
        stop_server(letta)
        stop_server(otlp)
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--top", type=int, default=0, help="also print the N costliest functions")
    parser.add_argument("--keep", type=Path, help="keep callgrind's output file here")
    parser.add_argument("--timeout", type=float, default=1800)
    ns = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} not found: install valgrind (Debian: apt-get install valgrind)"
            )
    out = ns.keep or Path(tempfile.mkdtemp(prefix="letta-otel-callgrind-")) / "callgrind.out"
    steps = measure(ns.steps, out, ns.timeout)
    annotated = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total, rows = _table(annotated)
    print(f"{steps} steps: {total / steps / 1000:,.0f} K instructions per step ({total:,} in all)")
    by_library: Counter[str] = Counter()
    for count, _, obj in rows:
        by_library[_library(obj)] += count
    for label, count in by_library.most_common(12):
        print(f"  {count / steps / 1000:8,.1f} K  {count / total:6.1%}  {label}")
    if ns.top:
        print(f"the {ns.top} functions with the most instructions of their own:")
        for count, function, obj in sorted(rows, reverse=True)[: ns.top]:
            name = function.rsplit("/", 1)[-1]
            print(f"  {count / steps / 1000:8,.1f} K  {count / total:6.1%}  {name}  [{obj}]")
    if ns.keep:
        print(f"callgrind output: {out} (callgrind_annotate --inclusive=yes {out})")


if __name__ == "__main__":
    main()
