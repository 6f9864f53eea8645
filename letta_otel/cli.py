"""Command line: ``letta-otel run [--once]``, ``letta-otel backfill``, ``letta-otel doctor``,
``letta-otel demo`` and ``letta-otel trace-id``.

Exit codes: 0 success (also after SIGINT/SIGTERM), 1 an export or Letta request
failed in ``--once`` mode, 2 bad configuration, rejected credentials or an unusable
state file or health address; also an OTLP endpoint or Letta that cannot be reached
at start for ``run --once`` and ``backfill`` (the daemon waits for those:
:mod:`letta_otel.startup`). Errors are one clear message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from letta_otel import __version__, eventloop
from letta_otel.backfill import Backfill, BackfillRefused, make_range
from letta_otel.config import (
    ConfigError,
    Settings,
    add_settings_arguments,
    load_settings,
    overrides_from_args,
)
from letta_otel.daemon import Daemon
from letta_otel.doctor import doctor
from letta_otel.logs import setup_logging
from letta_otel.mapping import ids
from letta_otel.startup import StartupError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the demo stopped by Ctrl-C (the daemon exits 0: stopping is its job)

log = logging.getLogger("letta_otel")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letta-otel",
        description="Bridge Letta agent steps, provider traces and runs into OpenTelemetry.",
    )
    parser.add_argument("--version", action="version", version=f"letta-otel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="poll Letta and export spans over OTLP (the daemon)",
        description="Poll Letta and export its steps as OpenTelemetry spans over OTLP.",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="export everything that is terminal now, then exit (non-zero if anything failed)",
    )
    add_settings_arguments(run)

    check = commands.add_parser(
        "doctor",
        help="check the configuration, Letta, the OTLP backend and the state file",
        description="Check the configuration, Letta reachability and credentials, the OTLP "
        "backend (by exporting one test span) and the state file; print a checklist. "
        "Exit 0 if nothing failed, 1 if a check failed, 2 for an invalid configuration.",
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    add_settings_arguments(check)

    backfill = commands.add_parser(
        "backfill",
        help="export a past time range once, resumably, with progress",
        description=(
            "Export the steps of a past time range once. Resumable: run the same command "
            "again after Ctrl-C or a crash. Uses the daemon's state file (stop the daemon "
            "meanwhile) so nothing is sent twice."
        ),
    )
    backfill.add_argument(
        "--since", required=True, metavar="ISO", help="start, e.g. 2026-11-20T08:00:00Z"
    )
    backfill.add_argument("--until", metavar="ISO", help="end (default: now)")
    backfill.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID",
        help="only this agent (repeatable; default: all agents)",
    )
    backfill.add_argument(
        "--force",
        action="store_true",
        help="export even if --since is older than LETTA_OTEL_BACKFILL_MAX_AGE",
    )
    add_settings_arguments(backfill)

    demo = commands.add_parser(
        "demo",
        help="see what letta-otel does: real Letta captures bridged into trace trees "
        "(no Letta account, no collector)",
        description="Serve real Letta 0.16.8 captures through a local Letta API, run the "
        "bridge once against it (as `run --once`) into a local OTLP receiver and print the "
        "trace trees and metrics it received. With --otlp-endpoint, or OTEL_EXPORTER_OTLP_"
        "ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / LETTA_OTEL_BACKEND in the "
        "environment (with the usual OTEL_EXPORTER_OTLP_PROTOCOL and _HEADERS), the "
        "traces go to that backend instead and their ids are printed. Nothing is written "
        "outside a temporary directory.",
    )
    demo.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send the demo traces to this OTLP endpoint (your backend) instead of the "
        "local receiver [env OTEL_EXPORTER_OTLP_ENDPOINT]",
    )
    demo.add_argument(
        "--local",
        action="store_true",
        help="use the local receiver even when the environment names a backend",
    )
    demo.add_argument("--verbose", action="store_true", help="show the bridge's log on stderr")

    trace = commands.add_parser(
        "trace-id",
        help="print the trace id letta-otel uses for a Letta run (id scheme v1)",
    )
    trace.add_argument("run_id", nargs="+", help="a Letta run id, e.g. run-d74da3da-...")
    return parser


def _settings(ns: argparse.Namespace) -> Settings:
    config_path, overrides = overrides_from_args(ns)
    # Every command that reads settings calls Letta: Letta Cloud needs a key.
    return load_settings(config_path=config_path, overrides=overrides, require_letta_api_key=True)


def _secrets(settings: Settings) -> list[str]:
    secrets = list(settings.otlp_headers.values())
    secrets.extend((settings.otlp_metrics_headers or {}).values())
    for key in (settings.letta_api_key, settings.honeycomb_api_key):
        if key is not None:
            secrets.append(key.get_secret_value())
    return secrets


def _configured(ns: argparse.Namespace) -> Settings | None:
    """The settings with logging set up, or None after printing the configuration report."""
    try:
        settings = _settings(ns)
    except ConfigError as exc:
        print(f"letta-otel: {exc}", file=sys.stderr)
        return None
    setup_logging(settings.log_level, settings.log_format, _secrets(settings))
    return settings


class _Outcome(Protocol):
    @property
    def ok(self) -> bool: ...


def _drive(main: Coroutine[Any, Any, _Outcome]) -> int:
    """Run a long-running command on the event loop and map its outcome to an exit code."""
    eventloop.tune_gc()
    try:
        result = eventloop.run(main)
    except StartupError as exc:
        log.error("cannot start: %s", exc)  # noqa: TRY400 - a message, not a traceback
        return EXIT_CONFIG
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        return EXIT_OK
    return EXIT_OK if result.ok else EXIT_FAILED


def _run(ns: argparse.Namespace) -> int:
    settings = _configured(ns)
    if settings is None:
        return EXIT_CONFIG
    log.info(
        "letta-otel %s starting: %s",
        __version__,
        " ".join(f"{k}={v}" for k, v in settings.describe().items()),
    )
    return _drive(Daemon(settings).run(once=ns.once))


def _backfill(ns: argparse.Namespace) -> int:
    settings = _configured(ns)
    if settings is None:
        return EXIT_CONFIG
    try:
        span = make_range(ns.since, ns.until, ns.agent, settings=settings, force=ns.force)
    except BackfillRefused as exc:
        log.error("backfill refused: %s", exc)  # noqa: TRY400 - a message, not a traceback
        return EXIT_CONFIG
    return _drive(Backfill(settings, span).run())


def _trace_id(ns: argparse.Namespace) -> int:
    for run_id in ns.run_id:
        print(f"{run_id} {ids.format_trace_id(ids.trace_id_from_letta_id(run_id))}")
    return EXIT_OK


def _demo(ns: argparse.Namespace) -> int:
    if ns.local and ns.otlp_endpoint is not None:
        print("letta-otel: demo: --local and --otlp-endpoint exclude each other", file=sys.stderr)
        return EXIT_CONFIG
    try:
        # Imported here: the demo's web server and receiver are not the daemon's business.
        from letta_otel.demo.command import DemoOptions, run_demo  # noqa: PLC0415

        options = DemoOptions(otlp_endpoint=ns.otlp_endpoint, local=ns.local, verbose=ns.verbose)
        return run_demo(options)
    except KeyboardInterrupt:
        print("letta-otel demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `letta-otel demo | head`: the reader has seen enough
        # Python flushes stdout at exit; point it at /dev/null so that cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "run":
        return _run(ns)
    if ns.command == "doctor":
        return doctor(ns)
    if ns.command == "backfill":
        return _backfill(ns)
    if ns.command == "demo":
        return _demo(ns)
    return _trace_id(ns)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
