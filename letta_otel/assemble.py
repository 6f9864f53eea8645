"""The parts every program builds the same way from the settings.

The daemon, the backfill, the doctor and the demo assemble their pieces here: the
Letta client, the discovery (probing ``/v1/steps/``), the mapping context with its
content policy, the filters and sampling, the pipeline (:func:`bridge_over`), the state
file, the metrics and health endpoint, and the start-up checks. A piece that cannot be
built stops start-up with a :class:`~letta_otel.startup.StartupError` naming the setting
to fix; an endpoint that does not answer yet raises its :class:`~letta_otel.startup.Unreachable`,
which the daemon waits out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from letta_otel import __version__
from letta_otel.config import Settings
from letta_otel.config.network import redact_url
from letta_otel.export.sink import SpanSink
from letta_otel.health import HealthServer, HealthServerError
from letta_otel.letta.client import LettaAuthError, LettaClient, LettaError, LettaUnavailable
from letta_otel.letta.discovery import (
    Discovery,
    RunsDiscovery,
    StepsDiscovery,
    choose_discovery,
)
from letta_otel.letta.enrich import Enricher
from letta_otel.mapping import ids
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.attributes import endpoint_address
from letta_otel.mapping.capture import CaptureMode, ContentPolicy
from letta_otel.mapping.limits import Limits
from letta_otel.mapping.records import needs_messages
from letta_otel.mapping.redact import Redactor, compile_patterns
from letta_otel.mapping.spans import MappingContext
from letta_otel.pipeline.cycle import Bridge, BridgeOptions
from letta_otel.pipeline.observer import BridgeObserver
from letta_otel.pipeline.selecting import Selection
from letta_otel.retry import CONNECT_ATTEMPTS, connect_retrying
from letta_otel.selection.filters import StepFilters
from letta_otel.selection.sampling import Sampler
from letta_otel.startup import StartupError, Unreachable, describe_connect_error
from letta_otel.state import StateError, StateStore
from letta_otel.telemetry import Telemetry, build_telemetry

log = logging.getLogger(__name__)


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
    reached or refuses the credentials stops start-up with the setting to check.

    :class:`Unreachable` when a later try may succeed (no answer, a timeout, 5xx/429
    through all of the client's retries); a plain :class:`StartupError` when Letta
    answered and refused (401/403, another 4xx) or the transport is misconfigured.
    """
    try:
        return await choosing
    except LettaAuthError as exc:
        raise StartupError(f"{exc}") from None
    except LettaUnavailable as exc:
        raise Unreachable(
            f"cannot reach Letta at LETTA_BASE_URL={settings.letta_base_url}: {exc}",
            what=f"Letta at {redact_url(settings.letta_base_url)}",
            error=str(exc),
        ) from None
    except LettaError as exc:
        raise StartupError(
            f"cannot reach Letta at LETTA_BASE_URL={settings.letta_base_url}: {exc}"
        ) from None


async def build_bridge(
    settings: Settings,
    client: LettaClient,
    state: StateStore,
    sink: SpanSink,
    observer: BridgeObserver | None = None,
) -> Bridge:
    """The daemon's bridge: discovery chosen (and probed) per the settings, filters
    pushed down to Letta where its routes allow."""
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
        client,
        max_in_flight=settings.max_concurrency,
        lean_traces=not context.policy.capture,
        needs_messages=needs_messages,
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
    """:class:`Unreachable`, naming the setting, when nothing listens at the OTLP endpoint.

    Only a TCP connect: whether the backend accepts our data shows on the first
    export. Tried ``attempts`` times over a few seconds
    (:func:`letta_otel.retry.connect_retrying`), since a collector may start beside us.
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
    except OSError as exc:  # TimeoutError included
        endpoint = redact_url(settings.otlp_traces_endpoint)
        error = describe_connect_error(exc)
        raise Unreachable(
            f"cannot reach the OTLP endpoint {endpoint} ({error}); check "
            "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and that the "
            "collector or backend is running",
            what=f"the OTLP endpoint {endpoint}",
            error=error,
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
