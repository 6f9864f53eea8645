"""Start-up: what stops a command at once, and what the daemon waits for.

A command a person or CI runs (``run --once``, ``backfill``, ``doctor``) stops at the
first problem with one message and exit 2: waiting forever there is wrong.

The daemon (``run``) stops at once only for what waiting cannot fix: an invalid
configuration, rejected credentials, an unusable state file, a busy health address
(:class:`StartupError`). An endpoint that does not answer yet (:class:`Unreachable`:
the OTLP collector or Letta refusing connections, not resolving, timing out, Letta
answering 5xx/429) is waited for, because in Kubernetes a sidecar often starts before
its collector, and exiting would only earn the pod a growing restart back-off. While
it waits the daemon is live but not ready (``/readyz`` 503 with the reason,
``letta_otel.ready`` 0), logs one WARNING per back-off step, and commits nothing: no
bridge exists yet, so no cycle runs and no cursor moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from letta_otel.retry import cycle_delay

log = logging.getLogger(__name__)

T = TypeVar("T")


class StartupError(Exception):
    """Configuration or an endpoint is unusable; the message says which and how to fix it."""


class Unreachable(StartupError):
    """An endpoint did not answer (yet). The message is for a command that stops here;
    ``what`` (the endpoint, safe to show) and ``error`` are what a waiting daemon reports."""

    def __init__(self, message: str, *, what: str, error: str) -> None:
        super().__init__(message)
        self.what = what
        self.error = error


def describe_connect_error(exc: OSError) -> str:
    """A failed TCP connect in a few words: ``connection refused``, ``timed out``..."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve: {exc.strerror or exc}"
    if isinstance(exc.errno, int) and exc.errno > 0:
        # asyncio's own text ("Connect call failed ('10.0.0.7', 4317)") repeats the address.
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class StartupReadiness(Protocol):
    """Where the wait is reported (:class:`letta_otel.telemetry.Telemetry`)."""

    def starting(self, reason: str, retry_in: float) -> None: ...

    def started(self) -> None: ...


class Stop(Protocol):
    """A stop request (SIGINT/SIGTERM): :class:`letta_otel.stop.StopSignal`."""

    def is_set(self) -> bool: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self) -> None: ...


async def wait_until_reachable(
    attempt: Callable[[], Awaitable[T]],
    *,
    poll_interval: float,
    readiness: StartupReadiness,
    stop: Stop,
) -> T | None:
    """What ``attempt()`` returns, tried again while it raises :class:`Unreachable`;
    None when a stop is requested first (also in the middle of a try).

    Between tries the daemon's back-off after a failed cycle
    (:func:`letta_otel.retry.cycle_delay`: twice the poll interval, doubling with
    jitter up to a minute), so an endpoint that is down for long costs a try and a log
    line a minute. Any other error ends the wait: it is the caller's to report.
    """
    failures = 0
    started = time.monotonic()
    while not stop.is_set():
        done = await _unless_stopped(attempt, stop)
        if done is None:
            break
        try:
            result = done.result()
        except Unreachable as exc:
            failures += 1
            delay = cycle_delay(poll_interval, failures)
            reason = f"waiting for {exc.what} ({exc.error})"
            readiness.starting(reason, delay)
            log.warning(
                "%s; next try in %s",
                reason,
                format_seconds(delay),
                extra={
                    "fields": {
                        "event": "waiting",
                        "waiting_for": exc.what,
                        "error": exc.error,
                        "attempt": failures,
                        "next_try_s": round(delay, 3),
                    }
                },
            )
            await stop.sleep(delay)
            continue
        readiness.started()
        if failures:
            log.info(
                "the OTLP endpoint and Letta answer after %d failed tries (%s); starting",
                failures,
                format_seconds(time.monotonic() - started),
            )
        return result
    log.info("stopped while waiting for the OTLP endpoint and Letta")
    return None


async def _unless_stopped(
    attempt: Callable[[], Awaitable[T]], stop: Stop
) -> asyncio.Future[T] | None:
    """The finished try (its result or error inside), or None when a stop came first:
    the try is then cancelled, so SIGTERM does not wait out a connect or Letta's retries."""
    trying = asyncio.ensure_future(attempt())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((trying, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not trying.done():
            trying.cancel()
            # Whatever the cancelled try ends with, the stop is the outcome.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await trying
    if trying.cancelled():
        return None
    return trying


def format_seconds(seconds: float) -> str:
    """``0.32s``, ``8.3s``, ``42s``: two significant digits, whole seconds from 10 on."""
    return f"{seconds:.2g}s" if seconds < 10 else f"{seconds:.0f}s"
