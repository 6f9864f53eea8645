"""A Letta-like live workload for the fake Letta API, with ground truth per step.

``LettaLikeWorkload`` drives a ``FakeLettaData`` from a seeded generator and the data's
clock (``data.clock``; the wall clock unless replaced): runs arrive continuously, and
each part of each step appears when a real Letta server would make it appear. Nothing
runs in the background: before anything is served, the data asks the workload to add the
runs that have arrived by "now", and every answer compares "now" with the step's
timeline (``StepTimeline``). The same seed gives the same runs, ids and timelines however
often the clock is read, so tests drive it with a fake clock.

What it mirrors (issue 23's description of a Letta-like live workload) and the knobs of
``WorkloadConfig`` (times in seconds; a ``Delay`` is ``(low, high)`` for a uniform draw, or
any ``callable(rng) -> float`` for another distribution):

``rate`` (1.0)
    Runs per second, arriving as a Poisson process. Each run clones one of the captured
    Letta 0.16.8 scenarios with fresh ids (tool-calling scenarios get extra tool steps,
    below), so every body served is a real Letta shape.
``failed_runs`` (0.10), ``llm_failed_share`` (1/3)
    The share of runs that fail: their failing step is ``failed`` with Letta's
    ``error_type``/``error_data`` and the run ``failed`` with its error. A
    ``llm_failed_share`` of them failed in the LLM call itself (the captured
    ``stream_fail``: Letta never writes a provider trace for it); the others
    (``fail_http500``, ``fail_malformed``) get one. So about a third of the failed steps
    never get a trace.
``runless`` (0.02)
    The share of runs whose steps have ``run_id`` null (steps Letta records outside a
    run); the run itself is never served, so only ``GET /v1/steps/`` can find them (the
    runs fallback cannot: ground truth says which they are).
``extra_tool_steps`` (1.0)
    Mean (geometric) number of extra tool-call steps inserted before the final step of a
    tool-calling scenario: runs have a few steps (about 2 on average with the defaults).
``step durations``
    Each step lasts what its captured metrics say (``step_ns``: 0.09-1.6 s), else
    ``default_step_seconds`` (0.5); the next step starts ``step_gap`` (0.01-0.1) after it.
``pending_tail`` (0-2)
    The step row is ``pending`` from the step's start until this long after the step
    ended (Letta updates the row after the agent loop has moved on). "Terminal in Letta"
    is the end of this tail; the run turns final with its last step.
``metrics_delay`` (0-0.5)
    ``GET /v1/steps/{id}/metrics`` answers 404 (as Letta does for a step without a
    metrics row) until this long after the step is terminal: the agent loop records the
    metrics right after it finalises the step.
``trace_delay`` (0-6)
    The provider trace (``GET /v1/steps/{id}/trace``) is ``null`` until this long after
    the step is terminal: Letta writes it from a background task.
``no_trace`` (0.03)
    The share of steps with an LLM response whose trace is never written (tracing off
    for a moment, a failed background write): about 3% of steps, on top of the failed
    LLM calls above.
``late_commit`` (0.06), ``late_commit_delay`` (3-10)
    The share of steps committed late: invisible everywhere (listings, by id, their
    run's steps) until 3-10 s after their ``created_at``, which stays the earlier time, so
    a cursor that already passed that time never lists them.

Served bodies keep the captured durations and are re-timed to each step's start: spans
derived from them are short (the captures used a fast fake model) while the timeline
above says when Letta made each part visible; lag is measured against the timeline.

Slow and failing requests are the server's business (``FaultInjector``):
``add_random_faults`` adds a fraction of requests that hang (e.g. 0.3% for 20 s) and the
other fault kinds at small rates.

``LettaLikeWorkload.backlog`` builds the same dynamics frozen at a point in time (the data's
clock stops): a backlog in which some traces are not written yet or never will be,
metrics are missing, steps are pending or not committed yet, runs failed, steps have no
run.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Self

from tests.fakes.letta_api import (
    FakeLettaData,
    FaultInjector,
    FaultRule,
    RecordedRequest,
    StepTimeline,
    TemplateStep,
    TimedStep,
)

__all__ = [
    "FAILED_LLM_CALL",
    "FAILED_WITH_TRACE",
    "FAULT_MIX",
    "SUCCESS_SCENARIOS",
    "Delay",
    "LettaLikeWorkload",
    "RunTruth",
    "StepTruth",
    "WorkloadConfig",
    "add_random_faults",
    "request_kind",
    "requests_by_kind",
]

Delay = tuple[float, float] | Callable[[random.Random], float]

SUCCESS_SCENARIOS: tuple[str, ...] = (
    "plain",
    "tool_two_steps",
    "slow",
    "stream_tool",
    "async_slow_tool",
    "memgpt_plain",
    "memgpt_tool",
)
FAILED_WITH_TRACE: tuple[str, ...] = ("fail_http500", "fail_malformed")
FAILED_LLM_CALL: tuple[str, ...] = ("stream_fail",)  # the LLM call failed: no trace, ever


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """The knobs of the workload; the module docstring says what each one mirrors."""

    rate: float = 1.0
    failed_runs: float = 0.10
    llm_failed_share: float = 1 / 3
    runless: float = 0.02
    extra_tool_steps: float = 1.0
    default_step_seconds: float = 0.5
    step_gap: Delay = (0.01, 0.1)
    pending_tail: Delay = (0.0, 2.0)
    metrics_delay: Delay = (0.0, 0.5)
    trace_delay: Delay = (0.0, 6.0)
    no_trace: float = 0.03
    late_commit: float = 0.06
    late_commit_delay: Delay = (3.0, 10.0)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0 runs per second, got {self.rate!r}")
        for name in ("failed_runs", "llm_failed_share", "runless", "no_trace", "late_commit"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.extra_tool_steps < 0:
            raise ValueError(f"extra_tool_steps must be >= 0, got {self.extra_tool_steps!r}")


@dataclass(frozen=True, slots=True)
class StepTruth:
    """What happened to one step in Letta, whatever the bridge saw."""

    step_id: str
    run_id: str | None  # None: a step without a run
    scenario: str
    status: str  # its final status: success or failed
    created: datetime  # the row exists (pending) from here: its created_at
    visible: datetime  # committed: listed and readable from here (> created: a late commit)
    ended: datetime  # the step's work ended
    terminal: datetime  # the row turned terminal ("terminal in Letta")
    metrics_at: datetime | None  # the metrics row was written (404 before)
    trace_at: datetime | None  # the provider trace was written; None: never

    @property
    def late_commit(self) -> bool:
        return self.visible > self.created

    @property
    def has_trace(self) -> bool:
        return self.trace_at is not None

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def ready(self) -> datetime:
        """The earliest a bridge can see the step terminal: terminal and committed."""
        return max(self.terminal, self.visible)


@dataclass(frozen=True, slots=True)
class RunTruth:
    run_id: str
    scenario: str
    status: str  # final: completed or failed
    created: datetime
    terminal: datetime  # the run turned final
    runless: bool  # its steps carry run_id null and the run is never served
    step_ids: tuple[str, ...]


def _draw(delay: Delay, rng: random.Random) -> float:
    if callable(delay):
        return float(delay(rng))
    low, high = delay
    return rng.uniform(low, high)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


@dataclass(frozen=True, slots=True)
class _StepPlan:
    """One step of a run, its times relative to the run's arrival."""

    tstep: TemplateStep
    created: timedelta
    visible: timedelta
    ended: timedelta
    terminal: timedelta
    metrics: timedelta
    trace: timedelta | None


@dataclass(frozen=True, slots=True)
class _RunPlan:
    scenario: str
    runless: bool
    steps: tuple[_StepPlan, ...]


class LettaLikeWorkload:
    """Runs arriving at ``config.rate`` from ``start()`` on, until ``stop()``."""

    def __init__(
        self, data: FakeLettaData, config: WorkloadConfig | None = None, *, seed: int = 0
    ) -> None:
        self.data = data
        self.config = config or WorkloadConfig()
        self.seed = seed
        # Three streams, so that what a run is does not depend on when it arrived: the
        # same seed gives the same runs live and in a backlog.
        self._rng = random.Random(seed)  # what each run is and how its steps unfold
        self._arrivals = random.Random(seed ^ 0xA441)  # the gaps between arrivals
        self._id_rng = random.Random(seed ^ 0x1D5EED)  # ids
        self._lock = threading.Lock()
        self._next: datetime | None = None
        self._stop: datetime | None = None
        self._steps: dict[str, StepTruth] = {}
        self._runs: dict[str, RunTruth] = {}
        names = SUCCESS_SCENARIOS + FAILED_WITH_TRACE + FAILED_LLM_CALL
        self._templates: dict[str, list[TemplateStep]] = {
            name: data.template_steps(name) for name in names
        }
        data.add_ticker(self._tick)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, at: datetime | None = None) -> None:
        """Runs start arriving after ``at`` (default: the data's clock now)."""
        at = (at or self.data.clock()).astimezone(UTC)
        with self.data.lock:
            self._next = at + self._gap()

    def stop(self, at: datetime | None = None) -> None:
        """No run arrives at or after ``at`` (default: now); runs under way go on."""
        at = (at or self.data.clock()).astimezone(UTC)
        with self.data.lock:
            self._tick(at)
            self._stop = at

    @classmethod
    def backlog(
        cls,
        data: FakeLettaData,
        steps: int,
        config: WorkloadConfig | None = None,
        *,
        seed: int = 0,
        end: datetime | None = None,
    ) -> Self:
        """At least ``steps`` steps of runs that arrived before ``end`` (default: now),
        the last one at ``end``; then the data's clock stops at ``end``: what was in flux
        then (pending rows, traces and metrics not written yet, late commits not visible
        yet, steps not started yet) stays so."""
        workload = cls(data, config, seed=seed)
        plans: list[_RunPlan] = []
        total = 0
        while total < steps:
            plans.append(workload._draw_run())
            total += len(plans[-1].steps)
        gaps = [workload._gap() for _ in plans[1:]]
        frozen = (end or datetime.now(UTC)).astimezone(UTC)
        arrival = frozen - sum(gaps, timedelta(0))
        with data.lock:
            for plan, gap in zip(plans, [*gaps, timedelta(0)], strict=True):
                workload._place(plan, arrival)
                arrival += gap
            workload._stop = frozen
        data.clock = lambda: frozen
        return workload

    # -- ground truth --------------------------------------------------------------------

    def steps(self) -> list[StepTruth]:
        """Every step generated so far (also those not created yet), in arrival order."""
        with self._lock:
            return list(self._steps.values())

    def runs(self) -> list[RunTruth]:
        with self._lock:
            return list(self._runs.values())

    def step(self, step_id: str) -> StepTruth:
        with self._lock:
            return self._steps[step_id]

    def run(self, run_id: str) -> RunTruth:
        with self._lock:
            return self._runs[run_id]

    def mean_steps_per_run(self) -> float:
        """Expected steps per run under ``config`` (for sizing a backlog)."""
        cfg = self.config

        def steps_of(name: str) -> float:
            tsteps = self._templates[name]
            extra = cfg.extra_tool_steps if _repeats_tool_step(tsteps) else 0.0
            return len(tsteps) + extra

        ok = sum(steps_of(n) for n in SUCCESS_SCENARIOS) / len(SUCCESS_SCENARIOS)
        traced = sum(steps_of(n) for n in FAILED_WITH_TRACE) / len(FAILED_WITH_TRACE)
        llm = sum(steps_of(n) for n in FAILED_LLM_CALL) / len(FAILED_LLM_CALL)
        failed = cfg.llm_failed_share * llm + (1 - cfg.llm_failed_share) * traced
        return (1 - cfg.failed_runs) * ok + cfg.failed_runs * failed

    # -- generation ----------------------------------------------------------------------

    def _tick(self, now: datetime) -> None:
        """Add every run that arrived by ``now`` (called under the data lock)."""
        while (
            self._next is not None
            and self._next <= now
            and (self._stop is None or self._next < self._stop)
        ):
            self._place(self._draw_run(), self._next)
            self._next += self._gap()

    def _gap(self) -> timedelta:
        return _seconds(self._arrivals.expovariate(self.config.rate))

    def _scenario(self) -> str:
        rng, cfg = self._rng, self.config
        if rng.random() < cfg.failed_runs:
            pool = FAILED_LLM_CALL if rng.random() < cfg.llm_failed_share else FAILED_WITH_TRACE
            return rng.choice(pool)
        return rng.choice(SUCCESS_SCENARIOS)

    def _shape(self, tsteps: Sequence[TemplateStep]) -> list[TemplateStep]:
        """The scenario's steps, with extra tool-call steps before the final one."""
        if not _repeats_tool_step(tsteps):
            return list(tsteps)
        keep_going = self.config.extra_tool_steps / (1 + self.config.extra_tool_steps)
        extra = 0
        while self._rng.random() < keep_going:
            extra += 1
        return [tsteps[0]] * extra + list(tsteps)

    def _draw_run(self) -> _RunPlan:
        """What the next run is and how its steps unfold, relative to its arrival."""
        rng, cfg = self._rng, self.config
        scenario = self._scenario()
        runless = rng.random() < cfg.runless
        tsteps = self._templates[scenario]
        at = _seconds(max(0.001, tsteps[0].offset_seconds))
        steps: list[_StepPlan] = []
        for tstep in self._shape(tsteps):
            start = at
            ended = start + _seconds(tstep.step_seconds or cfg.default_step_seconds)
            terminal = ended + _seconds(_draw(cfg.pending_tail, rng))
            late = rng.random() < cfg.late_commit
            late_by = _draw(cfg.late_commit_delay, rng)
            visible = start + _seconds(late_by) if late else start
            metrics = terminal + _seconds(_draw(cfg.metrics_delay, rng))
            lost = rng.random() < cfg.no_trace
            trace_by = _draw(cfg.trace_delay, rng)
            trace = terminal + _seconds(trace_by) if tstep.has_trace and not lost else None
            steps.append(_StepPlan(tstep, start, visible, ended, terminal, metrics, trace))
            at = ended + _seconds(_draw(cfg.step_gap, rng))
        return _RunPlan(scenario, runless, tuple(steps))

    def _place(self, plan: _RunPlan, arrival: datetime) -> None:
        """Add the planned run to the data, arriving at ``arrival``."""
        timed = [
            TimedStep(
                p.tstep.index,
                StepTimeline(
                    created=arrival + p.created,
                    visible=arrival + p.visible,
                    ended=arrival + p.ended,
                    terminal=arrival + p.terminal,
                    metrics=arrival + p.metrics,
                    trace=None if p.trace is None else arrival + p.trace,
                ),
            )
            for p in plan.steps
        ]
        terminal_at = max(t.timeline.terminal for t in timed)
        run_id, step_ids = self.data.add_timed_run(
            plan.scenario,
            created_at=arrival,
            steps=timed,
            completed_at=timed[-1].timeline.ended,
            terminal_at=terminal_at,
            runless=plan.runless,
            rng=self._id_rng,
        )
        statuses = [p.tstep.status for p in plan.steps]
        with self._lock:
            for step_id, t, status in zip(step_ids, timed, statuses, strict=True):
                tl = t.timeline
                self._steps[step_id] = StepTruth(
                    step_id=step_id,
                    run_id=None if plan.runless else run_id,
                    scenario=plan.scenario,
                    status=status,
                    created=tl.created,
                    visible=tl.visible,
                    ended=tl.ended,
                    terminal=tl.terminal,
                    metrics_at=tl.metrics,
                    trace_at=tl.trace,
                )
            self._runs[run_id] = RunTruth(
                run_id=run_id,
                scenario=plan.scenario,
                status="failed" if "failed" in statuses else "completed",
                created=arrival,
                terminal=terminal_at,
                runless=plan.runless,
                step_ids=tuple(step_ids),
            )


def _repeats_tool_step(tsteps: Sequence[TemplateStep]) -> bool:
    """A scenario whose first step called a tool and whose run went on: it can repeat."""
    return len(tsteps) > 1 and tsteps[0].tool_call


# ---------------------------------------------------------------------------------------------
# faults and request accounting
# ---------------------------------------------------------------------------------------------

# The fault kinds a live Letta (or Cloudflare in front of it) shows now and then; 401/403/
# 404 are left out: they are answers about the request, not transient faults.
FAULT_MIX: tuple[str, ...] = ("429", "500", "503", "502html", "reset", "malformed", "truncated")
LETTA_API_PATHS = r"^/v1/(steps|runs|agents)"


def add_random_faults(
    faults: FaultInjector,
    *,
    hang_fraction: float = 0.0,
    hang_seconds: float = 20.0,
    fault_fraction: float = 0.0,
    path_regex: str = LETTA_API_PATHS,
) -> list[FaultRule]:
    """Rules that fault a random share of the requests to the Letta API routes.

    ``hang_fraction`` of them hang ``hang_seconds`` and are then answered normally (the
    client's timeout decides whether it waits); ``fault_fraction`` of them get one of
    ``FAULT_MIX`` (429 with Retry-After 1, 500, 503, Cloudflare's HTML 502, a reset
    connection, a malformed or truncated body), equally often. The health route is left
    alone so start-up checks are not what is measured. Draws come from the injector's
    seeded generator (``FaultInjector.reseed``).
    """
    rules = []
    if hang_fraction > 0:
        rules.append(
            faults.add(
                path_regex, "timeout", count=-1, fraction=hang_fraction, seconds=hang_seconds
            )
        )
    if fault_fraction > 0:
        share = fault_fraction / len(FAULT_MIX)
        for kind in FAULT_MIX:
            opts = {"retry_after": 1} if kind == "429" else {}
            rules.append(faults.add(path_regex, kind, count=-1, fraction=share, **opts))
    return rules


def request_kind(path: str) -> str:
    """What a request to the Letta API was for, as the benchmarks count them."""
    parts = [p for p in path.split("/") if p]  # v1, steps, {id}, trace
    if len(parts) < 2 or parts[0] != "v1":
        return "other"
    collection, rest = parts[1], parts[2:]
    if collection == "steps":
        if not rest:
            return "steps listing"
        if len(rest) == 1:
            return "step re-read"
        return {"trace": "trace", "metrics": "metrics", "messages": "messages"}.get(
            rest[1], "other"
        )
    if collection == "runs":
        if not rest:
            return "runs listing"
        if len(rest) == 1:
            return "run by id"
        return "run steps listing" if rest[1] == "steps" else "run parts"
    if collection in ("agents", "health"):
        return collection
    return "other"


def requests_by_kind(requests: Iterable[RecordedRequest]) -> Counter[str]:
    return Counter(request_kind(r.path) for r in requests)
