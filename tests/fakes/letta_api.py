"""A fake Letta 0.16.8 REST API on a real loopback HTTP server, built from captured samples.

``FakeLettaData`` (here) holds agents, runs, steps, traces, metrics and messages: the JSON
captured from a real server, re-identified and re-timed. ``FakeLettaServer`` (defined in
``_letta_routes``, re-exported here) serves it over HTTP/1.1 on 127.0.0.1 with fault injection
and a request log.

Steps are changed by hand (``set_pending``, ``hide``, ``withhold_trace``, ...) or follow a
``StepTimeline`` (``add_timed_run``): then what is served depends on ``FakeLettaData.clock``.
``tests.fakes.workload`` builds a Letta-like live workload on the latter.
"""

from __future__ import annotations

import bisect
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from tests.fakes._letta_routes import (
    FakeLettaServer,
    FaultInjector,
    FaultKind,
    FaultRule,
    NotFoundError,
    RecordedRequest,
    RunsPaging,
    StepFilter,
    StepsRoute,
)

__all__ = [
    "DEFAULT_FIXTURES_DIR",
    "SCENARIO_NAMES",
    "FakeLettaData",
    "FakeLettaServer",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "RecordedRequest",
    "RunsPaging",
    "StepTimeline",
    "StepsRoute",
    "TemplateStep",
    "TimedStep",
]

DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "letta-samples"
SCENARIO_NAMES: tuple[str, ...] = (
    "plain",
    "tool_two_steps",
    "slow",
    "fail_http500",
    "fail_malformed",
    "stream_tool",
    "stream_fail",
    "async_slow_tool",
    "memgpt_plain",
    "memgpt_tool",
)
AGENT_NAMES = {"letta_v1_agent": "otel-demo-v1", "memgpt_v2_agent": "otel-demo-memgpt"}

# Ids the clones get fresh values for: tool call ids, completion ids, uuids, 32-hex trace ids.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TOKEN_RE = re.compile(rf"call_[0-9a-f]{{24}}|chatcmpl-[0-9a-f]{{24}}|{_UUID}|\b[0-9a-f]{{32}}\b")
_OWN_ID_RE = re.compile(rf"(?:run|step|message|provider_trace)-({_UUID})")
_OTID_RE = re.compile(rf'"otid": "({_UUID})"')
_CALL_RE = re.compile(r"call_[0-9a-f]{24}|chatcmpl-[0-9a-f]{24}")


# ---------------------------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------------------------


def parse_ts(value: str) -> datetime:
    """Parse an ISO timestamp like Letta does (py3.11 fromisoformat); naive means UTC."""
    dt = datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _fmt_z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fmt_naive(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _fmt_msg_date(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


# ---------------------------------------------------------------------------------------------
# templates: pre-serialised sample JSON with id "slots"
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    """JSON text split around the tokens to re-identify; render() fills them from a mapping."""

    parts: tuple[str, ...]
    slots: tuple[str, ...]

    @classmethod
    def compile(cls, text: str, remap: frozenset[str]) -> _Text:
        parts: list[str] = []
        slots: list[str] = []
        pos = 0
        for m in _TOKEN_RE.finditer(text):
            if m.group(0) in remap:
                parts.append(text[pos : m.start()])
                slots.append(m.group(0))
                pos = m.end()
        parts.append(text[pos:])
        return cls(tuple(parts), tuple(slots))

    def render(self, mapping: Mapping[str, str]) -> str:
        if not self.slots:
            return self.parts[0]
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(mapping.get(slot, slot))
            out.append(part)
        return "".join(out)


@dataclass(frozen=True, slots=True)
class _LazyDoc:
    """A big document (trace, message list) rendered only when served."""

    text: _Text
    kind: Literal["trace", "messages"]
    mapping: Mapping[str, str]
    shift: timedelta
    runless: bool = False  # served with run_id null (a step without a run)

    def render(self) -> Any:
        obj = json.loads(self.text.render(self.mapping))
        if self.runless and obj is not None:
            for item in [obj] if self.kind == "trace" else obj:
                if "run_id" in item:
                    item["run_id"] = None
        if not self.shift or obj is None:
            return obj
        if self.kind == "trace":
            for key in ("created_at", "updated_at"):
                if isinstance(obj.get(key), str):
                    obj[key] = _fmt_z(parse_ts(obj[key]) + self.shift)
            resp = obj.get("response_json")
            if isinstance(resp, dict) and isinstance(resp.get("created"), int):
                resp["created"] += int(self.shift.total_seconds())
        else:
            for msg in obj:
                if isinstance(msg.get("date"), str):
                    msg["date"] = _fmt_msg_date(parse_ts(msg["date"]) + self.shift)
        return obj


@dataclass(frozen=True, slots=True)
class _StepTpl:
    step: _Text
    metrics: _Text
    trace: _Text | None
    messages: _Text
    created_at: datetime  # internal created_at in the captured data
    offset: timedelta  # created_at minus the run's created_at
    local_tokens: tuple[str, ...]  # tokens owned by this step (re-drawn by add_step), sorted


@dataclass(frozen=True, slots=True)
class _ScenarioTpl:
    name: str
    run: _Text
    run_messages: _Text
    usage: _Text
    run_metrics: _Text
    created_at: datetime
    span: timedelta  # created_at .. latest of completed_at / last step
    steps: tuple[_StepTpl, ...]
    tokens: tuple[str, ...]  # sorted, so fresh ids are drawn in a stable order


@dataclass(frozen=True, slots=True)
class _Samples:
    scenarios: Mapping[str, _ScenarioTpl]
    agents: Mapping[str, dict[str, Any]]  # agent id -> agent JSON
    newest_end: datetime  # when the newest captured run ended


def _load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _scan_tokens(texts: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for text in texts:
        found.update(_OWN_ID_RE.findall(text))
        found.update(_OTID_RE.findall(text))
        found.update(_CALL_RE.findall(text))
    return found


def _step_start(trace: Any, metrics: Mapping[str, Any]) -> datetime | None:
    llm_ns = metrics.get("llm_request_ns")
    if isinstance(trace, dict) and isinstance(llm_ns, int):
        return parse_ts(trace["created_at"]) - timedelta(microseconds=llm_ns // 1000)
    return None


def _load_scenario(
    sdir: Path, settled: Mapping[str, dict[str, Any]]
) -> tuple[_ScenarioTpl, str, str]:
    """Returns the template plus (agent_id, agent_type) of the scenario.

    ``settled`` holds the later GET /v1/runs/ view of runs (total_duration_ns filled in).
    """
    record = _load_json(sdir / "scenario_record.json")
    run_file = next(
        p for p in sdir.glob("run_run-*.json") if re.fullmatch(rf"run_run-{_UUID}\.json", p.name)
    )
    stem = run_file.stem
    run = _load_json(run_file)
    run = settled.get(run["id"], run)
    run_messages = _load_json(sdir / f"{stem}_messages.json")
    usage = _load_json(sdir / f"{stem}_usage.json")
    run_metrics = _load_json(sdir / f"{stem}_metrics.json")
    run_created = parse_ts(run["created_at"])

    raw_steps: list[tuple[Any, Any, Any, Any]] = []
    for i, step_id in enumerate(record["step_ids"]):
        base = sdir / f"step{i}_{step_id}"
        raw_steps.append(
            (
                _load_json(base.with_name(base.name + ".json")),
                _load_json(base.with_name(base.name + "_metrics.json")),
                _load_json(base.with_name(base.name + "_trace.json")),
                _load_json(base.with_name(base.name + "_messages.json")),
            )
        )

    run_level: set[str] = {run["id"].removeprefix("run-")}
    run_level.update(s["trace_id"] for s, _, _, _ in raw_steps if s["trace_id"])
    locals_: list[set[str]] = []
    for step, metrics, trace, messages in raw_steps:
        texts = [json.dumps(step), json.dumps(metrics), json.dumps(messages)]
        if isinstance(trace, dict):
            texts.append(json.dumps({k: v for k, v in trace.items() if k != "request_json"}))
        locals_.append(_scan_tokens(texts) - run_level)
    tokens = frozenset(run_level.union(*locals_, _scan_tokens([json.dumps(run_messages)])))

    steps: list[_StepTpl] = []
    prev: datetime | None = None
    for i, ((step, metrics, trace, messages), local) in enumerate(
        zip(raw_steps, locals_, strict=True)
    ):
        start = _step_start(trace, metrics) or run_created + timedelta(milliseconds=i + 1)
        if prev is not None and start <= prev:
            start = prev + timedelta(microseconds=1)
        prev = start
        steps.append(
            _StepTpl(
                step=_Text.compile(json.dumps(step), tokens),
                metrics=_Text.compile(json.dumps(metrics), tokens),
                trace=_Text.compile(json.dumps(trace), tokens) if trace is not None else None,
                messages=_Text.compile(json.dumps(messages), tokens),
                created_at=start,
                offset=start - run_created,
                local_tokens=tuple(sorted(local)),
            )
        )
    end = parse_ts(run["completed_at"]) if run["completed_at"] else run_created
    if prev is not None:
        end = max(end, prev)
    tpl = _ScenarioTpl(
        name=sdir.name,
        run=_Text.compile(json.dumps(run), tokens),
        run_messages=_Text.compile(json.dumps(run_messages), tokens),
        usage=_Text.compile(json.dumps(usage), tokens),
        run_metrics=_Text.compile(json.dumps(run_metrics), tokens),
        created_at=run_created,
        span=end - run_created,
        steps=tuple(steps),
        tokens=tuple(sorted(tokens)),
    )
    return tpl, record["agent_id"], record["agent_type"]


@lru_cache(maxsize=4)
def _load_samples(fixtures_dir: Path) -> _Samples:
    scenarios: dict[str, _ScenarioTpl] = {}
    agent_types: dict[str, str] = {}
    agent_tags: dict[str, list[str]] = {}
    settled = {r["id"]: r for r in _load_json(fixtures_dir / "runs_list.json")}
    for name in SCENARIO_NAMES:
        tpl, agent_id, agent_type = _load_scenario(fixtures_dir / "scenarios" / name, settled)
        scenarios[name] = tpl
        agent_types[agent_id] = agent_type
        for st in tpl.steps:
            if st.trace is not None:
                trace = json.loads(st.trace.render({}))
                agent_tags[trace["agent_id"]] = trace["agent_tags"]
    base_agent = _load_json(fixtures_dir / "agent_v1.json")
    agents: dict[str, dict[str, Any]] = {}
    for agent_id, agent_type in agent_types.items():
        agent = json.loads(json.dumps(base_agent))
        agent.update(id=agent_id, name=AGENT_NAMES[agent_type], agent_type=agent_type)
        agent["tags"] = agent_tags.get(agent_id, agent["tags"])
        if isinstance(agent.get("memory"), dict):
            agent["memory"]["agent_type"] = agent_type
        agents[agent_id] = agent
    newest = max(t.created_at + t.span for t in scenarios.values())
    return _Samples(scenarios, agents, newest)


# ---------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------

_PENDING_STEP = {
    "status": "pending",
    "completion_tokens": 0,
    "prompt_tokens": 0,
    "total_tokens": 0,
    "stop_reason": None,
    "completion_tokens_details": None,
    "prompt_tokens_details": None,
    "error_type": None,
    "error_data": None,
}
_NULL_METRICS = {"step_ns": None, "llm_request_ns": None, "tool_execution_ns": None}


@dataclass(frozen=True, slots=True)
class StepTimeline:
    """When each part of a step exists in Letta (UTC). A step with a timeline is served
    by comparing these with the data's ``clock``: invisible (listings, by id, its run's
    steps) before ``visible``, ``pending`` before ``terminal``, metrics 404 before
    ``metrics`` and the provider trace ``null`` before ``trace`` (``None``: never).
    ``ended`` (the step's work ended) is not served: it is ground truth for harnesses.
    """

    created: datetime
    visible: datetime
    ended: datetime
    terminal: datetime
    metrics: datetime | None
    trace: datetime | None


@dataclass(frozen=True, slots=True)
class TimedStep:
    """One step of ``FakeLettaData.add_timed_run``: which of the scenario's captured steps
    it clones (``like``, an index; a step cloned twice gets fresh ids the second time)
    and its timeline."""

    like: int
    timeline: StepTimeline


@dataclass(frozen=True, slots=True)
class TemplateStep:
    """What a scenario's captured step looks like, for workload generators."""

    index: int
    status: str
    has_trace: bool
    step_seconds: float | None  # the captured metrics' step_ns
    offset_seconds: float  # its start after the run's created_at
    tool_call: bool  # it asked for a tool (the run goes on after it)


@dataclass(slots=True)
class _StepRec:
    id: str
    run_id: str
    created_at: datetime
    final: dict[str, Any]
    metrics: dict[str, Any]
    trace: _LazyDoc | None
    messages: _LazyDoc
    tpl: _StepTpl
    mapping: Mapping[str, str]
    pending: bool = False
    hidden: bool = False
    trace_hold: int = 0  # fetches left that see null; -1 = until released
    metrics_hold: int = 0
    timeline: StepTimeline | None = None

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.created_at, self.id)

    def is_hidden(self, now: datetime) -> bool:
        return self.hidden or (self.timeline is not None and now < self.timeline.visible)

    def is_pending(self, now: datetime) -> bool:
        return self.pending or (self.timeline is not None and now < self.timeline.terminal)

    def served(self, now: datetime) -> dict[str, Any]:
        return {**self.final, **_PENDING_STEP} if self.is_pending(now) else dict(self.final)


@dataclass(slots=True)
class _RunRec:
    id: str
    created_at: datetime
    final: dict[str, Any]
    messages: _LazyDoc
    usage: dict[str, Any]
    metrics: dict[str, Any]
    tpl: _ScenarioTpl
    mapping: Mapping[str, str]
    step_ids: list[str] = field(default_factory=list)
    project_id: str | None = None
    pending_status: str = "running"
    hidden: bool = False
    terminal_at: datetime | None = None  # timed runs: in progress until then

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.created_at, self.id)

    def is_hidden(self, now: datetime) -> bool:
        """Hidden, or a timed run that has not started by ``now``."""
        return self.hidden or (self.terminal_at is not None and now < self.created_at)


class _SortedIndex:
    """Records sorted by (created_at, id), rebuilt lazily after inserts."""

    def __init__(self) -> None:
        self.recs: list[Any] = []
        self.keys: list[tuple[datetime, str]] = []
        self.times: list[datetime] = []
        self.dirty = False

    def rebuild(self, recs: Iterable[Any]) -> None:
        self.recs = sorted(recs, key=lambda r: r.key)
        self.keys = [r.key for r in self.recs]
        self.times = [k[0] for k in self.keys]
        self.dirty = False


def _fresh_token(tok: str, rng: random.Random) -> str:
    if tok.startswith(("call_", "chatcmpl-")):
        prefix = tok[: tok.index("_" if tok.startswith("call_") else "-") + 1]
        return f"{prefix}{rng.getrandbits(96):024x}"
    if len(tok) == 32:
        return f"{rng.getrandbits(128):032x}"
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _page(
    recs: Sequence[Any],
    keys: Sequence[tuple[datetime, str]],
    times: Sequence[datetime],
    *,
    order: str,
    limit: int,
    after_key: tuple[datetime, str] | None,
    before_key: tuple[datetime, str] | None,
    start: datetime | None,
    end: datetime | None,
    accept: Any,
) -> list[Any]:
    """Keyset page over records sorted asc; cursors follow the order (after = next page)."""
    lo = 0
    hi = len(recs)
    low_key, high_key = (after_key, before_key) if order == "asc" else (before_key, after_key)
    if low_key is not None:
        lo = max(lo, bisect.bisect_right(keys, low_key))
    if high_key is not None:
        hi = min(hi, bisect.bisect_left(keys, high_key))
    if start is not None:
        lo = max(lo, bisect.bisect_right(times, start))
    if end is not None:
        hi = min(hi, bisect.bisect_left(times, end))
    out: list[Any] = []
    if limit <= 0 or lo >= hi:
        return out
    idx = range(lo, hi) if order == "asc" else range(hi - 1, lo - 1, -1)
    for i in idx:
        rec = recs[i]
        if accept(rec):
            out.append(rec)
            if len(out) >= limit:
                break
    return out


class FakeLettaData:
    """Thread-safe in-memory Letta state, served as the real 0.16.8 server would."""

    def __init__(self, samples: _Samples, *, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._samples = samples
        self._rng = random.Random(seed ^ 0x5EED)
        self._agents: dict[str, dict[str, Any]] = {}
        self._steps: dict[str, _StepRec] = {}
        self._runs: dict[str, _RunRec] = {}
        self._step_index = _SortedIndex()
        self._run_index = _SortedIndex()
        self.shift: timedelta = timedelta(0)  # how far sample timestamps were moved
        # What "now" is for steps with a timeline (replace it for a fake or frozen clock).
        self.clock: Callable[[], datetime] = _utcnow
        self._tickers: list[Callable[[datetime], None]] = []

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def empty(cls, fixtures_dir: Path | None = None, *, seed: int = 0) -> Self:
        """Only the two sample agents; add runs with ``add_run``."""
        data = cls(_load_samples((fixtures_dir or DEFAULT_FIXTURES_DIR).resolve()), seed=seed)
        data._add_agents(datetime.now(UTC) - timedelta(minutes=1) - data._samples.newest_end)
        return data

    @classmethod
    def from_samples(
        cls,
        fixtures_dir: Path | None = None,
        *,
        shift_to: datetime | None = None,
        shift: bool = True,
    ) -> Self:
        """The 10 captured scenarios (10 runs, 14 steps, 2 agents) with their real ids.

        Every timestamp moves so that the newest run ends at ``shift_to`` (default: now - 1 min);
        ``shift=False`` keeps the captured 2026-11-21 times.
        """
        data = cls(_load_samples((fixtures_dir or DEFAULT_FIXTURES_DIR).resolve()))
        tpls = list(data._samples.scenarios.values())
        target = shift_to if shift_to is not None else datetime.now(UTC) - timedelta(minutes=1)
        delta = (target.astimezone(UTC) - data._samples.newest_end) if shift else timedelta(0)
        data.shift = delta
        data._add_agents(delta)
        with data._lock:
            for tpl in tpls:
                data._instantiate(tpl, {}, delta, project_id=None)
        return data

    @classmethod
    def generate(
        cls,
        n_runs: int,
        *,
        seed: int = 0,
        end: datetime | None = None,
        spacing: timedelta = timedelta(milliseconds=200),
        mix: Literal["round_robin", "random"] = "round_robin",
        scenarios: Sequence[str] | None = None,
        project_id: str | None = None,
        fixtures_dir: Path | None = None,
    ) -> Self:
        """``n_runs`` clones of the scenario templates with fresh deterministic ids.

        Run i starts at ``end - span - (n_runs-1-i) * spacing`` so every run has ended by
        ``end`` (default now - 1 min). ``mix="random"`` draws scenarios with ``seed``.
        """
        data = cls(_load_samples((fixtures_dir or DEFAULT_FIXTURES_DIR).resolve()), seed=seed)
        names = list(scenarios or SCENARIO_NAMES)
        tpls = [data._samples.scenarios[n] for n in names]
        end_at = end.astimezone(UTC) if end else datetime.now(UTC) - timedelta(minutes=1)
        first = end_at - spacing * max(n_runs, 1) - max(t.span for t in tpls)
        data._add_agents(first - timedelta(minutes=1) - data._samples.newest_end)
        pick = random.Random(seed)
        with data._lock:
            for i in range(n_runs):
                tpl = pick.choice(tpls) if mix == "random" else tpls[i % len(tpls)]
                created = end_at - tpl.span - spacing * (n_runs - 1 - i)
                mapping = {tok: _fresh_token(tok, data._rng) for tok in tpl.tokens}
                data._instantiate(tpl, mapping, created - tpl.created_at, project_id=project_id)
        return data

    def _add_agents(self, delta: timedelta) -> None:
        for agent_id, agent in self._samples.agents.items():
            copy_ = json.loads(json.dumps(agent))
            for key in ("created_at", "updated_at"):
                if isinstance(copy_.get(key), str):
                    copy_[key] = _fmt_z(parse_ts(copy_[key]) + delta)
            self._agents[agent_id] = copy_

    def _instantiate(
        self,
        tpl: _ScenarioTpl,
        mapping: Mapping[str, str],
        delta: timedelta,
        *,
        project_id: str | None,
        pending: bool = False,
        hidden: bool = False,
        with_steps: bool = True,
    ) -> _RunRec:
        run = json.loads(tpl.run.render(mapping))
        created = tpl.created_at + delta
        run["created_at"] = _fmt_z(created)
        if run.get("completed_at"):
            run["completed_at"] = _fmt_naive(parse_ts(run["completed_at"]) + delta)
        metrics = json.loads(tpl.run_metrics.render(mapping))
        if isinstance(metrics.get("run_start_ns"), int):
            metrics["run_start_ns"] += _ns(delta)
        rec = _RunRec(
            id=run["id"],
            created_at=created,
            final=run,
            messages=_LazyDoc(tpl.run_messages, "messages", mapping, delta),
            usage=json.loads(tpl.usage.render(mapping)),
            metrics=metrics,
            tpl=tpl,
            mapping=mapping,
            hidden=hidden,
        )
        if rec.id in self._runs:
            raise ValueError(f"duplicate run id {rec.id}")
        self._runs[rec.id] = rec
        self._run_index.dirty = True
        for stpl in tpl.steps if with_steps else ():
            self._add_step_rec(
                rec,
                stpl=stpl,
                mapping=mapping,
                created_at=created + stpl.offset,
                pending=pending,
                hidden=hidden,
            )
        if project_id is not None:
            self._set_project(rec, project_id)
        return rec

    def _add_step_rec(
        self,
        run: _RunRec,
        *,
        stpl: _StepTpl,
        mapping: Mapping[str, str],
        created_at: datetime,
        pending: bool,
        hidden: bool,
    ) -> _StepRec:
        delta = created_at - stpl.created_at
        step = json.loads(stpl.step.render(mapping))
        step["run_id"] = run.id
        step["project_id"] = run.project_id
        metrics = json.loads(stpl.metrics.render(mapping))
        metrics["run_id"] = run.id
        metrics["project_id"] = run.project_id
        rec = _StepRec(
            id=step["id"],
            run_id=run.id,
            created_at=created_at,
            final=step,
            metrics=metrics,
            trace=_LazyDoc(stpl.trace, "trace", mapping, delta) if stpl.trace else None,
            messages=_LazyDoc(stpl.messages, "messages", mapping, delta),
            tpl=stpl,
            mapping=mapping,
            pending=pending,
            hidden=hidden,
        )
        if rec.id in self._steps:
            raise ValueError(f"duplicate step id {rec.id}")
        self._steps[rec.id] = rec
        run.step_ids.append(rec.id)
        self._step_index.dirty = True
        return rec

    @staticmethod
    def _set_project_on(rec: _StepRec, project_id: str | None) -> None:
        rec.final["project_id"] = project_id
        rec.metrics["project_id"] = project_id

    def _set_project(self, run: _RunRec, project_id: str | None) -> None:
        run.project_id = project_id
        run.metrics["project_id"] = project_id
        for sid in run.step_ids:
            self._set_project_on(self._steps[sid], project_id)

    # -- time-driven data (workload generators) --------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """The data's (re-entrant) lock: hold it to change what is served atomically."""
        return self._lock

    def now(self) -> datetime:
        """The clock's time, after every ticker has caught up to it."""
        with self._lock:
            now = self.clock()
            for tick in self._tickers:
                tick(now)
            return now

    def add_ticker(self, tick: Callable[[datetime], None]) -> None:
        """Call ``tick(now)`` (under the data lock) before anything is served or read, so
        a generator can add what has happened by ``now`` (e.g. runs that arrived)."""
        with self._lock:
            self._tickers.append(tick)

    def template_steps(self, scenario: str) -> list[TemplateStep]:
        """The captured steps of a scenario, as ``add_timed_run`` can clone them."""
        tpl = self._samples.scenarios[scenario]
        out = []
        for i, stpl in enumerate(tpl.steps):
            step = json.loads(stpl.step.render({}))
            metrics = json.loads(stpl.metrics.render({}))
            step_ns = metrics.get("step_ns")
            out.append(
                TemplateStep(
                    index=i,
                    status=step["status"],
                    has_trace=stpl.trace is not None,
                    step_seconds=step_ns / 1e9 if isinstance(step_ns, int) else None,
                    offset_seconds=stpl.offset.total_seconds(),
                    tool_call=step["stop_reason"] is None and step["status"] == "success",
                )
            )
        return out

    def add_timed_run(
        self,
        scenario: str,
        *,
        created_at: datetime,
        steps: Sequence[TimedStep],
        completed_at: datetime,
        terminal_at: datetime,
        runless: bool = False,
        rng: random.Random | None = None,
    ) -> tuple[str, list[str]]:
        """A run of ``scenario`` whose steps follow their timelines (see ``StepTimeline``).

        The run is listed from ``created_at``, ``running`` until ``terminal_at``, then
        final with ``completed_at``. ``runless``: its steps (and their traces, metrics and
        messages) carry ``run_id`` null and the run itself is never served, like steps
        Letta records outside a run. Ids are drawn from ``rng`` (default: the data's).
        Returns (run id, step ids).
        """
        tpl = self._samples.scenarios[scenario]
        draw = rng or self._rng
        mapping = {tok: _fresh_token(tok, draw) for tok in tpl.tokens}
        created = created_at.astimezone(UTC)
        with self._lock:
            run = self._instantiate(
                tpl, mapping, created - tpl.created_at, project_id=None, with_steps=False
            )
            if isinstance(run.final.get("completed_at"), str):
                run.final["completed_at"] = _fmt_naive(completed_at)
            if isinstance(run.final.get("total_duration_ns"), int):
                run.final["total_duration_ns"] = _ns(completed_at - created)
            run.terminal_at = terminal_at.astimezone(UTC)
            run.hidden = runless
            used: set[int] = set()
            for timed in steps:
                stpl = tpl.steps[timed.like]
                step_mapping: Mapping[str, str] = mapping
                if timed.like in used:  # a repeated step: its own ids
                    fresh = {tok: _fresh_token(tok, draw) for tok in stpl.local_tokens}
                    step_mapping = {**mapping, **fresh}
                used.add(timed.like)
                rec = self._add_step_rec(
                    run,
                    stpl=stpl,
                    mapping=step_mapping,
                    created_at=timed.timeline.created.astimezone(UTC),
                    pending=False,
                    hidden=False,
                )
                rec.timeline = timed.timeline
                if runless:
                    rec.final["run_id"] = None
                    rec.metrics["run_id"] = None
                    if rec.trace is not None:
                        rec.trace = _LazyDoc(
                            rec.trace.text, "trace", rec.mapping, rec.trace.shift, runless=True
                        )
                    rec.messages = _LazyDoc(
                        rec.messages.text,
                        "messages",
                        rec.mapping,
                        rec.messages.shift,
                        runless=True,
                    )
            return run.id, list(run.step_ids)

    # -- mutators ----------------------------------------------------------------------------

    def add_run(
        self,
        scenario: str = "plain",
        *,
        created_at: datetime | None = None,
        pending: bool = False,
        hidden: bool = False,
        project_id: str | None = None,
    ) -> str:
        """Clone a scenario as a new run (fresh ids); returns the run id.

        ``created_at`` defaults to "just finished now" (or "started now" when pending).
        ``pending``: the run is in progress, its first step pending and the later ones not
        started yet (hidden); drive it with ``advance``. ``hidden``: all its steps hidden.
        """
        tpl = self._samples.scenarios[scenario]
        with self._lock:
            now = datetime.now(UTC)
            created = created_at.astimezone(UTC) if created_at else now - tpl.span
            if pending and created_at is None:
                created = now - tpl.steps[0].offset
            mapping = {tok: _fresh_token(tok, self._rng) for tok in tpl.tokens}
            rec = self._instantiate(
                tpl, mapping, created - tpl.created_at, project_id=project_id, hidden=hidden
            )
            if pending:
                first, *later = rec.step_ids
                self._steps[first].pending = True
                for sid in later:
                    self._steps[sid].hidden = True
            return rec.id

    def advance(self, run_id: str) -> str | None:
        """One lifecycle move of an in-progress run: complete its pending step, then start the
        next not-yet-started (hidden) one, re-stamped to now and pending. Returns the step now
        pending, or None once the run is final (its completed_at moved to now if earlier).
        """
        with self._lock:
            run = self._runs[run_id]
            recs = [self._steps[s] for s in run.step_ids]
            prev: datetime | None = None
            for rec in recs:
                if rec.pending:
                    rec.pending = False
                    prev = rec.created_at
                    break
            nxt = next((r for r in recs if r.hidden), None)
            now = datetime.now(UTC)
            if nxt is None:
                done = run.final.get("completed_at")
                if isinstance(done, str) and parse_ts(done) < now:
                    run.final["completed_at"] = _fmt_naive(now)
                return None
            when = max(now, nxt.created_at, (prev or now) + timedelta(microseconds=1))
            self._restamp(nxt, when)
            nxt.hidden = False
            nxt.pending = True
            return nxt.id

    def _restamp(self, rec: _StepRec, when: datetime) -> None:
        delta = when - rec.tpl.created_at
        rec.created_at = when
        if rec.trace is not None:
            rec.trace = _LazyDoc(rec.trace.text, "trace", rec.mapping, delta)
        rec.messages = _LazyDoc(rec.messages.text, "messages", rec.mapping, delta)
        self._step_index.dirty = True

    def add_step(
        self,
        run_id: str,
        *,
        like: str | None = None,
        created_at: datetime | None = None,
        pending: bool = True,
        hidden: bool = False,
    ) -> str:
        """Append a clone of step ``like`` (default: the run's last step) to a run.

        The clone gets fresh step/message/trace/tool-call ids and shares the run's trace_id.
        ``created_at`` defaults to max(now, last step + 1 ms). Returns the new step id.
        """
        with self._lock:
            run = self._runs[run_id]
            src = self._steps[like or run.step_ids[-1]]
            if src.run_id != run_id:
                raise ValueError(f"step {src.id} is not a step of run {run_id}")
            mapping = dict(src.mapping)
            for tok in src.tpl.local_tokens:
                mapping[tok] = _fresh_token(tok, self._rng)
            last = max(self._steps[s].created_at for s in run.step_ids)
            when = (
                created_at.astimezone(UTC)
                if created_at
                else max(datetime.now(UTC), last + timedelta(milliseconds=1))
            )
            rec = self._add_step_rec(
                run, stpl=src.tpl, mapping=mapping, created_at=when, pending=pending, hidden=hidden
            )
            return rec.id

    def set_pending(
        self, step_id: str, *, run_status: Literal["created", "running"] = "running"
    ) -> None:
        """Serve the step's pending shape; its run turns ``run_status`` with nulls."""
        with self._lock:
            rec = self._steps[step_id]
            rec.pending = True
            self._runs[rec.run_id].pending_status = run_status

    def complete(self, step_id: str) -> None:
        """Back to the final shape; the run is final once none of its steps is pending."""
        with self._lock:
            self._steps[step_id].pending = False

    def hide(self, step_id: str) -> None:
        """Make the step invisible everywhere (a late commit); its created_at stays old."""
        with self._lock:
            self._steps[step_id].hidden = True

    def reveal(self, step_id: str) -> None:
        with self._lock:
            self._steps[step_id].hidden = False

    def hide_run(self, run_id: str) -> None:
        """Hide a run from GET /v1/runs/ and direct reads (its steps are untouched)."""
        with self._lock:
            self._runs[run_id].hidden = True

    def reveal_run(self, run_id: str) -> None:
        with self._lock:
            self._runs[run_id].hidden = False

    def withhold_trace(self, step_id: str, times: int | None = None) -> None:
        """Serve a null trace for the next ``times`` fetches (None: until release_trace)."""
        with self._lock:
            self._steps[step_id].trace_hold = -1 if times is None else times

    def release_trace(self, step_id: str) -> None:
        with self._lock:
            self._steps[step_id].trace_hold = 0

    def withhold_metrics(self, step_id: str, times: int | None = None) -> None:
        """Serve all-null metrics (200) for the next ``times`` fetches (None: until released)."""
        with self._lock:
            self._steps[step_id].metrics_hold = -1 if times is None else times

    def release_metrics(self, step_id: str) -> None:
        with self._lock:
            self._steps[step_id].metrics_hold = 0

    def set_project_id(self, run_id: str, project_id: str | None) -> None:
        """Set project_id on a run's steps, step metrics and run metrics."""
        with self._lock:
            self._set_project(self._runs[run_id], project_id)

    def patch_step(self, step_id: str, **fields: Any) -> None:
        """Overwrite fields of the step's final JSON (e.g. feedback="positive", tags=[...])."""
        with self._lock:
            self._steps[step_id].final.update(fields)

    # -- accessors ---------------------------------------------------------------------------

    def step(self, step_id: str) -> dict[str, Any]:
        """The step as currently served (a copy; works for hidden steps too)."""
        with self._lock:
            return _copy(self._steps[step_id].served(self.now()))

    def run(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return _copy(self._served_run(self._runs[run_id], self.now()))

    def steps(self, *, include_hidden: bool = False) -> list[dict[str, Any]]:
        """All steps, oldest first (internal (created_at, id) order)."""
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            recs = self._step_index.recs
            return [_copy(r.served(now)) for r in recs if include_hidden or not r.is_hidden(now)]

    def runs(self, *, include_hidden: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            recs = self._run_index.recs
            return [
                _copy(self._served_run(r, now))
                for r in recs
                if include_hidden or not r.is_hidden(now)
            ]

    def step_ids(self, *, include_hidden: bool = False) -> list[str]:
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            return [r.id for r in self._step_index.recs if include_hidden or not r.is_hidden(now)]

    def run_ids(self) -> list[str]:
        with self._lock:
            self._ensure_sorted()
            return [r.id for r in self._run_index.recs]

    def run_step_ids(self, run_id: str) -> list[str]:
        with self._lock:
            return sorted(self._runs[run_id].step_ids, key=lambda s: self._steps[s].key)

    def expected_terminal_step_ids(self) -> list[str]:
        """Ids of visible, non-pending steps, oldest first."""
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            return [
                r.id
                for r in self._step_index.recs
                if not r.is_hidden(now) and not r.is_pending(now)
            ]

    def created_at(self, obj_id: str) -> datetime:
        """Internal created_at of a step or run."""
        with self._lock:
            rec = self._steps.get(obj_id) or self._runs[obj_id]
            return rec.created_at

    def trace(self, step_id: str) -> Any:
        """The final provider trace (ignores pending/withhold; None for stream_fail)."""
        with self._lock:
            doc = self._steps[step_id].trace
        return doc.render() if doc else None

    def metrics(self, step_id: str) -> dict[str, Any]:
        with self._lock:
            return _copy(self._steps[step_id].metrics)

    def messages(self, step_id: str) -> list[Any]:
        with self._lock:
            doc = self._steps[step_id].messages
        result: list[Any] = doc.render()
        return result

    def agents(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_copy(a) for a in self._agents.values()]

    def __len__(self) -> int:
        return len(self._steps)

    # -- serving (used by the routes) --------------------------------------------------------

    def _ensure_sorted(self) -> None:
        if self._step_index.dirty:
            self._step_index.rebuild(self._steps.values())
        if self._run_index.dirty:
            self._run_index.rebuild(self._runs.values())

    def _served_run(self, rec: _RunRec, now: datetime) -> dict[str, Any]:
        running = rec.terminal_at is not None and now < rec.terminal_at
        if not running and not any(self._steps[s].is_pending(now) for s in rec.step_ids):
            return dict(rec.final)
        run = dict(rec.final)
        run.update(
            status=rec.pending_status,
            completed_at=None,
            stop_reason=None,
            ttft_ns=None,
            total_duration_ns=None,
        )
        if isinstance(run.get("metadata"), dict) and "error" in run["metadata"]:
            run["metadata"] = {k: v for k, v in run["metadata"].items() if k != "error"}
        return run

    def _visible_step(self, step_id: str, now: datetime) -> _StepRec | None:
        rec = self._steps.get(step_id)
        return None if rec is None or rec.is_hidden(now) else rec

    def _visible_run(self, run_id: str, now: datetime) -> _RunRec | None:
        rec = self._runs.get(run_id)
        return None if rec is None or rec.is_hidden(now) else rec

    def serve_list_steps(
        self,
        *,
        order: str,
        limit: int,
        after: str | None,
        before: str | None,
        start: datetime | None,
        end: datetime | None,
        filt: StepFilter,
    ) -> list[dict[str, Any]]:
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            keys = []
            for cursor in (after, before):
                rec = self._visible_step(cursor, now) if cursor is not None else None
                if cursor is not None and rec is None:
                    raise NotFoundError(f"No Step found with id {cursor}")
                keys.append(rec.key if rec else None)
            idx = self._step_index
            recs = _page(
                idx.recs,
                idx.keys,
                idx.times,
                order=order,
                limit=limit,
                after_key=keys[0],
                before_key=keys[1],
                start=start,
                end=end,
                accept=lambda r: not r.is_hidden(now) and filt.accepts(r.final),
            )
            return [r.served(now) for r in recs]

    def serve_step(self, step_id: str) -> dict[str, Any] | None:
        with self._lock:
            now = self.now()
            rec = self._visible_step(step_id, now)
            return rec.served(now) if rec else None

    def serve_trace(self, step_id: str) -> Any:
        with self._lock:
            now = self.now()
            rec = self._visible_step(step_id, now)
            if rec is None or rec.is_pending(now) or rec.trace is None:
                return None
            tl = rec.timeline
            if tl is not None and (tl.trace is None or now < tl.trace):
                return None  # not written yet, or never
            if rec.trace_hold:
                if rec.trace_hold > 0:
                    rec.trace_hold -= 1
                return None
            doc = rec.trace
        return doc.render()

    def serve_metrics(self, step_id: str) -> dict[str, Any] | None:
        with self._lock:
            now = self.now()
            rec = self._visible_step(step_id, now)
            if rec is None:
                return None
            tl = rec.timeline
            if tl is not None and (tl.metrics is None or now < tl.metrics):
                return None  # no metrics row yet: 404, as Letta answers
            if rec.is_pending(now) or rec.metrics_hold:
                if rec.metrics_hold > 0:
                    rec.metrics_hold -= 1
                return {**rec.metrics, **_NULL_METRICS}
            return dict(rec.metrics)

    def serve_step_messages(self, step_id: str) -> list[Any] | None:
        with self._lock:
            now = self.now()
            rec = self._visible_step(step_id, now)
            if rec is None:
                return None
            if rec.is_pending(now):
                return []
            doc = rec.messages
        result: list[Any] = doc.render()
        return result

    def serve_list_runs(
        self,
        *,
        order: str,
        limit: int,
        after: str | None,
        before: str | None,
        agent_ids: Sequence[str],
        statuses: Sequence[str],
        background: bool | None,
        stop_reason: str | None,
        active: bool | None,
        project_id: str | None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            now = self.now()
            self._ensure_sorted()
            keys = []
            for cursor in (after, before):
                rec = self._visible_run(cursor, now) if cursor is not None else None
                if cursor is not None and rec is None:
                    raise NotFoundError(f"No Run found with id {cursor}")
                keys.append(rec.key if rec else None)
            served: dict[str, dict[str, Any]] = {}

            def accept(r: _RunRec) -> bool:
                if r.is_hidden(now) or (agent_ids and r.final["agent_id"] not in agent_ids):
                    return False
                if project_id is not None and r.project_id != project_id:
                    return False
                run = served.setdefault(r.id, self._served_run(r, now))
                return not (
                    (statuses and run["status"] not in statuses)
                    or (background is not None and run["background"] is not background)
                    or (stop_reason is not None and run["stop_reason"] != stop_reason)
                    or (active is not None and (run["status"] in ("created", "running")) != active)
                )

            idx = self._run_index
            recs = _page(
                idx.recs,
                idx.keys,
                idx.times,
                order=order,
                limit=limit,
                after_key=keys[0],
                before_key=keys[1],
                start=None,
                end=None,
                accept=accept,
            )
            return [served[r.id] for r in recs]

    def serve_run(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            now = self.now()
            rec = self._visible_run(run_id, now)
            return self._served_run(rec, now) if rec else None

    def serve_run_steps(
        self, run_id: str, *, order: str, limit: int, after: str | None, before: str | None
    ) -> list[dict[str, Any]] | None:
        with self._lock:
            now = self.now()
            run = self._visible_run(run_id, now)
            if run is None:
                return None
            recs = sorted(
                (r for s in run.step_ids if (r := self._steps[s]) and not r.is_hidden(now)),
                key=lambda r: r.key,
            )
            keys = [r.key for r in recs]
            cursor_keys = []
            for cursor in (after, before):
                rec = self._visible_step(cursor, now) if cursor is not None else None
                if cursor is not None and rec is None:
                    raise NotFoundError(f"No Step found with id {cursor}")
                cursor_keys.append(rec.key if rec else None)
            page = _page(
                recs,
                keys,
                [k[0] for k in keys],
                order=order,
                limit=limit,
                after_key=cursor_keys[0],
                before_key=cursor_keys[1],
                start=None,
                end=None,
                accept=lambda r: True,
            )
            return [r.served(now) for r in page]

    def serve_run_part(self, run_id: str, part: Literal["messages", "metrics", "usage"]) -> Any:
        """Run messages (without hidden/pending steps' ones), metrics or usage; None = 404."""
        with self._lock:
            now = self.now()
            run = self._visible_run(run_id, now)
            if run is None:
                return None
            if part == "usage":
                return dict(run.usage)
            pending = (run.terminal_at is not None and now < run.terminal_at) or any(
                self._steps[s].is_pending(now) for s in run.step_ids
            )
            if part == "metrics":
                return {**run.metrics, "run_ns": None} if pending else dict(run.metrics)
            skip = {
                s
                for s in run.step_ids
                if self._steps[s].is_hidden(now) or self._steps[s].is_pending(now)
            }
            doc = run.messages
        msgs: list[Any] = doc.render()
        return [m for m in msgs if m.get("step_id") not in skip] if skip else msgs

    def serve_agent(self, agent_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._agents.get(agent_id)

    def serve_agents(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._agents.values())


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(obj))
    return copied
