"""``letta-otel doctor``: check a deployment end to end and print a checklist.

Each check is a small function returning :class:`Check` results (``ok``, ``warn``,
``fail``, or ``skip`` when an earlier failure makes it pointless):

* **configuration** — the same :func:`load_settings` as ``run`` (so Letta Cloud without
  ``LETTA_API_KEY`` is a problem too); a ``ConfigError`` is a FAIL listing every problem;
* **Letta** — ``GET /v1/health/`` (a 404 there means the base URL is wrong), one
  authenticated listing (401/403 name ``LETTA_API_KEY``/``LETTA_PROJECT``), and the
  ``/v1/steps/`` route (broken = WARN: the daemon uses the runs fallback);
* **OTLP** — a TCP connect, then ONE clearly labelled test span (name
  ``letta-otel doctor test span``, attribute ``letta_otel.doctor=true``, its own
  random trace id) through the real exporter; the backend's answer is reported;
* **state file** — can be created or opened and locked; locked by a running daemon
  is a WARN.

Exit code: 0 when nothing FAILed, 1 when a check failed, 2 when the configuration
is invalid (as for ``run``). Secrets never appear in the output: the messages are
scrubbed of the API keys and header values as a last line of defence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from letta_otel import __version__
from letta_otel.assemble import build_context, check_otlp_reachable
from letta_otel.config import ConfigError, Settings, load_settings, overrides_from_args
from letta_otel.export.sink import build_exporter
from letta_otel.letta.client import (
    LettaAuthError,
    LettaClient,
    LettaError,
    LettaNotFound,
    StepsRouteBroken,
)
from letta_otel.logs import SecretFilter
from letta_otel.mapping import ids
from letta_otel.retry import Backoff, RetryPolicy
from letta_otel.startup import StartupError
from letta_otel.state import StateError, StateStore

Status = Literal["ok", "warn", "fail", "skip"]
TEST_SPAN_NAME = "letta-otel doctor test span"
TEST_SPAN_ATTRIBUTE = "letta_otel.doctor"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
_MARKS: dict[Status, str] = {"ok": "[ok]  ", "warn": "[WARN]", "fail": "[FAIL]", "skip": "[skip]"}
# Doctor answers quickly: one retry for Letta (a 429/5xx blip), not the daemon's five,
# and a deadline that fits two attempts of its 10 s timeout.
_LETTA_RETRY = RetryPolicy(
    attempts=2, deadline=25.0, backoff=Backoff(initial=0.2, maximum=1.0, jitter=0.5)
)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str


# ------------------------------------------------------------------------ configuration


def check_config(
    config_path: Path | None, overrides: dict[str, object], env: dict[str, str] | None = None
) -> tuple[Settings | None, list[Check]]:
    try:
        settings = load_settings(
            env=env, config_path=config_path, overrides=overrides, require_letta_api_key=True
        )
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        return None, [Check("configuration", "fail", f"invalid ({problems})")]
    otlp = f"{settings.otlp_protocol} {settings.describe()['otlp_traces_endpoint']}"
    headers = settings.describe()["otlp_headers"]
    checks = [
        Check(
            "configuration",
            "ok",
            f"backend {settings.backend}; OTLP {otlp}, headers {headers}; "
            f"Letta {settings.describe()['letta_base_url']}; state {settings.state_path}",
        )
    ]
    environ = os.environ if env is None else env
    if settings.backend != "honeycomb" and environ.get("HONEYCOMB_API_KEY", "").strip():
        checks.append(
            Check(
                "configuration",
                "warn",
                f"HONEYCOMB_API_KEY is set but the backend is '{settings.backend}', so it is "
                "not sent; set LETTA_OTEL_BACKEND=honeycomb if spans should go to Honeycomb",
            )
        )
    return settings, checks


# -------------------------------------------------------------------------------- Letta


def _wrong_base_url_hint(base_url: str) -> str:
    if base_url.rstrip("/").endswith("/v1"):
        return "remove the trailing /v1 from LETTA_BASE_URL (letta-otel adds it)"
    return (
        "LETTA_BASE_URL must be the server root, e.g. http://localhost:8283 or "
        "https://api.letta.com, without /v1 or any other path"
    )


async def check_letta(settings: Settings, client: LettaClient | None = None) -> list[Check]:
    own = client is None
    client = client or _doctor_client(settings)
    try:
        return await _letta_checks(settings, client)
    finally:
        if own:
            await client.aclose()


def _doctor_client(settings: Settings) -> LettaClient:
    return LettaClient(
        settings.letta_base_url,
        api_key=settings.letta_api_key.get_secret_value() if settings.letta_api_key else None,
        project=settings.letta_project,
        timeout=min(settings.letta_timeout, 10.0),
        max_connections=2,
        retry=_LETTA_RETRY,
    )


async def _letta_checks(settings: Settings, client: LettaClient) -> list[Check]:
    base = settings.describe()["letta_base_url"]
    key_state = "set" if settings.letta_api_key else "NOT set"
    try:
        health = await client.health()
    except LettaAuthError as exc:
        reach = Check("Letta reachable", "ok", f"{base} answers (HTTP {exc.status} on health)")
        return [reach, _auth_failure(exc, key_state)]
    except LettaNotFound:
        return [
            Check(
                "Letta reachable",
                "fail",
                f"{base}/v1/health/ answered HTTP 404: this is not the Letta API root; "
                f"{_wrong_base_url_hint(settings.letta_base_url)}",
            ),
            Check("Letta credentials", "skip", "Letta is not reachable"),
            Check("Letta steps route", "skip", "Letta is not reachable"),
        ]
    except LettaError as exc:
        return [
            Check(
                "Letta reachable",
                "fail",
                f"cannot use {base}: {exc}; check LETTA_BASE_URL and that the server is running",
            ),
            Check("Letta credentials", "skip", "Letta is not reachable"),
            Check("Letta steps route", "skip", "Letta is not reachable"),
        ]
    version = health.get("version")
    checks = [
        Check(
            "Letta reachable",
            "ok",
            f"{base}/v1/health/ answered" + (f" (Letta {version})" if version else ""),
        )
    ]
    try:
        await client.list_runs({"limit": 1, "order": "desc"})
    except LettaAuthError as exc:
        checks.append(_auth_failure(exc, key_state))
        checks.append(Check("Letta steps route", "skip", "credentials were rejected"))
        return checks
    except LettaNotFound:
        checks.append(
            Check(
                "Letta credentials",
                "fail",
                f"GET /v1/runs/ answered HTTP 404 although /v1/health/ works; "
                f"{_wrong_base_url_hint(settings.letta_base_url)}",
            )
        )
        return checks
    except LettaError as exc:
        checks.append(Check("Letta credentials", "fail", f"listing runs failed: {exc}"))
        return checks
    project = f", project {settings.letta_project}" if settings.letta_project else ""
    checks.append(
        Check("Letta credentials", "ok", f"listing runs works (LETTA_API_KEY {key_state}{project})")
    )
    checks.append(await _steps_route(settings, client))
    return checks


def _auth_failure(exc: LettaAuthError, key_state: str) -> Check:
    hint = (
        "LETTA_API_KEY is not set: set it to a Letta API key"
        if key_state == "NOT set"
        else "check LETTA_API_KEY (expired or for another organisation?)"
    )
    if exc.status == 403:
        hint += " and LETTA_PROJECT (the key may not have access to that project)"
    return Check(
        "Letta credentials", "fail", f"Letta answered HTTP {exc.status} on {exc.path}; {hint}"
    )


async def _steps_route(settings: Settings, client: LettaClient) -> Check:
    try:
        await client.list_steps(limit=1)
    except (StepsRouteBroken, LettaNotFound) as exc:
        why = (
            "answers HTTP 400 (a known bug of self-hosted Letta 0.12-0.16.8)"
            if isinstance(exc, StepsRouteBroken)
            else "does not exist on this server"
        )
        if settings.discovery == "steps":
            return Check(
                "Letta steps route",
                "fail",
                f"GET /v1/steps/ {why}, but LETTA_OTEL_DISCOVERY=steps; use auto or runs",
            )
        return Check(
            "Letta steps route",
            "warn",
            f"GET /v1/steps/ {why}; the daemon will use the runs fallback (/v1/runs/)",
        )
    except LettaError as exc:
        return Check("Letta steps route", "warn", f"GET /v1/steps/ failed ({exc})")
    return Check("Letta steps route", "ok", "GET /v1/steps/ works (discovery via the steps cursor)")


# --------------------------------------------------------------------------------- OTLP


def doctor_span(settings: Settings, trace_id: int | None = None) -> ReadableSpan:
    """The one span doctor sends: clearly labelled, in a trace of its own."""
    rng = random.SystemRandom()
    trace_id = trace_id or rng.getrandbits(128) or 1
    now = time.time_ns()
    context = SpanContext(trace_id, rng.getrandbits(64) or 1, False, TraceFlags(TraceFlags.SAMPLED))
    mapping = build_context(settings)
    return ReadableSpan(
        name=TEST_SPAN_NAME,
        context=context,
        parent=None,
        resource=mapping.resource,
        attributes={
            TEST_SPAN_ATTRIBUTE: True,
            "letta_otel.doctor.note": "sent by `letta-otel doctor` to test the OTLP path; "
            "safe to ignore",
        },
        kind=SpanKind.INTERNAL,
        start_time=now - 1_000_000,
        end_time=now,
        instrumentation_scope=mapping.scope,
    )


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_exporter_logs() -> Iterator[_Capture]:
    """What the OTLP exporter logs (the backend's error), kept out of our stderr."""
    logger = logging.getLogger("opentelemetry.exporter")
    capture = _Capture()
    saved = (logger.propagate, logger.level)
    logger.addHandler(capture)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.propagate, _ = saved
        logger.setLevel(saved[1])


def check_otlp(settings: Settings) -> Check:
    where = f"{settings.otlp_protocol} {settings.describe()['otlp_traces_endpoint']}"
    try:
        asyncio.run(check_otlp_reachable(settings, attempts=1))
    except StartupError as exc:
        return Check("OTLP export", "fail", str(exc))
    span = doctor_span(settings)
    trace_id = ids.format_trace_id(span.context.trace_id)
    exporter = build_exporter(settings)
    started = time.monotonic()
    try:
        with _captured_exporter_logs() as capture:
            try:
                result = exporter.export([span])
            except Exception as exc:  # an exporter bug: report it, do not crash doctor
                capture.messages.append(f"{type(exc).__name__}: {exc}")
                result = SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    took = time.monotonic() - started
    if result is SpanExportResult.SUCCESS:
        return Check(
            "OTLP export",
            "ok",
            f"{where} accepted the test span '{TEST_SPAN_NAME}' in {took:.2f}s "
            f"(trace id {trace_id}, attribute {TEST_SPAN_ATTRIBUTE}=true)",
        )
    said = capture.messages[-1] if capture.messages else "no details"
    return Check(
        "OTLP export",
        "fail",
        f"{where} did not accept the test span after {took:.2f}s; the exporter said: {said}. "
        "Check the endpoint, protocol and auth headers (OTEL_EXPORTER_OTLP_*, "
        "LETTA_OTEL_BACKEND and its API key)",
    )


# --------------------------------------------------------------------------- state file


def check_state(settings: Settings) -> Check:
    path = settings.state_path
    if not path.exists():
        try:
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".letta-otel-doctor-"):
                pass
        except OSError as exc:
            return Check(
                "state file",
                "fail",
                f"{path} does not exist and its directory is not writable ({exc.strerror}); "
                "fix the permissions or set LETTA_OTEL_STATE_PATH",
            )
        return Check("state file", "ok", f"{path} will be created (directory is writable)")
    lock_path = path.with_name(path.name + ".lock")  # the daemon's lock (state.StateStore)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        return Check(
            "state file", "fail", f"cannot create the lock file {lock_path} ({exc.strerror})"
        )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return Check(
            "state file",
            "warn",
            f"{path} is in use by a running letta-otel daemon (fine if that is this "
            "deployment's daemon; a second one on the same file would be refused)",
        )
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    try:
        StateStore(path).close()
    except StateError as exc:
        return Check("state file", "fail", str(exc))
    return Check("state file", "ok", f"{path} opens, is writable and not locked")


# ------------------------------------------------------------------------------ driver


def run_checks(settings: Settings) -> list[Check]:
    checks = asyncio.run(check_letta(settings))
    checks.append(check_otlp(settings))
    checks.append(check_state(settings))
    return checks


def _secrets(settings: Settings | None) -> list[str]:
    if settings is None:
        return []
    found = list(settings.otlp_headers.values())
    for key in (settings.letta_api_key, settings.honeycomb_api_key):
        if key is not None:
            found.append(key.get_secret_value())
    return found


def render(checks: Sequence[Check]) -> str:
    lines = [f"letta-otel doctor {__version__}"]
    lines += [f"{_MARKS[c.status]} {c.name}: {c.message}" for c in checks]
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    verdict = "all checks passed" if not failed else f"{failed} failed"
    if warned:
        verdict += f", {warned} warning{'s' if warned > 1 else ''}"
    lines.append(f"result: {verdict}")
    return "\n".join(lines) + "\n"


def doctor(ns: argparse.Namespace) -> int:
    """The ``doctor`` subcommand: prints the checklist (or JSON) and returns the exit code."""
    config_path, overrides = overrides_from_args(ns)
    settings, checks = check_config(config_path, overrides)
    if settings is None:
        checks += [
            Check(name, "skip", "configuration is invalid")
            for name in ("Letta reachable", "OTLP export", "state file")
        ]
    else:
        checks += run_checks(settings)
    scrub = SecretFilter(_secrets(settings)).scrub
    checks = [Check(c.name, c.status, scrub(c.message)) for c in checks]
    failed = any(c.status == "fail" for c in checks)
    if getattr(ns, "json", False):
        document = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(render(checks))
    if settings is None:
        return EXIT_CONFIG
    return EXIT_FAILED if failed else EXIT_OK
