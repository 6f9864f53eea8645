"""Span timestamps for objects that carry no timestamps of their own.

Letta steps have no ``created_at``. The rule, in order of trust:

LLM call window
  1. ``metrics.llm_request_start_ns`` + ``llm_request_ns`` (epoch ns; null in 0.16.8);
  2. otherwise it ends at ``trace.created_at`` (the trace row is written as the
     response arrives) and lasts ``llm_request_ns``, else ``trace.latency_ms``, else
     ``step_ns - tool_execution_ns`` (failed calls have no ``llm_request_ns``: the
     step was the call, retries included).

Step window
  1. ``metrics.step_start_ns`` + ``step_ns``;
  2. otherwise it starts with the LLM call and lasts ``step_ns``;
  3. otherwise (no trace, e.g. a failed streamed step) it starts at ``run.created_at``;
  4. otherwise at the moment the bridge observed the step (``letta.timing.source``
     says ``observed``).

Tool calls run after the LLM call, one after another, sharing ``tool_execution_ns``.

Then every window gets ``end >= start`` (a negative duration becomes zero), and the
step window is widened to contain its LLM and tool windows, so trees nest.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, cast

from letta_otel.mapping.records import RunRecord, StepRecord


# NamedTuples, not frozen dataclasses: as immutable, built about twice as fast (a
# frozen dataclass sets each field through object.__setattr__); several per step.
class Window(NamedTuple):
    start_ns: int
    end_ns: int

    @staticmethod
    def of(start_ns: int, duration_ns: int | None) -> Window:
        return Window(start_ns, start_ns + max(duration_ns or 0, 0))

    def ordered(self) -> Window:
        return self if self.end_ns >= self.start_ns else Window(self.start_ns, self.start_ns)


class StepTiming(NamedTuple):
    step: Window
    llm: Window | None
    tools: tuple[Window, ...]
    source: str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)  # built once: building it is most of to_ns's cost


def duration_ns(delta: timedelta) -> int:
    """A duration in integer nanoseconds, as the pipeline's clocks count."""
    return int(delta.total_seconds() * 1_000_000_000)


def to_ns(moment: datetime) -> int:
    # Integer arithmetic: float timestamps lose sub-microsecond precision.
    return (moment - _EPOCH) // _MICROSECOND * 1_000


def _start(value: int | None) -> int | None:
    """An epoch-ns start time, when it is one (zero or negative means unset)."""
    return value if value is not None and value > 0 else None


def _llm_window(record: StepRecord) -> Window | None:
    metrics, trace = record.metrics, record.trace
    llm_ns = metrics.llm_request_ns if metrics else None
    llm_start = _start(metrics.llm_request_start_ns) if metrics else None
    if llm_start is not None:
        return Window.of(llm_start, llm_ns).ordered()
    if trace and trace.created_at:
        end = to_ns(trace.created_at)
        duration = llm_ns
        if duration is None and trace.latency_ms is not None and math.isfinite(trace.latency_ms):
            duration = int(min(max(trace.latency_ms, 0.0), 1e12) * 1_000_000)
        if duration is None and metrics and metrics.step_ns is not None:
            duration = metrics.step_ns - (metrics.tool_execution_ns or 0)
        return Window(end - max(duration or 0, 0), end)
    return None


def step_timing(record: StepRecord, tool_calls: int) -> StepTiming:
    """The step's time windows (memoised on the record: mapping and metrics share it)."""
    key = ("step_timing", tool_calls)
    cached = record.memo.get(key)
    if cached is None:
        cached = record.memo[key] = _step_timing(record, tool_calls)
    return cast("StepTiming", cached)


def _step_timing(record: StepRecord, tool_calls: int) -> StepTiming:
    metrics = record.metrics
    step_ns = metrics.step_ns if metrics else None
    llm = _llm_window(record)
    run = record.run

    step_start = _start(metrics.step_start_ns) if metrics else None
    if step_start is not None:
        start, source = step_start, "metrics"
    elif llm is not None:
        start, source = llm.start_ns, "provider_trace"
    elif run is not None and run.created_at is not None:
        start, source = to_ns(run.created_at), "run"
    else:
        start, source = record.observed_ns, "observed"
    end = start + max(step_ns or 0, 0)

    if llm is None and metrics and metrics.llm_request_ns:
        # Timed by metrics alone: the call starts with the step.
        llm = Window.of(start, metrics.llm_request_ns)

    tools = _tool_windows(
        llm.end_ns if llm else start,
        metrics.tool_execution_ns if metrics else None,
        tool_calls,
    )
    # Widen the step to contain its LLM and tool windows (plain comparisons: no lists).
    if llm is not None:
        start, end = min(start, llm.start_ns), max(end, llm.end_ns)
    for window in tools:
        end = max(end, window.end_ns)
    return StepTiming(Window(start, end), llm, tools, source)


def _tool_windows(start_ns: int, total_ns: int | None, count: int) -> tuple[Window, ...]:
    if count <= 0:
        return ()
    share = max(total_ns or 0, 0) // count
    if count == 1:  # the usual case: no generator
        return (Window(start_ns, start_ns + share),)
    return tuple(Window(start_ns + i * share, start_ns + i * share + share) for i in range(count))


def run_window(record: RunRecord) -> tuple[Window, str]:
    """``created_at`` → ``completed_at`` (else ``+ total_duration_ns``), end >= start."""
    run = record.run
    if run.created_at is None:
        start, source = record.observed_ns, "observed"
    else:
        start, source = to_ns(run.created_at), "run"
    if run.completed_at is not None:
        end = to_ns(run.completed_at)
    elif run.total_duration_ns is not None:
        end = start + run.total_duration_ns
    else:
        end = start
    return Window(start, end).ordered(), source
