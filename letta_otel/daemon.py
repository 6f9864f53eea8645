"""The long-running loop around ``Bridge.cycle``: start-up checks, signals, summaries.

SIGINT/SIGTERM set a stop flag: the batch in flight finishes and is committed, no
new batch starts, the state is closed, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from letta_otel import __version__
from letta_otel.bridge import Bridge, BridgeOptions, CycleReport
from letta_otel.export.sink import SpanSink, build_sink
from letta_otel.feedback import FeedbackPoller
from letta_otel.health import HealthServer, HealthServerError
from letta_otel.letta.client import LettaAuthError, LettaClient, LettaError
from letta_otel.letta.discovery import (
    Discovery,
    RunsDiscovery,
    StepsDiscovery,
    choose_discovery,
)
from letta_otel.letta.enrich import Enricher
from letta_otel.mapping import ids
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.capture import CaptureMode, ContentPolicy
from letta_otel.mapping.limits import Limits
from letta_otel.mapping.redact import Redactor, compile_patterns
from letta_otel.mapping.spans import MappingContext, endpoint_address
from letta_otel.observer import BridgeObserver
from letta_otel.retry import CONNECT_ATTEMPTS, MAX_CYCLE_DELAY, connect_retrying, cycle_delay
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.policy import Selection
from letta_otel.selection.sampling import Sampler
from letta_otel.settings import Settings
from letta_otel.state import StateError, StateStore
from letta_otel.telemetry import Telemetry, build_telemetry

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Configuration or an endpoint is unusable; the message says which and how to fix it."""


@dataclass
class RunResult:
    cycles: int
    ok: bool


def build_resource(settings: Settings) -> Resource:
    attrs: dict[str, str] = dict(settings.resource_attributes)
    attrs["service.name"] = settings.service_name
    attrs[sc.BRIDGE_VERSION] = __version__
    attrs[sc.BRIDGE_ID_SCHEME] = ids.ID_SCHEME
    return Resource(attrs)


def build_context(settings: Settings) -> MappingContext:
    return MappingContext(
        resource=build_resource(settings),
        scope=InstrumentationScope("letta-otel", __version__, sc.SCHEMA_URL),
        letta_server=endpoint_address(settings.letta_base_url),
        content=build_content_policy(settings),
    )


def build_content_policy(settings: Settings) -> ContentPolicy:
    """Capture mode, redaction and attribute budgets (issue 7)."""
    return ContentPolicy(
        mode=CaptureMode(settings.capture_message_content),
        redactor=Redactor(compile_patterns(settings.redact_patterns)),
        limits=Limits(
            max_attribute_bytes=settings.max_attribute_bytes,
            max_span_bytes=settings.max_span_bytes,
            max_attributes=settings.max_attributes,
        ),
    )


def build_client(
    settings: Settings, on_error: Callable[[str, int | None], None] | None = None
) -> LettaClient:
    return LettaClient(
        settings.letta_base_url,
        api_key=settings.letta_api_key.get_secret_value() if settings.letta_api_key else None,
        project=settings.letta_project,
        timeout=settings.letta_timeout,
        deadline=settings.letta_deadline,
        max_connections=settings.max_concurrency,
        on_error=on_error,
        max_rps=settings.max_rps,
    )


def build_filters(settings: Settings) -> StepFilters:
    return StepFilters.of(
        agent_ids=settings.filter_agent_ids,
        agent_tags=settings.filter_agent_tags,
        models=settings.filter_models,
        model_handles=settings.filter_model_handles,
        project_ids=settings.filter_project_ids,
        step_statuses=settings.filter_step_statuses,
    )


# Steps listing pages per cycle (200 steps each). A cycle that reaches it is followed
# at once by the next (adaptive polling), so a backlog streams through in slices that
# bound memory, and ``--once`` keeps cycling until the listing is exhausted.
PAGES_PER_CYCLE = 10


async def startup_discovery(settings: Settings, choosing: Awaitable[Discovery]) -> Discovery:
    """The discovery ``choosing`` picks (it may probe Letta); a Letta that cannot be
    reached or refuses the credentials stops start-up with the setting to check."""
    try:
        return await choosing
    except LettaAuthError as exc:
        raise StartupError(f"{exc}") from None
    except LettaError as exc:
        raise StartupError(
            f"cannot reach Letta at LETTA_BASE_URL={settings.letta_base_url}: {exc}"
        ) from None


async def _build_bridge(  # noqa: PLR0917
    settings: Settings,
    client: LettaClient,
    state: StateStore,
    sink: SpanSink,
    once: bool,
    observer: BridgeObserver | None = None,
) -> Bridge:
    max_pages = PAGES_PER_CYCLE
    filters = build_filters(settings)
    discovery = await startup_discovery(
        settings,
        choose_discovery(
            client,
            settings.discovery,
            lambda: StepsDiscovery(
                client,
                settings.initial_lookback,
                max_pages,
                extra_params=filters.steps_query(),
                reread_window=settings.reread_window,
            ),
            # Unbounded: the runs listing cannot resume from a cursor (newest first down
            # to a watermark), so a page budget would lose the older runs of a backlog.
            lambda: RunsDiscovery(
                client,
                settings.initial_lookback,
                None,
                run_filters=filters.runs_query(),
                reread_window=settings.reread_window,
                keep_run=filters.keeps_run if len(filters.agent_ids) > 1 else None,
            ),
        ),
    )
    log.info("discovering steps through /v1/%s/", discovery.name)
    pushed = filters.steps_query() if discovery.name == "steps" else filters.runs_query()
    if pushed:
        log.info("filters sent to Letta with each listing: %s", pushed)
    return bridge_over(settings, discovery, client, state, sink, observer)


def bridge_over(  # noqa: PLR0917
    settings: Settings,
    discovery: Discovery,
    client: LettaClient,
    state: StateStore,
    sink: SpanSink,
    observer: BridgeObserver | None = None,
) -> Bridge:
    """The bridge for any discovery (the daemon's, or a backfill's range): the same
    filters, sampling, shard, budgets and batching everywhere."""
    if settings.shard is not None:
        log.info("handling only the agents of shard %s", settings.shard)
    # Content capture needs no more /messages than the spans do: messages only add tool
    # arguments and results, and needs_messages() fetches them whenever a tool ran.
    context = build_context(settings)
    enricher = Enricher(
        client, max_in_flight=settings.max_concurrency, lean_traces=not context.policy.capture
    )
    filters = build_filters(settings)
    return Bridge(
        discovery=discovery,
        enricher=enricher,
        sink=sink,
        state=state,
        context=context,
        options=BridgeOptions(
            pending_timeout=settings.pending_timeout,
            enrich_grace=settings.enrich_grace,
            adopt_letta_trace_id=settings.adopt_letta_trace_id,
            max_batch_spans=settings.max_batch_spans,
            max_batch_bytes=settings.max_batch_bytes,
            max_trace_bytes=settings.max_trace_bytes
            if settings.capture_message_content != "NO_CONTENT"
            else None,
            shard=settings.shard,
        ),
        observer=observer,
        selection=Selection(
            filters,
            Sampler(settings.sample_ratio),
            enricher,
            pending_timeout=settings.pending_timeout,
        ),
    )


OTLP_CONNECT_ATTEMPTS = CONNECT_ATTEMPTS


async def check_otlp_reachable(settings: Settings, attempts: int = OTLP_CONNECT_ATTEMPTS) -> None:
    """Fail start-up clearly when nothing listens at the OTLP endpoint.

    Only a TCP connect: whether the backend accepts our data shows on the first
    export. Retried for a few seconds (:func:`letta_otel.retry.connect_retrying`),
    since a collector may start beside us.
    """
    address = endpoint_address(settings.otlp_traces_endpoint)
    if address is None or address[1] is None:
        return
    host, port = address

    async def connect() -> asyncio.StreamWriter:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
        return writer

    try:
        writer: asyncio.StreamWriter = await connect_retrying(attempts)(connect)
    except (OSError, TimeoutError) as exc:
        error = exc.strerror or type(exc).__name__ if isinstance(exc, OSError) else "timed out"
        raise StartupError(
            f"cannot reach the OTLP endpoint {settings.otlp_traces_endpoint} ({error}); check "
            "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and that the "
            "collector or backend is running"
        ) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def open_state(settings: Settings) -> StateStore:
    try:
        return StateStore(settings.state_path)
    except StateError as exc:
        raise StartupError(f"LETTA_OTEL_STATE_PATH: {exc}") from None


def start_telemetry(
    settings: Settings, state: StateStore, *, serve: bool
) -> tuple[Telemetry, HealthServer | None]:
    """Metrics (and, for a daemon, the health endpoint unless it is off)."""
    serve = serve and settings.health_addr is not None
    telemetry = build_telemetry(
        settings,
        build_resource(settings),
        state=state,
        serve_metrics=serve,
        letta_server=endpoint_address(settings.letta_base_url),
    )
    if not serve or settings.health_addr is None:
        return telemetry, None
    try:
        return telemetry, HealthServer(settings.health_addr, telemetry).start()
    except HealthServerError as exc:
        telemetry.shutdown(flush=False)
        raise StartupError(str(exc)) from None


def summary_fields(report: CycleReport, seconds: float) -> dict[str, object]:
    """The cycle summary as JSON-log fields (steps seen/exported/pending, lag, errors)."""
    lag = None
    if report.newest_exported_ns:
        lag = round(max(0.0, time.time() - report.newest_exported_ns / 1e9), 3)
    return {
        "event": "cycle",
        "discovery": report.discovery,
        "steps_seen": report.discovered,
        "steps_exported": report.exported_steps,
        "runs_exported": report.exported_runs,
        "spans_exported": report.spans,
        "steps_pending": report.open_steps,
        "runs_pending": report.open_runs,
        "steps_waiting": report.waiting,
        "steps_skipped": report.skipped,
        "batches": report.batches,
        "failed_batches": report.failed_batches,
        "letta_errors": report.letta_errors,
        "lag_s": lag,
        "took_s": round(seconds, 3),
        "ok": report.ok,
    }


def summarize(report: CycleReport, seconds: float) -> str:
    lag = ""
    if report.newest_exported_ns:
        lag_s = time.time() - report.newest_exported_ns / 1e9
        lag = f" lag={lag_s:.1f}s"
    return (
        f"cycle via {report.discovery}: discovered={report.discovered} "
        f"exported_steps={report.exported_steps} exported_runs={report.exported_runs} "
        f"spans={report.spans} batches={report.batches} failed_batches={report.failed_batches} "
        f"waiting={report.waiting} open_steps={report.open_steps} open_runs={report.open_runs} "
        f"skipped={report.skipped} letta_errors={report.letta_errors}{_selected(report)}{lag} "
        f"took={seconds:.2f}s"
    )


def _selected(report: CycleReport) -> str:
    """Filter and sampling counters, when there is anything to say."""
    counts = (
        report.filtered_steps,
        report.filtered_runs,
        report.sampled_out_steps,
        report.sampled_out_runs,
        report.held_steps,
    )
    if not any(counts):
        return ""
    return f" filtered={counts[0]}/{counts[1]} sampled_out={counts[2]}/{counts[3]} held={counts[4]}"


MAX_RETRY_DELAY = MAX_CYCLE_DELAY
# Poll interval while healthy; doubling (with jitter, up to 1 min) while failing: the
# same backoff as every other retry, from letta_otel.retry.
retry_delay = cycle_delay


async def _poll_feedback(poller: FeedbackPoller) -> None:
    try:
        await poller.maybe_poll(datetime.now(UTC))
    except LettaError as exc:  # feedback is a side channel: never fail a cycle for it
        log.warning("listing steps with feedback failed: %s", exc)


class StopSignal:
    """SIGINT/SIGTERM, or :meth:`request`, ask a loop to stop after the batch in flight."""

    def __init__(self, message: str) -> None:
        self._event = asyncio.Event()
        self._message = message

    def request(self) -> None:
        if not self._event.is_set():
            log.info("%s", self._message)
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not available off the main thread (embedded use, tests).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)


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
        try:
            await check_otlp_reachable(settings)
            bridge = await _build_bridge(settings, client, state, sink, once, telemetry)
            feedback = (
                FeedbackPoller(client, telemetry.feedback)
                if bridge.discovery.name == "steps" and telemetry.feedback
                else None
            )
            while not self._stop.is_set():
                started = time.monotonic()
                report = await bridge.cycle(once=once, should_stop=self._stop.is_set)
                cycles += 1
                elapsed = time.monotonic() - started
                telemetry.cycle_finished(report)
                level = logging.INFO if report.ok else logging.WARNING
                log.log(
                    level,
                    summarize(report, elapsed),
                    extra={"fields": summary_fields(report, elapsed)},
                )
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
        finally:
            if health is not None:
                health.stop()
            await client.aclose()
            sink.shutdown()
            # After a failed start there is nothing to push: do not hold the exit for it.
            telemetry.shutdown(flush=cycles > 0)
            state.close()
        return RunResult(cycles, ok)
