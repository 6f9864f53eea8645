"""``letta-otel demo``: the bridge at work, with no Letta account and no collector.

It serves real Letta 0.16.8 captures (shipped in ``captures/``) through a local
Letta-compatible API, runs the real bridge once against it (``Daemon.run(once=True)``
with settings from the normal loader: what ``letta-otel run --once`` does) and prints
what a local OTLP receiver got: the trace trees and the metrics. When the environment or
``--otlp-endpoint`` names a backend (the standard ``OTEL_EXPORTER_OTLP_*`` variables or a
``LETTA_OTEL_BACKEND`` preset), the traces go there instead and the demo prints their ids.

Nothing persists: the state file lives in a temporary directory removed at exit, and
every server the demo starts is stopped before it returns, also after an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from letta_otel import eventloop
from letta_otel.config import ConfigError, Settings, load_settings
from letta_otel.daemon import Daemon
from letta_otel.demo.captures import Captures, load_captures
from letta_otel.demo.letta_api import LettaApiServer
from letta_otel.demo.receiver import OtlpReceiver
from letta_otel.demo.render import render_metrics, render_traces
from letta_otel.logs import setup_logging
from letta_otel.mapping import ids
from letta_otel.startup import StartupError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# The local API takes any key; the demo sends this one so that no real key is needed
# (or ever read: LETTA_* variables of the caller are not passed to the demo's settings).
DEMO_API_KEY = "letta-otel-demo"
# Besides every OTEL_* variable, these name or configure the user's own backend.
DESTINATION_ENV = (
    "LETTA_OTEL_BACKEND",
    "HONEYCOMB_API_KEY",
    "HONEYCOMB_DATASET",
    "LETTA_OTEL_HONEYCOMB_REGION",
    "LETTA_OTEL_TEMPO_TENANT",
    "LETTA_OTEL_METRICS",
)
ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Metrics go to the user's backend only when asked: Jaeger, for one, takes no metrics.
METRICS_ENV = ("LETTA_OTEL_METRICS", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


@dataclass(frozen=True)
class DemoOptions:
    otlp_endpoint: str | None = None  # the user's backend, as --otlp-endpoint
    local: bool = False  # the local receiver even when the environment names a backend
    verbose: bool = False  # the bridge's INFO log on stderr


def destination_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables that describe where to send telemetry (and nothing else:
    no Letta settings, filters, sampling or state path)."""
    return {
        name: value
        for name, value in environ.items()
        if value.strip() and (name.startswith("OTEL_") or name in DESTINATION_ENV)
    }


def names_backend(env: Mapping[str, str]) -> bool:
    """Whether ``env`` names a backend: an OTLP endpoint or a backend preset."""
    preset = env.get("LETTA_OTEL_BACKEND", "otlp").strip().lower()
    return any(name in env for name in ENDPOINT_ENV) or preset != "otlp"


def demo_settings(
    *,
    letta_url: str,
    state_path: Path,
    verbose: bool,
    receiver_endpoint: str | None,
    destination: Mapping[str, str],
    otlp_endpoint: str | None,
) -> Settings:
    """Settings through the normal loader: the demo's Letta and state explicitly, the
    OTLP destination either the local receiver or what the caller named."""
    env = {"LETTA_API_KEY": DEMO_API_KEY}
    overrides: dict[str, object] = {
        "letta_base_url": letta_url,
        "state_path": str(state_path),
        "discovery": "steps",
        "initial_lookback": "1h",
        "log_level": "INFO" if verbose else "WARNING",
        "log_format": "text",
    }
    if receiver_endpoint is not None:
        overrides.update(otlp_endpoint=receiver_endpoint, otlp_protocol="grpc", otlp_metrics=True)
    else:
        env.update(destination)
        if otlp_endpoint is not None:
            overrides["otlp_endpoint"] = otlp_endpoint
        if not any(name in destination for name in METRICS_ENV):
            overrides["otlp_metrics"] = False
    return load_settings(env=env, config_path=None, overrides=overrides)


def _secrets(settings: Settings) -> list[str]:
    secrets = [*settings.otlp_headers.values(), *(settings.otlp_metrics_headers or {}).values()]
    for key in (settings.letta_api_key, settings.honeycomb_api_key):
        if key is not None:
            secrets.append(key.get_secret_value())
    return secrets


def _trace_id(run_id: str) -> str:
    return ids.format_trace_id(ids.trace_id_from_letta_id(run_id))


def _labels(captures: Captures) -> dict[str, str]:
    return {_trace_id(r.run_id): f"{r.scenario}: {r.about}" for r in captures.demo_runs}


class Demo:
    """One demo: the servers it started, the bridge run, the report."""

    def __init__(self, options: DemoOptions, environ: Mapping[str, str], out: TextIO) -> None:
        self._options = options
        self._out = out
        destination = {} if options.local else destination_env(environ)
        self._destination = destination
        self._to_backend = not options.local and (
            options.otlp_endpoint is not None or names_backend(destination)
        )

    def say(self, text: str = "") -> None:
        print(text, file=self._out, flush=True)

    def run(self) -> int:
        # Fresh ids for a real backend: two demos there are two sets of traces. Locally
        # the captured ids stay, so the trees match the README's examples.
        captures = load_captures(fresh_ids=self._to_backend)
        with (
            tempfile.TemporaryDirectory(prefix="letta-otel-demo-") as tmp,
            contextlib.ExitStack() as servers,
        ):
            api = LettaApiServer(captures).start()
            servers.callback(api.stop)
            receiver = None
            if not self._to_backend:
                receiver = OtlpReceiver().start()
                servers.callback(receiver.stop)
            try:
                settings = demo_settings(
                    letta_url=api.base_url,
                    state_path=Path(tmp) / "letta-otel-demo.db",
                    verbose=self._options.verbose,
                    receiver_endpoint=receiver.endpoint if receiver else None,
                    destination=self._destination,
                    otlp_endpoint=self._options.otlp_endpoint,
                )
            except ConfigError as exc:
                print(f"letta-otel demo: {exc}", file=sys.stderr)
                return EXIT_CONFIG
            setup_logging(settings.log_level, settings.log_format, _secrets(settings))
            return self._bridge(captures, settings, api, receiver)

    def _bridge(
        self,
        captures: Captures,
        settings: Settings,
        api: LettaApiServer,
        receiver: OtlpReceiver | None,
    ) -> int:
        runs = captures.demo_runs
        steps = sum(len(r.step_ids) for r in runs)
        self.say(
            f"letta-otel demo: {len(runs)} real Letta {captures.letta_version} runs "
            f"({steps} steps) served by a local Letta API at {api.base_url}"
        )
        shown = settings.describe()
        where = (
            f"a local OTLP receiver at {receiver.endpoint}"
            if receiver
            else f"{shown['otlp_protocol']} {shown['otlp_traces_endpoint']}"
            + (f" (backend {settings.backend})" if settings.backend != "otlp" else "")
        )
        self.say(f"running the bridge once, as `letta-otel run --once` does, into {where}")
        started = time.monotonic()
        try:
            result = eventloop.run(Daemon(settings).run(once=True))
        except StartupError as exc:
            print(f"letta-otel demo: cannot start: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        took = time.monotonic() - started
        if receiver is None:
            return self._backend_report(captures, settings, result.ok, took)
        return self._local_report(captures, receiver, result.ok, took)

    def _local_report(
        self, captures: Captures, receiver: OtlpReceiver, ok: bool, took: float
    ) -> int:
        spans, metrics = receiver.spans, receiver.metrics
        traces = {s.trace_id for s in spans}
        self.say(
            f"received {len(spans)} spans in {len(traces)} traces and "
            f"{len({m.name for m in metrics})} metrics in {took:.2f} s"
        )
        if spans:
            self.say()
            self.say(render_traces(spans, _labels(captures)))
        if metrics:
            self.say()
            self.say("metrics pushed over OTLP (cumulative totals):")
            self.say(render_metrics(metrics))
        if not ok or not spans:
            print(
                "letta-otel demo: the bridge did not deliver everything (see the messages above)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        self.say()
        self.say(
            "next: `letta-otel demo --otlp-endpoint URL` (or OTEL_EXPORTER_OTLP_ENDPOINT, "
            "LETTA_OTEL_BACKEND) sends these traces to your own backend;"
        )
        self.say("      `letta-otel run` bridges your Letta (LETTA_API_KEY, LETTA_BASE_URL).")
        return EXIT_OK

    def _backend_report(self, captures: Captures, settings: Settings, ok: bool, took: float) -> int:
        if not ok:
            print(
                "letta-otel demo: the backend did not accept every batch (see the messages "
                "above); check the endpoint, protocol and headers",
                file=sys.stderr,
            )
            return EXIT_FAILED
        runs = captures.demo_runs
        self.say(
            f"sent {len(runs)} traces in {took:.2f} s; the backend confirmed them. "
            f"Look for these trace ids (service.name={settings.service_name}):"
        )
        width = max(len(f"invoke_agent {r.agent_name}") for r in runs)
        for run in runs:
            root = f"invoke_agent {run.agent_name}"
            self.say(f"  {_trace_id(run.run_id)}  {root:<{width}}  {run.scenario}: {run.about}")
        if not settings.otlp_metrics:
            self.say(
                "metrics were not sent (set OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or "
                "LETTA_OTEL_METRICS=true to send them too)"
            )
        return EXIT_OK


def run_demo(
    options: DemoOptions, environ: Mapping[str, str] | None = None, out: TextIO | None = None
) -> int:
    """Exit code: 0 success, 1 the bridge could not deliver, 2 bad configuration or an
    unreachable backend. Ctrl-C raises KeyboardInterrupt after everything is stopped."""
    return Demo(options, os.environ if environ is None else environ, out or sys.stdout).run()
