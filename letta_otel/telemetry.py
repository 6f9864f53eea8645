"""The bridge's metrics and health: instruments, readers and the readiness rule.

One SDK ``MeterProvider`` (the same resource as the spans) feeds up to two readers:

* a ``PeriodicExportingMetricReader`` pushing over OTLP next to the traces
  (``LETTA_OTEL_METRICS`` / ``OTEL_METRICS_EXPORTER``), cumulative by default, so a
  lost push loses resolution, never counts (the exporter: :mod:`letta_otel.metrics_otlp`);
  a failed step counted asks for a push at once (:class:`EarlyPush`, the reader's public
  ``force_flush``, at most once a second), so ``letta.steps{status=failed}`` reaches an
  OTLP backend as soon as the ERROR span, not at the next periodic push;
* the ``opentelemetry-exporter-prometheus`` reader on a private ``prometheus_client``
  registry, rendered by ``/metrics`` (see :mod:`letta_otel.health`). Using the
  upstream reader gives the standard OTel→Prometheus naming (``_total``, unit
  suffixes, ``target_info``) instead of a hand-made dialect.

Every instrument is an SDK instrument recorded through its public API (``add``,
``record``, observable gauges), so temporality, bucket boundaries (the GenAI ones, as
the instruments' advisory), the cardinality limit with its ``otel.metric.overflow``
series and exemplars are the SDK's, per reader.

:class:`Telemetry` is the bridge's observer (:mod:`letta_otel.pipeline.observer`). Nothing
it does may break a cycle: every hook swallows and logs its own errors.

Readiness: ready when a poll succeeded (discovery answered) and the span export
did not fail, each within ``ready_intervals`` poll intervals. A cycle with nothing to
export counts as a good export: an idle bridge stays ready, and only failed export
attempts (the backend down or refusing) make it unready. Before that, a daemon that
waits for its OTLP endpoint or Letta (:mod:`letta_otel.startup`) is not ready with
that reason alone (:meth:`Telemetry.starting`); the export clock starts when it is
over (:meth:`Telemetry.started`), so the wait does not count as a failing export.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry

from letta_otel import __version__
from letta_otel.config import Settings
from letta_otel.config.network import redact_url
from letta_otel.feedback import FeedbackLedger, FeedbackTracker
from letta_otel.letta.models import Step
from letta_otel.mapping import metrics as mm
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.metrics_otlp import PushCounter, build_metric_exporter, metrics_transport
from letta_otel.startup import format_seconds

log = logging.getLogger(__name__)

METER_NAME = "letta-otel"

# --- the bridge's own instruments (names as exported over OTLP) -------------------
POLL_LAG = "letta_otel.poll.lag"
STEPS_PENDING = "letta_otel.steps.pending"
RUNS_PENDING = "letta_otel.runs.pending"
STEPS_SKIPPED = "letta_otel.steps.skipped"
EXPORT_ATTEMPTS = "letta_otel.export.attempts"
EXPORT_FAILURES = "letta_otel.export.failures"
SPANS_EXPORTED = "letta_otel.spans.exported"
LETTA_ERRORS = "letta_otel.letta.request.errors"
LAST_POLL = "letta_otel.poll.last_success_timestamp"
LAST_EXPORT = "letta_otel.export.last_success_timestamp"
READY = "letta_otel.ready"

SIGNAL = "letta_otel.signal"  # traces | metrics
# A failed step asks for an OTLP metrics push at once, at most one per this many seconds.
EARLY_PUSH_GAP = 1.0
HTTP_STATUS = "http.response.status_code"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]
    poll_age: float | None
    export_age: float


@dataclass
class _HealthState:
    started: float
    window: float
    last_poll: float | None = None
    last_export: float = 0.0
    newest_end_ns: int = 0
    lag: float | None = None
    steps_pending: int | None = None
    runs_pending: int | None = None
    # Start-up is waiting for an endpoint: why, and when it tries again (clock time).
    waiting: str | None = None
    next_try: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Instrument:
    """A counter (``bounds`` None) or an explicit-bucket histogram, as it is exported."""

    name: str
    unit: str
    description: str
    bounds: tuple[float, ...] | None = None


# The instruments mapping/metrics.py measures (several per step), as exported.
STEP_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(mm.STEPS, "{step}", "Letta agent steps, counted once each when settled."),
    Instrument(mm.RUNS, "{run}", "Letta runs, counted once each when settled."),
    Instrument(mm.FEEDBACK, "{feedback}", "Feedback given to Letta steps (positive/negative)."),
    Instrument(
        mm.TOKEN_USAGE, "{token}", "Number of input and output tokens used.", mm.TOKEN_BUCKETS
    ),
    Instrument(mm.OPERATION_DURATION, "s", "GenAI operation duration.", mm.DURATION_BUCKETS),
    Instrument(
        mm.STEP_DURATION,
        "s",
        "Letta step duration as Letta measured it (step_ns).",
        mm.STEP_DURATION_BUCKETS,
    ),
)


class CycleOutcome(Protocol):
    """What a cycle's report (``letta_otel.pipeline.report.CycleReport``) tells the metrics."""

    @property
    def skipped(self) -> int: ...
    @property
    def open_steps(self) -> int: ...
    @property
    def open_runs(self) -> int: ...
    @property
    def failed_batches(self) -> int: ...
    @property
    def export_failing(self) -> bool: ...


class Telemetry:
    """Instruments + readiness; also a :class:`~letta_otel.pipeline.observer.BridgeObserver`."""

    def __init__(
        self,
        *,
        resource: Resource,
        poll_interval: float,
        ready_intervals: int,
        readers: Sequence[MetricReader] = (),
        registry: CollectorRegistry | None = None,
        letta_server: tuple[str, int | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._clock = clock
        self._letta_server = letta_server
        now = clock()
        self._health = _HealthState(
            started=now, window=poll_interval * ready_intervals, last_export=now
        )
        self.feedback: FeedbackTracker | None = None
        self.pushes: list[PushCounter] = []  # the OTLP reader's, if any
        self.early_push: EarlyPush | None = None  # pushes the OTLP reader soon after a failure
        self._provider = MeterProvider(resource=resource, metric_readers=list(readers))
        meter = self._provider.get_meter(METER_NAME, __version__, schema_url=sc.SCHEMA_URL)

        # The per-step instruments, by name: the bound method a measurement goes to.
        # Histogram boundaries are the instruments' advisory rather than Views, so a
        # reader that prefers another histogram aggregation (base-2 exponential from
        # OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION) still gets it.
        self._sinks: dict[str, Callable[[float, mm.Attributes], None]] = {}
        for inst in STEP_INSTRUMENTS:
            if inst.bounds is None:
                counter = meter.create_counter(inst.name, inst.unit, inst.description)
                self._sinks[inst.name] = counter.add
            else:
                histogram = meter.create_histogram(
                    inst.name,
                    inst.unit,
                    inst.description,
                    explicit_bucket_boundaries_advisory=inst.bounds,
                )
                self._sinks[inst.name] = histogram.record
        # Each measurement of mapping/metrics.py, in its instrument.
        self.record: Callable[[Iterable[mm.Measurement]], None] = (
            self._record_sdk if readers else _ignore  # no reader: nothing would be exported
        )
        self._export_attempts = meter.create_counter(
            EXPORT_ATTEMPTS, "{request}", "OTLP export attempts by signal."
        )
        self._export_failures = meter.create_counter(
            EXPORT_FAILURES, "{request}", "OTLP export attempts that failed, by signal."
        )
        self._spans_exported = meter.create_counter(
            SPANS_EXPORTED, "{span}", "Spans the OTLP backend confirmed."
        )
        self._letta_errors = meter.create_counter(
            LETTA_ERRORS,
            "{request}",
            "Failed Letta API requests (each attempt), by error.type: HTTP status, "
            "timeout, connection or invalid_json.",
        )
        self._skipped = meter.create_counter(
            STEPS_SKIPPED, "{step}", "Steps Letta served in a shape that cannot be exported."
        )
        gauges: tuple[tuple[str, str, str, Callable[[], float | None]], ...] = (
            (POLL_LAG, "s", "Age of the newest exported span when it was exported.", self._lag),
            (STEPS_PENDING, "{step}", "Steps discovered but not exported yet.", self._steps),
            (RUNS_PENDING, "{run}", "Runs discovered but not exported yet.", self._runs),
            (LAST_POLL, "s", "Unix time of the last successful poll.", self._last_poll),
            (LAST_EXPORT, "s", "Unix time of the last good span export.", self._last_export),
            (READY, "1", "1 when /readyz would answer ready, else 0.", self._ready),
        )
        for name, unit, description, read in gauges:
            meter.create_observable_gauge(
                name, [_observe(read)], unit=unit, description=description
            )

    # --- readiness ------------------------------------------------------------------

    def starting(self, reason: str, retry_in: float) -> None:
        """Start-up waits for an endpoint (``reason``: ``waiting for the OTLP endpoint
        http://collector:4317 (connection refused)``) and tries again in ``retry_in``
        seconds: not ready until :meth:`started`, with that as the only reason.

        OTLP metric pushes wait too: they mostly go to the collector being waited for,
        and each failed one logs the SDK's errors every interval, burying the one line
        per try. The first push after start carries the counts (cumulative by default);
        ``/metrics`` serves them all along."""
        h = self._health
        with h.lock:
            h.waiting, h.next_try = reason, self._clock() + retry_in
        for pushes in self.pushes:
            pushes.held = True

    def started(self) -> None:
        """Start-up is over: readiness follows the poll and export rule from now on."""
        h = self._health
        with h.lock:
            # The export clock starts now: the wait was not a failing export.
            h.waiting, h.last_export = None, self._clock()
        for pushes in self.pushes:
            pushes.held = False

    def readiness(self) -> Readiness:
        now = self._clock()
        h = self._health
        with h.lock:
            last_poll, last_export = h.last_poll, h.last_export
            waiting, next_try = h.waiting, h.next_try
        reasons: list[str] = []
        poll_age = None if last_poll is None else now - last_poll
        export_age = now - last_export
        if waiting is not None:
            left = next_try - now
            when = f"next try in {format_seconds(left)}" if left > 0 else "trying again now"
            reasons.append(f"starting: {waiting}; {when}")
        elif poll_age is None:
            reasons.append("no successful poll of Letta yet")
        elif poll_age > h.window:
            reasons.append(f"last successful poll {poll_age:.1f}s ago (limit {h.window:g}s)")
        if waiting is None and export_age > h.window:
            reasons.append(f"span export failing for {export_age:.1f}s (limit {h.window:g}s)")
        return Readiness(not reasons, tuple(reasons), poll_age, export_age)

    # --- observer hooks (event loop thread) -----------------------------------------

    def polled(self, steps: Sequence[Step]) -> None:
        with self._health.lock:
            self._health.last_poll = self._clock()
        self._guard("feedback", lambda: self._observe_feedback(steps))

    def exported(self, ok: bool, spans: int, newest_end_ns: int) -> None:
        attrs = {SIGNAL: "traces"}
        self._export_attempts.add(1, attrs)
        if not ok:
            self._export_failures.add(1, attrs)
            return
        self._spans_exported.add(spans)
        now = self._clock()
        h = self._health
        with h.lock:
            h.last_export = now
            h.newest_end_ns = max(h.newest_end_ns, newest_end_ns)
            h.lag = max(0.0, now - h.newest_end_ns / 1e9)

    # The two per-step hooks guard inline: no closures or messages built per call.

    def step_accounted(self, record: StepRecord, llm: bool = True) -> None:
        try:
            self.record(mm.step_measurements(record, llm=llm))
        except Exception:  # metrics must never stop the export of spans
            log.warning("recording metrics for step %s failed", record.step.id, exc_info=True)
        if record.step.status == "failed" and self.early_push is not None:
            # The failed-step alert reads letta.steps: push it now, not at the next
            # periodic export (OTLP); /metrics already shows it.
            self.early_push.request()
        if self.feedback is not None:
            self._guard("feedback", lambda: self._observe_feedback([record.step]))

    def llm_accounted(self, record: StepRecord) -> None:
        """A step's LLM span sent after its step span: its GenAI metrics, now."""
        try:
            self.record(mm.llm_measurements(record))
        except Exception:
            log.warning("recording LLM metrics for step %s failed", record.step.id, exc_info=True)

    def run_accounted(self, record: RunRecord) -> None:
        try:
            self.record(mm.run_measurements(record, self._letta_server))
        except Exception:
            log.warning("recording metrics for run %s failed", record.run.id, exc_info=True)

    def cycle_finished(self, report: CycleOutcome) -> None:
        """End of a cycle: no failed batch, and no export failing since (with work
        waiting for it), means the export path is good (idle included)."""
        if report.skipped:
            self._skipped.add(report.skipped)
        h = self._health
        with h.lock:
            h.steps_pending, h.runs_pending = report.open_steps, report.open_runs
            if report.failed_batches == 0 and not report.export_failing:
                h.last_export = self._clock()

    def letta_request_failed(self, kind: str, status: int | None) -> None:
        attrs: dict[str, str | int] = {sc.ERROR_TYPE: kind}
        if status is not None:
            attrs[HTTP_STATUS] = status
        self._letta_errors.add(1, attrs)

    def metrics_exported(self, ok: bool) -> None:
        attrs = {SIGNAL: "metrics"}
        self._export_attempts.add(1, attrs)
        if not ok:
            self._export_failures.add(1, attrs)

    def feedback_given(self, step: Step) -> None:
        measurement = mm.feedback_measurement(step)
        if measurement is not None:
            self.record([measurement])

    # --- plumbing -------------------------------------------------------------------

    def _observe_feedback(self, steps: Iterable[Step]) -> None:
        if self.feedback is not None:
            self.feedback.observe(steps)

    def _record_sdk(self, measurements: Iterable[mm.Measurement]) -> None:
        sinks = self._sinks
        for name, value, attributes in measurements:
            sinks[name](value, attributes)

    @staticmethod
    def _guard(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # metrics must never stop the export of spans
            log.warning("recording metrics for %s failed", what, exc_info=True)

    def _lag(self) -> float | None:
        return self._health.lag

    def _steps(self) -> float | None:
        return self._health.steps_pending

    def _runs(self) -> float | None:
        return self._health.runs_pending

    def _last_poll(self) -> float | None:
        return self._health.last_poll

    def _last_export(self) -> float | None:
        return self._health.last_export

    def _ready(self) -> float:
        return 1.0 if self.readiness().ready else 0.0

    def shutdown(self, timeout_millis: float = 10_000, *, flush: bool = True) -> None:
        """Flush the last OTLP push (a --once run's only one) and stop the readers.

        ``flush=False`` (start-up failed) drops it: its errors would only bury the real one.
        """
        if self.early_push is not None:
            self.early_push.close()
        if not flush:
            for pushes in self.pushes:
                pushes.discard = True
        try:
            self._provider.shutdown(timeout_millis=timeout_millis)
        except Exception:
            log.warning("stopping the metrics pipeline failed", exc_info=True)


def _ignore(_: Iterable[mm.Measurement]) -> None:
    pass


class EarlyPush:
    """An OTLP metrics push requested now rather than at the next periodic export, so a
    failed step reaches an alert on an OTLP backend within seconds, as its ERROR span
    does: the periodic reader's public ``force_flush`` (a collection and an export) in a
    thread of its own (it blocks on the network), at most one per ``min_gap`` seconds.
    Requests while one is waiting or under way are folded into one more push after it,
    which collects everything counted until then."""

    def __init__(
        self,
        push: Callable[[], object],
        *,
        min_gap: float = EARLY_PUSH_GAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._push = push
        self._min_gap = min_gap
        self._clock = clock
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._again = False  # requested while a push was waiting or under way
        self._last = -math.inf
        self._closed = False

    def request(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._again = True
                return
            self._start()

    def close(self) -> None:
        """No more pushes (the provider's shutdown makes the last one)."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _start(self) -> None:  # with the lock held
        delay = max(0.0, self._last + self._min_gap - self._clock())
        self._timer = threading.Timer(delay, self._run)
        self._timer.name = "letta-otel-early-push"
        self._timer.daemon = True
        self._timer.start()

    def _run(self) -> None:
        try:
            self._push()
        except Exception:  # the periodic export tries again anyway
            log.warning("pushing the metrics early failed", exc_info=True)
        with self._lock:
            self._last = self._clock()
            self._timer = None
            if self._again and not self._closed:
                self._again = False
                self._start()


def _observe(read: Callable[[], float | None]) -> Callable[[CallbackOptions], list[Observation]]:
    def callback(_: CallbackOptions) -> list[Observation]:
        value = read()
        return [] if value is None else [Observation(value)]

    return callback


def build_telemetry(
    settings: Settings,
    resource: Resource,
    *,
    state: FeedbackLedger | None = None,
    serve_metrics: bool = False,
    letta_server: tuple[str, int | None] | None = None,
) -> Telemetry:
    """Telemetry with the readers the settings ask for (``serve_metrics``: /metrics)."""
    readers: list[MetricReader] = []
    registry: CollectorRegistry | None = None
    if serve_metrics:
        registry = CollectorRegistry(auto_describe=True)
        readers.append(PrometheusMetricReader(registry=registry))
    telemetry_ref: list[Telemetry] = []

    def on_push(ok: bool) -> None:
        if telemetry_ref:
            telemetry_ref[0].metrics_exported(ok)

    pushes: list[PushCounter] = []
    early_push: EarlyPush | None = None
    if settings.otlp_metrics and settings.otlp_metrics_endpoint:
        interval_ms = settings.metric_export_interval * 1000
        timeout_ms = max(metrics_transport(settings).otlp_timeout * 2000, 1000)
        pushes.append(PushCounter(on_push))
        periodic = PeriodicExportingMetricReader(
            build_metric_exporter(settings, pushes[0]),
            export_interval_millis=interval_ms,
            export_timeout_millis=timeout_ms,
        )
        readers.append(periodic)
        early_push = EarlyPush(partial(periodic.force_flush, timeout_millis=timeout_ms))
    elif settings.otlp_metrics:
        log.warning(
            "metrics are not pushed over OTLP: no metrics URL can be told from the traces "
            "endpoint %s; set OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (or LETTA_OTEL_METRICS=false "
            "to silence this)",
            redact_url(settings.otlp_traces_endpoint),
        )
    telemetry = Telemetry(
        resource=resource,
        poll_interval=settings.poll_interval,
        ready_intervals=settings.ready_intervals,
        readers=readers,
        registry=registry,
        letta_server=letta_server,
    )
    telemetry_ref.append(telemetry)
    telemetry.pushes = pushes
    telemetry.early_push = early_push
    if state is not None:
        telemetry.feedback = FeedbackTracker(state, telemetry.feedback_given)
    return telemetry
