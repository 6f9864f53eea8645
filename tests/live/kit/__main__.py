"""Drive the live-test kit by hand (from the repository root):

    python -m tests.live.kit start [--fixed] [--seed]   install on first use, start, wait
    python -m tests.live.kit seed [--only NAME ...] [--fixed]
    python -m tests.live.kit status | env | stop
    python -m tests.live.kit install                     only the venv in /tmp
    python -m tests.live.kit prune                       delete stale kit venvs

The live tests reuse a kit started this way (and leave it running); a kit they start
themselves they stop at the end, unless LETTA_KIT_KEEP=1. State: LETTA_KIT_DIR (default
/tmp/letta-otel-kit); ports: LETTA_KIT_PORT, LETTA_KIT_FIXED_PORT, LETTA_KIT_PG_PORT,
LETTA_KIT_LLM_PORT, LETTA_KIT_SINK_PORT (default: free ports); LETTA_KIT_OTEL=0 runs
without the OTLP sink (Step.trace_id stays null); LETTA_KIT_PYTHON picks the interpreter.
"""

from __future__ import annotations

import argparse
import sys

from tests.cached_venv import prune_siblings, venv_dir
from tests.live.kit.seed import SCENARIOS, SeedError, seed
from tests.live.kit.server import Kit, KitError, venv_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.live.kit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=["install", "start", "seed", "status", "env", "stop", "prune"]
    )
    parser.add_argument("--fixed", action="store_true", help="also the GET /v1/steps/-fixed Letta")
    parser.add_argument("--seed", action="store_true", help="start: then send every scenario")
    parser.add_argument(
        "--only", nargs="+", default=(), choices=[s.name for s in SCENARIOS], metavar="NAME"
    )
    args = parser.parse_args(argv)
    kit = Kit()
    try:
        if args.command == "install":
            print(kit.install().path)
        elif args.command == "start":
            kit.start(owned=False)
            if args.fixed:
                kit.start_fixed()
            if args.seed:
                seed(kit.url(), args.only, log=sys.stdout)
        elif args.command == "seed":
            seed(kit.url("letta_fixed" if args.fixed else "letta"), args.only, log=sys.stdout)
        elif args.command == "status":
            report = kit.status() or {"kit": f"never started in {kit.dir}"}
            for name, what in report.items():
                print(f"{name}: {what}")
        elif args.command == "env":
            print(f"LETTA_BASE_URL={kit.url()}")
            if "running" in kit.status().get("letta_fixed", ""):
                print(f"# GET /v1/steps/ fixed: LETTA_BASE_URL={kit.url('letta_fixed')}")
        elif args.command == "stop":
            kit.stop()
        elif args.command == "prune":
            spec = venv_spec()
            for path in prune_siblings(spec, keep=venv_dir(spec)):
                print(f"removed {path}")
    except (KitError, SeedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
