"""A small Letta-compatible REST API over the captures shipped in ``captures/``.

It answers the routes the bridge reads (``/v1/health/``, the steps listing with its
cursors and dates, a step and its trace, metrics and messages, the runs listing, a run
and its steps, an agent) the way Letta does, on 127.0.0.1 (a free port), from a thread
of its own with its own event loop: a real server beside the bridge, not a mock in it.

The captures keep their content; only their timestamps move (all by one offset) so that
the newest run ends moments before now, inside the bridge's first look-back. With
``fresh_ids`` the run and step ids are drawn afresh, so two demos sent to one backend
are two sets of traces there.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
# The newest captured run ends this long before the demo starts.
LEAD = timedelta(seconds=1)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STEP_FILE = re.compile(rf"step(\d+)_(step-{_UUID})\.json")


def captures_dir() -> Traversable:
    return resources.files("letta_otel.demo").joinpath("captures")


def _parse_ts(text: str) -> datetime:
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
        return _parse_ts(trace["created_at"]) - timedelta(microseconds=llm_ns // 1000)
    return None


def _load_run(folder: Traversable, fresh_ids: bool) -> RunCapture:
    record = json.loads(folder.joinpath("scenario_record.json").read_text(encoding="utf-8"))
    ids: dict[str, str] = {}
    if fresh_ids:
        for old in (*record["run_ids"], *record["step_ids"]):
            prefix = old.split("-", 1)[0]
            ids[old] = f"{prefix}-{uuid.uuid4()}"
    body = _read(folder, "run.json", ids)
    run = RunCapture(body["id"], _parse_ts(body["created_at"]), body)
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
    end = _parse_ts(run.body["completed_at"]) if run.body.get("completed_at") else run.created_at
    return max([end, *(s.created_at for s in run.steps)])


def _shift(run: RunCapture, delta: timedelta) -> None:
    run.created_at += delta
    run.body["created_at"] = _fmt_z(run.created_at)
    if run.body.get("completed_at"):
        run.body["completed_at"] = _fmt_naive(_parse_ts(run.body["completed_at"]) + delta)
    for step in run.steps:
        step.created_at += delta
        if isinstance(step.trace, dict):
            for key in ("created_at", "updated_at"):
                if isinstance(step.trace.get(key), str):
                    step.trace[key] = _fmt_z(_parse_ts(step.trace[key]) + delta)
            response = step.trace.get("response_json")
            if isinstance(response, dict) and isinstance(response.get("created"), int):
                response["created"] += int(delta.total_seconds())
        for key in ("step_start_ns", "llm_request_start_ns"):
            if isinstance(step.metrics.get(key), int):
                step.metrics[key] += _ns(delta)
        for message in step.messages:
            if isinstance(message, dict) and isinstance(message.get("date"), str):
                message["date"] = _fmt_seconds(_parse_ts(message["date"]) + delta)


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
                agent[key] = _fmt_z(_parse_ts(agent[key]) + delta)
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


# --------------------------------------------------------------------------- serving


class _BadRequest(Exception):
    pass


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


def _not_found(kind: str, obj_id: str) -> web.Response:
    return _json({"detail": f"{kind} not found with id='{obj_id}'"}, 404)


def _order(query: Mapping[str, str], default: str) -> str:
    order = query.get("order", default)
    if order not in ("asc", "desc"):
        raise _BadRequest("order: Input should be 'asc' or 'desc'")
    return order


def _limit(query: Mapping[str, str], default: int) -> int:
    try:
        return int(query.get("limit", default))
    except ValueError:
        raise _BadRequest("limit: Input should be a valid integer") from None


def _date(query: Mapping[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    try:
        return _parse_ts(raw) if raw else None
    except ValueError:
        raise _BadRequest(f"{name}: Invalid isoformat string: {raw!r}") from None


def _page(
    items: list[Any],
    key: Callable[[Any], tuple[datetime, str]],
    *,
    order: str,
    limit: int,
    after: tuple[datetime, str] | None,
    before: tuple[datetime, str] | None,
    accept: Callable[[Any], bool] = lambda _: True,
) -> list[Any]:
    """A keyset page: ``after`` is the next page in the listing's order (as in Letta)."""
    ordered = sorted(items, key=key, reverse=order == "desc")
    if order == "asc":
        ordered = [i for i in ordered if (after is None or key(i) > after)]
        ordered = [i for i in ordered if (before is None or key(i) < before)]
    else:
        ordered = [i for i in ordered if (after is None or key(i) < after)]
        ordered = [i for i in ordered if (before is None or key(i) > before)]
    return [i for i in ordered if accept(i)][: max(limit, 0)]


class LettaApi:
    """The routes, over one :class:`Captures`."""

    def __init__(self, captures: Captures) -> None:
        self._captures = captures
        self._steps = {s.id: s for s in captures.steps}
        self._runs = {r.id: r for r in captures.runs}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        get = app.router.add_get
        get("/v1/health/", self._health)
        get("/v1/steps/", self._list_steps)
        get("/v1/steps/{step_id}", self._step)
        get("/v1/steps/{step_id}/{part:trace|metrics|messages}", self._step_part)
        get("/v1/runs/", self._list_runs)
        get("/v1/runs/{run_id}", self._run)
        get("/v1/runs/{run_id}/steps", self._run_steps)
        get("/v1/agents/{agent_id}", self._agent)
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except _BadRequest as exc:
            return _json({"detail": str(exc)}, 422)
        return response

    def _step_key(self, step_id: str | None) -> tuple[datetime, str] | None:
        if step_id is None:
            return None
        step = self._steps.get(step_id)
        if step is None:
            raise web.HTTPNotFound(
                text=json.dumps({"detail": f"No Step found with id {step_id}"}),
                content_type="application/json",
            )
        return (step.created_at, step.id)

    def _run_key(self, run_id: str | None) -> tuple[datetime, str] | None:
        if run_id is None:
            return None
        run = self._runs.get(run_id)
        if run is None:
            raise web.HTTPNotFound(
                text=json.dumps({"detail": f"No Run found with id {run_id}"}),
                content_type="application/json",
            )
        return (run.created_at, run.id)

    async def _health(self, request: web.Request) -> web.Response:
        return _json(self._captures.health)

    async def _list_steps(self, request: web.Request) -> web.Response:
        query = request.query
        start, end = _date(query, "start_date"), _date(query, "end_date")
        agent_id, feedback = query.get("agent_id"), query.get("feedback")
        has_feedback = query.get("has_feedback")

        def accept(step: StepCapture) -> bool:
            body = step.body
            return not (
                (start is not None and step.created_at <= start)
                or (end is not None and step.created_at >= end)
                or (agent_id is not None and body.get("agent_id") != agent_id)
                or (feedback is not None and body.get("feedback") != feedback)
                or (
                    has_feedback is not None
                    and (body.get("feedback") is not None) != (has_feedback.lower() == "true")
                )
            )

        page = _page(
            list(self._steps.values()),
            lambda s: (s.created_at, s.id),
            order=_order(query, "desc"),
            limit=_limit(query, 50),
            after=self._step_key(query.get("after")),
            before=self._step_key(query.get("before")),
            accept=accept,
        )
        return _json([s.body for s in page])

    async def _step(self, request: web.Request) -> web.Response:
        step = self._steps.get(request.match_info["step_id"])
        if step is None:
            return _not_found("Step", request.match_info["step_id"])
        return _json(step.body)

    async def _step_part(self, request: web.Request) -> web.Response:
        step_id, part = request.match_info["step_id"], request.match_info["part"]
        step = self._steps.get(step_id)
        if part == "trace":  # Letta answers null, not 404, for a trace it does not have
            return _json(step.trace if step else None)
        if step is None:
            return _not_found("StepMetrics" if part == "metrics" else "Step", step_id)
        if part == "metrics":
            return _json(step.metrics)
        return _json(step.messages[: _limit(request.query, len(step.messages))])

    async def _list_runs(self, request: web.Request) -> web.Response:
        query = request.query
        agent_ids = set(query.getall("agent_id", [])) | set(query.getall("agent_ids", []))
        statuses = set(query.getall("statuses", []))
        page = _page(
            list(self._runs.values()),
            lambda r: (r.created_at, r.id),
            order=_order(query, "desc"),
            limit=_limit(query, 100),
            after=self._run_key(query.get("after")),
            before=self._run_key(query.get("before")),
            accept=lambda r: (
                (not agent_ids or r.body.get("agent_id") in agent_ids)
                and (not statuses or r.body.get("status") in statuses)
            ),
        )
        return _json([r.body for r in page])

    async def _run(self, request: web.Request) -> web.Response:
        run = self._runs.get(request.match_info["run_id"])
        if run is None:
            return _not_found("Run", request.match_info["run_id"])
        return _json(run.body)

    async def _run_steps(self, request: web.Request) -> web.Response:
        run = self._runs.get(request.match_info["run_id"])
        if run is None:
            return _not_found("Run", request.match_info["run_id"])
        query = request.query
        page = _page(
            run.steps,
            lambda s: (s.created_at, s.id),
            order=_order(query, "desc"),
            limit=_limit(query, 100),
            after=self._step_key(query.get("after")),
            before=self._step_key(query.get("before")),
        )
        return _json([s.body for s in page])

    async def _agent(self, request: web.Request) -> web.Response:
        agent = self._captures.agents.get(request.match_info["agent_id"])
        if agent is None:
            return _not_found("Agent", request.match_info["agent_id"])
        return _json(agent)


class LettaApiServer:
    """:class:`LettaApi` on 127.0.0.1 (a free port), served from a thread of its own."""

    def __init__(self, captures: Captures) -> None:
        self._app = LettaApi(captures).app()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> LettaApiServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((HOST, 0))
        self._sock, self.port = sock, int(sock.getsockname()[1])
        started: list[BaseException | None] = []
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, started, ready), name="demo-letta-api", daemon=True
        )
        self._thread.start()
        if not ready.wait(30):
            self.stop()
            raise OSError("the demo's Letta API did not start within 30 s")
        if started and started[0] is not None:
            self.stop()
            raise started[0]
        return self

    def _serve(
        self, sock: socket.socket, started: list[BaseException | None], ready: threading.Event
    ) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # A request still in flight at stop (after Ctrl-C) must not hold the exit.
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
        except BaseException as exc:  # reported to start(), which raises it
            started.append(exc)
            ready.set()
            loop.close()
            return
        started.append(None)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._loop = self._thread = self._sock = None
