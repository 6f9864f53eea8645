"""The Letta captures the demo serves (``captures/``), moved to end just before now.

The captures keep their content; only their timestamps move (all by one offset) so that
the newest run ends moments before now, inside the bridge's first look-back. With
``fresh_ids`` the run and step ids are drawn afresh, so two demos sent to one backend
are two sets of traces there.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

# The newest captured run ends this long before the demo starts.
LEAD = timedelta(seconds=1)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


_STEP_FILE = re.compile(rf"step(\d+)_(step-{_UUID})\.json")


def captures_dir() -> Traversable:
    return resources.files("letta_otel.demo").joinpath("captures")


def parse_ts(text: str) -> datetime:
    """Letta's timestamps; one without a zone is UTC (as Letta's ``completed_at``)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fmt_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fmt_naive(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _fmt_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@dataclass(frozen=True)
class DemoRun:
    """One captured run as served: what the demo tells the user about it."""

    scenario: str
    about: str
    run_id: str
    agent_id: str
    agent_name: str
    step_ids: tuple[str, ...]


@dataclass
class StepCapture:
    """A step and its parts, as served."""

    id: str
    created_at: datetime  # Letta's row time: not in the step JSON, but what lists sort by
    body: dict[str, Any]
    trace: Any
    metrics: dict[str, Any]
    messages: list[Any]


@dataclass
class RunCapture:
    """A run and its steps (in step order), as served."""

    id: str
    created_at: datetime
    body: dict[str, Any]
    steps: list[StepCapture] = field(default_factory=list)


@dataclass
class Captures:
    """The captures, shifted in time, ready to serve."""

    health: dict[str, Any]
    agents: dict[str, dict[str, Any]]
    runs: list[RunCapture]
    demo_runs: tuple[DemoRun, ...]
    letta_version: str

    @property
    def steps(self) -> list[StepCapture]:
        return sorted((s for r in self.runs for s in r.steps), key=lambda s: (s.created_at, s.id))


def _read(folder: Traversable, name: str, ids: Mapping[str, str]) -> Any:
    text = folder.joinpath(name).read_text(encoding="utf-8")
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


def _step_files(folder: Traversable) -> list[tuple[int, str]]:
    found = []
    for entry in folder.iterdir():
        match = _STEP_FILE.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), match[2]))
    return sorted(found)


def _step_start(trace: Any, metrics: Mapping[str, Any]) -> datetime | None:
    """When Letta created the step row: its LLM request began ``llm_request_ns`` before
    the provider trace was written."""
    llm_ns = metrics.get("llm_request_ns")
    if isinstance(trace, dict) and isinstance(llm_ns, int) and trace.get("created_at"):
        return parse_ts(trace["created_at"]) - timedelta(microseconds=llm_ns // 1000)
    return None


def _load_run(folder: Traversable, fresh_ids: bool) -> RunCapture:
    record = json.loads(folder.joinpath("scenario_record.json").read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    if fresh_ids:
        for old in (*record["run_ids"], *record["step_ids"]):
            prefix = old.split("-", 1)[0]
            ids[old] = f"{prefix}-{uuid.uuid4()}"
    body = _read(folder, "run.json", ids)
    run = RunCapture(body["id"], parse_ts(body["created_at"]), body)
    previous: datetime | None = None
    for index, step_id in _step_files(folder):
        stem = f"step{index}_{step_id}"
        step = _read(folder, f"{stem}.json", ids)
        trace = _read(folder, f"{stem}_trace.json", ids)
        metrics = _read(folder, f"{stem}_metrics.json", ids)
        created = _step_start(trace, metrics) or run.created_at + timedelta(milliseconds=index + 1)
        if previous is not None and created <= previous:
            created = previous + timedelta(microseconds=1)
        previous = created
        messages = _read(folder, f"{stem}_messages.json", ids)
        run.steps.append(StepCapture(step["id"], created, step, trace, metrics, messages))
    return run


def _run_end(run: RunCapture) -> datetime:
    end = parse_ts(run.body["completed_at"]) if run.body.get("completed_at") else run.created_at
    return max([end, *(s.created_at for s in run.steps)])


def _shift(run: RunCapture, delta: timedelta) -> None:
    run.created_at += delta
    run.body["created_at"] = _fmt_z(run.created_at)
    if run.body.get("completed_at"):
        run.body["completed_at"] = _fmt_naive(parse_ts(run.body["completed_at"]) + delta)
    for step in run.steps:
        step.created_at += delta
        if isinstance(step.trace, dict):
            for key in ("created_at", "updated_at"):
                if isinstance(step.trace.get(key), str):
                    step.trace[key] = _fmt_z(parse_ts(step.trace[key]) + delta)
            response = step.trace.get("response_json")
            if isinstance(response, dict) and isinstance(response.get("created"), int):
                response["created"] += int(delta.total_seconds())
        for key in ("step_start_ns", "llm_request_start_ns"):
            if isinstance(step.metrics.get(key), int):
                step.metrics[key] += _ns(delta)
        for message in step.messages:
            if isinstance(message, dict) and isinstance(message.get("date"), str):
                message["date"] = _fmt_seconds(parse_ts(message["date"]) + delta)


def load_captures(
    now: datetime | None = None, *, fresh_ids: bool = False, root: Traversable | None = None
) -> Captures:
    """The shipped captures with the newest run ending just before ``now``."""
    root = root or captures_dir()
    index = json.loads(root.joinpath("index.json").read_text(encoding="utf-8"))
    runs = [_load_run(root.joinpath(s["name"]), fresh_ids) for s in index["scenarios"]]
    target = (now or datetime.now(UTC)) - LEAD
    delta = target - max(_run_end(r) for r in runs)
    for run in runs:
        _shift(run, delta)
    agents: dict[str, dict[str, Any]] = {}
    for agent_id, spec in index["agents"].items():
        agent = json.loads(root.joinpath(spec["capture"]).read_text(encoding="utf-8"))
        agent.update({k: v for k, v in spec.items() if k != "capture"}, id=agent_id)
        for key in ("created_at", "updated_at"):
            if isinstance(agent.get(key), str):
                agent[key] = _fmt_z(parse_ts(agent[key]) + delta)
        agents[agent_id] = agent
    demo_runs = tuple(
        DemoRun(
            scenario=spec["name"],
            about=spec["about"],
            run_id=run.id,
            agent_id=str(run.body.get("agent_id")),
            agent_name=str(agents.get(str(run.body.get("agent_id")), {}).get("name", "")),
            step_ids=tuple(s.id for s in run.steps),
        )
        for spec, run in zip(index["scenarios"], runs, strict=True)
    )
    health = json.loads(root.joinpath("health.json").read_text(encoding="utf-8"))
    return Captures(health, agents, runs, demo_runs, str(index["letta_version"]))
