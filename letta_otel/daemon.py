"""The long-running loop around ``Bridge.cycle``: start-up checks, signals, summaries.

SIGINT/SIGTERM set a stop flag: a cycle under way is given up (a hung listing too),
the work in flight is cancelled (a hung request too: its step stays open and is
fetched at the next start), the batch in flight finishes and is committed, no new
batch starts, the state is closed, and the process exits 0. Before the first cycle the
daemon waits for an OTLP endpoint or a Letta that does not answer yet, where ``--once``
stops (:mod:`letta_otel.startup`). The parts are built in :mod:`letta_otel.assemble`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from letta_otel.assemble import (
    build_bridge,
    build_client,
    check_otlp_reachable,
    open_state,
    start_telemetry,
)
from letta_otel.config import Settings
from letta_otel.export.sink import SpanSink, build_sink
from letta_otel.feedback import FeedbackPoller
from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.pipeline.cycle import Bridge
from letta_otel.pipeline.report import CycleReport, summarize, summary_fields
from letta_otel.retry import MAX_CYCLE_DELAY, cycle_delay
from letta_otel.startup import StartupError, wait_until_reachable
from letta_otel.state import StateStore
from letta_otel.stop import StopSignal
from letta_otel.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    cycles: int
    ok: bool


MAX_RETRY_DELAY = MAX_CYCLE_DELAY


# Poll interval while healthy; doubling (with jitter, up to 1 min) while failing: the
# same backoff as every other retry, from letta_otel.retry.
retry_delay = cycle_delay


def _log_cycle(report: CycleReport, elapsed: float, telemetry: Telemetry) -> None:
    telemetry.cycle_finished(report)
    level = logging.INFO if report.ok else logging.WARNING
    log.log(level, summarize(report, elapsed), extra={"fields": summary_fields(report, elapsed)})


async def _poll_feedback(poller: FeedbackPoller) -> None:
    try:
        await poller.maybe_poll(datetime.now(UTC))
    except LettaError as exc:  # feedback is a side channel: never fail a cycle for it
        log.warning("listing steps with feedback failed: %s", exc)


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        sink_factory: Callable[[Settings], SpanSink] = build_sink,
    ) -> None:
        self._settings = settings
        self._sink_factory = sink_factory
        self._stop = StopSignal("stop requested; finishing the batch in flight")

    def request_stop(self) -> None:
        self._stop.request()

    async def run(self, *, once: bool = False) -> RunResult:
        settings = self._settings
        state = open_state(settings)
        try:
            telemetry, health = start_telemetry(settings, state, serve=not once)
        except StartupError:
            state.close()
            raise
        client = build_client(settings, on_error=telemetry.letta_request_failed)
        sink = self._sink_factory(settings)
        self._stop.install()
        cycles, ok, failures = 0, True, 0
        bridge: Bridge | None = None
        try:
            bridge = await self._start(client, state, sink, telemetry, once=once)
            if bridge is None:  # stopped while waiting for the OTLP endpoint or Letta
                return RunResult(cycles, ok)
            feedback = (
                FeedbackPoller(client, telemetry.feedback)
                if bridge.discovery.name == "steps" and telemetry.feedback
                else None
            )
            while not self._stop.is_set():
                started = time.monotonic()
                report = await self._cycle(bridge, once=once)
                if report is None:  # stopped while the cycle was under way
                    break
                cycles += 1
                _log_cycle(report, time.monotonic() - started, telemetry)
                if feedback is not None:
                    await _poll_feedback(feedback)
                if once:
                    ok = ok and report.ok
                    if report.more and report.ok:
                        continue
                    break
                failures = 0 if report.ok else failures + 1
                if report.more and report.ok:
                    continue  # pages came back full: there is a backlog, poll at once
                await self._stop.sleep(retry_delay(settings.poll_interval, failures))
            # What finished after the last cycle's summary (the batch in flight at a
            # stop, the end of a --once run's work) gets one of its own.
            started = time.monotonic()
            last = await bridge.aclose()
            bridge = None
            if last.spans or last.failed_batches:
                _log_cycle(last, time.monotonic() - started, telemetry)
        finally:
            if bridge is not None:  # an error ended the loop: stop the work in flight
                await bridge.aclose()
            if health is not None:
                health.stop()
            await client.aclose()
            sink.shutdown()
            # After a failed start there is nothing to push: do not hold the exit for it.
            telemetry.shutdown(flush=cycles > 0)
            state.close()
        return RunResult(cycles, ok)

    async def _cycle(self, bridge: Bridge, *, once: bool) -> CycleReport | None:
        """One cycle, given up when a stop is requested before it ends (None then)."""
        cycle = asyncio.ensure_future(bridge.cycle(once=once, should_stop=self._stop.is_set))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((cycle, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not cycle.done():
            cycle.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cycle
            return None
        return cycle.result()

    async def _start(
        self,
        client: LettaClient,
        state: StateStore,
        sink: SpanSink,
        telemetry: Telemetry,
        *,
        once: bool,
    ) -> Bridge | None:
        """The bridge, once the OTLP endpoint and Letta answer. ``--once`` stops at the
        first that does not; the daemon waits for both, not ready meanwhile (None: a
        stop was requested first)."""
        settings = self._settings
        if once:
            await check_otlp_reachable(settings)
            return await build_bridge(settings, client, state, sink, telemetry)

        async def attempt() -> Bridge:
            # One connect per try: the wait's back-off is the retry.
            await check_otlp_reachable(settings, attempts=1)
            return await build_bridge(settings, client, state, sink, telemetry)

        return await wait_until_reachable(
            attempt, poll_interval=settings.poll_interval, readiness=telemetry, stop=self._stop
        )
