"""Cheap aggregation of the per-step instruments, merged into each reader's collection.

The SDK spends about 10 µs on every synchronous measurement per reader (a Measurement
object, attribute cleaning and hashing, one lock per aggregation); a Letta step records
about five. :class:`Aggregator` does the same sums and explicit-bucket histograms with
one lock per batch and a dict lookup per measurement, and hands the result to each
reader as ordinary SDK export data (``Metric`` with ``Sum``/``Histogram`` points in the
meter's own scope), so exporters see what the SDK would have produced:

* measurements go into one *pending* table, keyed by instrument and attribute items;
* a reader's collection swaps that table out and folds it into every reader's own
  streams (so no reader misses what another one collected first), then emits this
  reader's streams: all of them when it wants cumulative data, or only what it has not
  seen yet (then forgotten) when it wants deltas;
* each reader keeps the SDK's rules: its temporality and cardinality limit per
  instrument kind (the ``otel.metric.overflow`` series past the limit), start times
  (first measurement, or the previous delta collection), collection end times,
  bucket boundaries, sum/count/min/max, and no point for an idle delta stream.

It hooks the reader's collect callback (``MetricReader._collect``, which the
``MeterProvider`` sets): the SDK has no metric-producer API in Python. Only readers
whose aggregation for counters and histograms is the default one are supported; see
:func:`supports`.

Where it can differ from the SDK, knowingly:

* the hot-path key is the attribute items as given, so values Python finds equal but
  of other types for the same key (``1``, ``1.0``, ``True``) share a series within one
  collection interval, where the SDK keeps them apart; the mapping never does that;
* with two readers, float sums are added up in other groups (a fold happens at any
  reader's collection), so a sum may differ from the SDK's in its last bits;
* no exemplars: the SDK's default trace-based filter records none either, as the
  bridge records metrics outside any span (``always_on`` keeps the SDK at work);
* a series' start time is one clock reading for all readers (the SDK reads the clock
  once per reader, microseconds apart);
* the rules are SDK 1.45's. Under 1.44 (which pyproject still allows) a delta series
  new since the last collection starts at its first measurement rather than at that
  collection, and there is no cardinality limit (none here either then).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import time_ns
from typing import Any, Final, cast

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.view import (
    DefaultAggregation,
    ExplicitBucketHistogramAggregation,
    SumAggregation,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

from letta_otel.mapping.metrics import Measurement

log = logging.getLogger(__name__)

try:  # how the SDK (1.45) cleans a measurement's attributes; 1.44 took them as given
    from opentelemetry.attributes import _clean_attribute_value

    _CLEAN: Callable[[Mapping[str, AttributeValue], None], Mapping[str, Any]] | None = (
        _clean_attribute_value
    )
except ImportError:  # pragma: no cover - other SDK versions
    _CLEAN = None

_INF: Final = math.inf
# The SDK's defaults (opentelemetry.sdk.metrics._internal._view_instrument_match).
DEFAULT_CARDINALITY_LIMIT: Final = 2000
_OVERFLOW_ATTRIBUTES: Final[Mapping[str, AttributeValue]] = {"otel.metric.overflow": True}

Collect = Callable[..., MetricsData | None]


@dataclass(frozen=True)
class Instrument:
    """A counter (``bounds`` None) or an explicit-bucket histogram, as it is exported."""

    name: str
    unit: str
    description: str
    bounds: tuple[float, ...] | None = None

    @property
    def is_histogram(self) -> bool:
        return self.bounds is not None


class _Pending:
    """What one attribute set of one instrument received since the last collection."""

    __slots__ = ("attributes", "bounds", "buckets", "first_ns", "max", "min", "sum")

    def __init__(
        self, attributes: Mapping[str, AttributeValue], bounds: tuple[float, ...] | None
    ) -> None:
        self.attributes = attributes
        self.bounds = bounds  # None for a counter
        self.first_ns = time_ns()
        self.sum: float = 0
        self.min: float = _INF
        self.max: float = -_INF
        self.buckets: list[int] | None = None if bounds is None else [0] * (len(bounds) + 1)


class _Point:
    """One exported series of one reader: cumulative totals, or the unreported delta."""

    __slots__ = ("attributes", "buckets", "max", "min", "start_ns", "sum")

    def __init__(
        self, attributes: Mapping[str, AttributeValue], start_ns: int, buckets: int | None
    ) -> None:
        self.attributes = attributes
        self.start_ns = start_ns
        self.sum: float = 0
        self.min: float = _INF
        self.max: float = -_INF
        self.buckets: list[int] | None = None if buckets is None else [0] * buckets

    def add(self, p: _Pending) -> None:
        # The SDK's arithmetic and operand order (new + previous), for identical floats.
        self.sum = p.sum + self.sum
        if p.buckets is not None and self.buckets is not None:
            self.min = min(p.min, self.min)
            self.max = max(p.max, self.max)
            self.buckets = [a + b for a, b in zip(p.buckets, self.buckets, strict=True)]


class _Stream:
    """One instrument as one reader sees it."""

    __slots__ = ("delta", "last_collect_ns", "limit", "points", "started")

    def __init__(self, delta: bool, limit: int) -> None:
        self.delta = delta
        self.limit = limit
        self.points: dict[tuple[Any, ...], _Point] = {}
        self.started = False  # the SDK's stream exists from the first measurement on
        self.last_collect_ns: int | None = None  # the previous delta collection

    def fold(self, key: tuple[Any, ...], p: _Pending, buckets: int | None) -> None:
        point = self.points.get(key)
        if point is None:
            attributes = p.attributes
            if len(self.points) >= self.limit:
                key, attributes = _OVERFLOW_KEY, dict(_OVERFLOW_ATTRIBUTES)
                point = self.points.get(key)
            if point is None:
                start = self.last_collect_ns if self.last_collect_ns is not None else p.first_ns
                point = self.points[key] = _Point(attributes, start, buckets)
                self.started = True
        point.add(p)


@dataclass
class _Consumer:
    streams: dict[str, _Stream]


class Aggregator:
    """Sums and histograms of ``instruments``, exported through attached readers."""

    def __init__(
        self, instruments: Sequence[Instrument], scope: InstrumentationScope, resource: Resource
    ) -> None:
        self._instruments = {i.name: i for i in instruments}
        self._bounds = {i.name: i.bounds for i in instruments}
        self._scope = scope
        self._resource = resource
        self._lock = threading.Lock()  # the pending table: record vs swap
        self._collect_lock = threading.Lock()  # folding into and emitting streams
        self._pending: dict[tuple[str, tuple[Any, ...]], _Pending] = {}
        self._consumers: list[_Consumer] = []

    # --- recording (event loop thread) ----------------------------------------------

    def record(self, measurements: Iterable[Measurement]) -> None:
        """Add each measurement to its series; invalid values are dropped as the SDK does."""
        with self._lock:
            pending = self._pending
            for name, value, attributes in measurements:
                if not 0 <= value < _INF:  # negative, infinite or NaN
                    _reject(name, value, self._bounds[name])
                    continue
                key = (name, tuple(attributes.items()))
                try:
                    p = pending.get(key)
                except TypeError:  # a list value: the same attribute as a tuple, once cleaned
                    key = (name, _hashable(attributes))
                    p = pending.get(key)
                if p is None:
                    cleaned = attributes if _CLEAN is None else _CLEAN(attributes, None)
                    p = pending[key] = _Pending(dict(cleaned), self._bounds[name])
                p.sum += value
                bounds = p.bounds
                if bounds is not None:
                    # Comparisons, not min()/max(): a call costs more than the rest here.
                    if value < p.min:  # noqa: PLR1730
                        p.min = value
                    if value > p.max:  # noqa: PLR1730
                        p.max = value
                    p.buckets[bisect_left(bounds, value)] += 1  # type: ignore[index]

    # --- collection (reader threads) ------------------------------------------------

    def attach(self, reader: MetricReader, counter: type, histogram: type) -> None:
        """Merge this aggregator's data into every collection of ``reader``.

        ``counter``/``histogram`` are the SDK instrument classes the reader's
        preferences are keyed by (``type()`` of an SDK counter / histogram).
        """
        temporality = cast(
            Mapping[type, AggregationTemporality], reader._instrument_class_temporality
        )
        # No limits on the reader: an SDK before cardinality limits (1.44), none then.
        limits: Mapping[type, int] | None = getattr(
            reader, "_instrument_class_cardinality_limit", None
        )
        streams = {}
        for inst in self._instruments.values():
            kind = histogram if inst.is_histogram else counter
            streams[inst.name] = _Stream(
                temporality[kind] is AggregationTemporality.DELTA,
                sys.maxsize if limits is None else limits.get(kind, DEFAULT_CARDINALITY_LIMIT),
            )
        consumer = _Consumer(streams)
        with self._collect_lock:
            self._consumers.append(consumer)
        # Typed as returning metrics in the SDK; it returns MetricsData | None.
        sdk_collect = cast(Collect | None, reader._collect)
        if sdk_collect is None:
            raise ValueError("attach the reader after its MeterProvider is built")

        def collect(r: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
            data = sdk_collect(r, timeout_millis=timeout_millis)
            try:
                return self._merge(data, self.collect(consumer))
            except Exception:  # never lose the SDK's own metrics to a bug here
                log.exception("collecting the aggregated step metrics failed")
                return data

        reader._collect = collect  # type: ignore[assignment]

    def collect(self, consumer: _Consumer) -> list[Metric]:
        """The metrics ``consumer`` reports now (a delta consumer then forgets them)."""
        with self._collect_lock:
            now = time_ns()
            with self._lock:
                pending, self._pending = self._pending, {}
            self._fold(pending)
            return self._emit(consumer, now)

    def _fold(self, pending: Mapping[tuple[str, tuple[Any, ...]], _Pending]) -> None:
        if not pending:
            return
        keyed = [(name, _canonical(p.attributes), p) for (name, _), p in pending.items()]
        for consumer in self._consumers:
            for name, key, p in keyed:
                buckets = None if p.buckets is None else len(p.buckets)
                consumer.streams[name].fold(key, p, buckets)

    def _emit(self, consumer: _Consumer, now: int) -> list[Metric]:
        metrics: list[Metric] = []
        for name, stream in consumer.streams.items():
            points = stream.points
            if stream.delta and stream.started:  # the SDK forgets a delta stream's series
                stream.points = {}
                stream.last_collect_ns = now
            if not points:
                continue
            inst = self._instruments[name]
            temporality = (
                AggregationTemporality.DELTA if stream.delta else AggregationTemporality.CUMULATIVE
            )
            data: Sum | Histogram
            if inst.bounds is None:
                data = Sum(
                    data_points=[
                        NumberDataPoint(
                            attributes=p.attributes,
                            start_time_unix_nano=p.start_ns,
                            time_unix_nano=now,
                            value=p.sum,
                        )
                        for p in points.values()
                    ],
                    aggregation_temporality=temporality,
                    is_monotonic=True,
                )
            else:
                data = Histogram(
                    data_points=[_histogram_point(p, inst.bounds, now) for p in points.values()],
                    aggregation_temporality=temporality,
                )
            metrics.append(Metric(inst.name, inst.description, inst.unit, data))
        return metrics

    def _merge(self, data: MetricsData | None, metrics: list[Metric]) -> MetricsData | None:
        """``data`` with ``metrics`` first in this aggregator's scope."""
        if not metrics:
            return data
        if data is None or not data.resource_metrics:
            own = ScopeMetrics(self._scope, metrics, self._scope.schema_url or "")
            return MetricsData([ResourceMetrics(self._resource, [own], self._resource.schema_url)])
        first, *rest = data.resource_metrics
        scopes = list(first.scope_metrics)
        for i, sm in enumerate(scopes):
            if sm.scope == self._scope:
                scopes[i] = ScopeMetrics(sm.scope, [*metrics, *sm.metrics], sm.schema_url)
                break
        else:
            scopes.insert(0, ScopeMetrics(self._scope, metrics, self._scope.schema_url or ""))
        return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *rest])


def supports(reader: MetricReader, counter: type, histogram: type) -> bool:
    """Whether ``reader`` aggregates counters and histograms the way :class:`Aggregator` does.

    That is the SDK default (a sum; explicit buckets from the instrument's advisory,
    with min and max). Another preference (base-2 exponential histograms from
    ``OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION``, say) keeps the SDK.
    """
    # Private SDK attributes: should a later SDK drop one, the SDK keeps the work.
    aggregation: Mapping[type, object] = getattr(reader, "_instrument_class_aggregation", {})
    temporality: Mapping[type, object] = getattr(reader, "_instrument_class_temporality", {})
    if not callable(getattr(reader, "_collect", None)):
        return False
    if counter not in temporality or histogram not in temporality:
        return False
    if type(aggregation.get(counter)) not in (DefaultAggregation, SumAggregation):
        return False
    hist = aggregation.get(histogram)
    if type(hist) is DefaultAggregation:
        return True
    return (
        type(hist) is ExplicitBucketHistogramAggregation
        and getattr(hist, "_boundaries", ()) is None
        and getattr(hist, "_record_min_max", False) is True
    )


def _histogram_point(p: _Point, bounds: tuple[float, ...], now: int) -> HistogramDataPoint:
    buckets = p.buckets or []
    return HistogramDataPoint(
        attributes=p.attributes,
        start_time_unix_nano=p.start_ns,
        time_unix_nano=now,
        count=sum(buckets),
        sum=p.sum,
        bucket_counts=tuple(buckets),
        explicit_bounds=bounds,
        min=p.min,
        max=p.max,
    )


def _hashable(attributes: Mapping[str, AttributeValue]) -> tuple[Any, ...]:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in attributes.items())


def _tagged(value: object) -> object:
    # Like the SDK's key: True, 1 and 1.0 are different attribute values.
    if isinstance(value, (str, bool, int, float, bytes)) or value is None:
        return (type(value).__name__, value)
    if isinstance(value, Mapping):
        return ("mapping", _canonical(value))
    if isinstance(value, Sequence):
        return ("sequence", tuple(_tagged(v) for v in value))
    return ("other", repr(value))


def _canonical(attributes: Mapping[str, Any]) -> tuple[Any, ...]:
    """The series identity the SDK uses: the attribute set, whatever its order or types."""
    return tuple(sorted((str(k), _tagged(v)) for k, v in attributes.items()))


_OVERFLOW_KEY: Final = _canonical(_OVERFLOW_ATTRIBUTES)


def _reject(name: str, value: float, bounds: tuple[float, ...] | None) -> None:
    kind = "Histogram" if bounds is not None else "Counter"
    verb = "Record" if bounds is not None else "Add"
    if not math.isfinite(value):
        log.warning(
            "%s amount %s is not finite on %s %s, ignoring measurement.", verb, value, kind, name
        )
    else:
        log.warning("%s amount must be non-negative on %s %s.", verb, kind, name)
