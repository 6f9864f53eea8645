"""CPU per step of the state file's writes, as the daemon makes them, in a loop.

    python -m benchmarks.state [--pages 100] [--repeat 3]

Each page of 200 new steps (two per run) is recorded as discovered, checked for
already settled steps, then marked exported in four export batches of 50 with their
runs and trace bytes, each call its own transaction, as in the daemon. Printed: the
process CPU (user + system; the fsync waits of ``synchronous=FULL`` are not CPU) per
step, best of ``--repeat`` fresh files.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from letta_otel.state import StateStore

PAGE = 200
BATCH = 50


def measure(pages: int) -> float:
    """µs of CPU per step over ``pages`` pages, on a new state file."""
    with tempfile.TemporaryDirectory(prefix="letta-otel-state-") as tmp:
        store = StateStore(Path(tmp) / "state.db")
        try:
            start = time.process_time()
            for page in range(pages):
                steps = [
                    (f"step-{page}-{i}", f"run-{page}-{i // 2}", "success") for i in range(PAGE)
                ]
                store.record_discovered(
                    steps, now_ns=page, run_ids=sorted({run for _, run, _ in steps})
                )
                store.settled_step_ids(step for step, _, _ in steps)
                for first in range(0, PAGE, BATCH):
                    batch = steps[first : first + BATCH]
                    runs = sorted({run for _, run, _ in batch})
                    store.mark_exported(
                        step_ids=[step for step, _, _ in batch],
                        run_ids=runs,
                        now_ns=page,
                        trace_bytes=dict.fromkeys(runs, 1000),
                    )
            return (time.process_time() - start) / (pages * PAGE) * 1e6
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()
    best = min(measure(ns.pages) for _ in range(ns.repeat))
    print(
        f"state file writes: {best:.1f} µs CPU per step "
        f"({ns.pages * PAGE} steps, best of {ns.repeat})"
    )


if __name__ == "__main__":
    main()
