"""What the demo's OTLP receiver decoded: plain values, so rendering needs no protobuf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    name: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str | None
    name: str
    kind: str  # INTERNAL, CLIENT, ...
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    status_code: str = "UNSET"  # UNSET, OK, ERROR
    status_message: str = ""
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Point:
    """One data point; ``value`` for sums and gauges, ``count``/``sum`` for histograms."""

    attributes: Mapping[str, Any]
    time_ns: int
    value: float | None = None
    count: int | None = None
    sum: float | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str  # sum, gauge, histogram, exponential_histogram, summary
    points: tuple[Point, ...]
