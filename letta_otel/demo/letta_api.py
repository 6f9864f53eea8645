"""A small Letta-compatible REST API over the captures shipped in ``captures/``.

It answers the routes the bridge reads (``/v1/health/``, the steps listing with its
cursors and dates, a step and its trace, metrics and messages, the runs listing, a run
and its steps, an agent) the way Letta does, on 127.0.0.1 (a free port), from a thread
of its own with its own event loop: a real server beside the bridge, not a mock in it.
What it serves: :mod:`.captures`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from letta_otel.demo.captures import Captures, StepCapture, parse_ts

HOST = "127.0.0.1"


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
        return parse_ts(raw) if raw else None
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
