"""HTTP side of the fake Letta API: routing and validation with the real server's error bodies,
fault injection, and the loopback ThreadingHTTPServer (public names re-exported by letta_api)."""

from __future__ import annotations

import contextlib
import json as _json
import random
import re
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast, get_args
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from tests.fakes.letta_api import FakeLettaData

__all__ = [
    "FakeLettaServer",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "NotFoundError",
    "RecordedRequest",
    "Response",
    "RouteConfig",
    "RunsPaging",
    "StepFilter",
    "StepsRoute",
    "route",
]

StepsRoute = Literal["ok", "legacy400"]
RunsPaging = Literal["letta-0.16.8", "documented"]
FaultKind = Literal[
    "429",
    "500",
    "503",
    "502html",
    "timeout",
    "reset",
    "malformed",
    "truncated",
    "401",
    "403",
    "404",
]
_FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

HEALTH = {"version": "0.16.8", "status": "ok"}
_ACTOR = (
    "access level in ['read'] for actor='id='user-00000000-0000-4000-8000-000000000000' "
    "organization_id='org-00000000-0000-4000-8000-000000000000' name='default_user' "
    "created_at=None updated_at=datetime.datetime(2026, 11, 21, 22, 55, 35, 275106, "
    "tzinfo=datetime.timezone.utc) is_deleted=False'"
)
_STEP_ID_PATTERN = r"^step-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_AGENT_ID_RE = re.compile(r"^agent-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_COLLECTIONS = ("/v1/steps", "/v1/runs", "/v1/health", "/v1/agents")
_STEP_ITEM = re.compile(r"^/v1/steps/(?P<id>[^/]+)(?:/(?P<sub>[^/]+))?$")
_RUN_ITEM = re.compile(r"^/v1/runs/(?P<id>[^/]+)(?:/(?P<sub>[^/]+))?$")
_AGENT_ITEM = re.compile(r"^/v1/agents/(?P<id>[^/]+)$")
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls, status: int, payload: Any, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> Response:
        """Compact JSON like Starlette's JSONResponse."""
        body = _json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(status, body, "application/json", headers)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    steps_route: StepsRoute
    runs_paging: RunsPaging
    max_list_limit: int | None
    host: str


@dataclass(frozen=True, slots=True)
class StepFilter:
    agent_id: str | None = None
    model: str | None = None
    project_id: str | None = None
    trace_ids: tuple[str, ...] = ()
    feedback: str | None = None
    has_feedback: bool | None = None
    tags: tuple[str, ...] = ()

    def accepts(self, step: Mapping[str, Any]) -> bool:
        return not (
            (self.agent_id is not None and step["agent_id"] != self.agent_id)
            or (self.model is not None and step["model"] != self.model)
            or (self.project_id is not None and step["project_id"] != self.project_id)
            or (self.trace_ids and step["trace_id"] not in self.trace_ids)
            or (self.feedback is not None and step["feedback"] != self.feedback)
            or (
                self.has_feedback is not None
                and (step["feedback"] is not None) != self.has_feedback
            )
            or (self.tags and not set(self.tags) & set(step["tags"] or ()))
        )


class NotFoundError(LookupError):
    """A 404 whose ``detail`` is what the real server says (e.g. an unknown cursor)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _InvalidError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _validation_error(errors: list[dict[str, Any]], **extra: Any) -> Response:
    """FastAPI-in-Letta 422: the pydantic error list stringified with repr()."""
    return Response.json(422, {"trace_id": secrets.token_hex(16), "detail": repr(errors), **extra})


def not_found_detail(kind: str, obj_id: str) -> str:
    return f"{kind} not found with id='['{obj_id}']', {_ACTOR}"


def _not_found(kind: str, obj_id: str) -> Response:
    return Response.json(404, {"detail": not_found_detail(kind, obj_id)})


class _Query:
    """Typed access to query parameters; collects validation errors like FastAPI."""

    def __init__(self, query: Mapping[str, list[str]]) -> None:
        self.query = query
        self.errors: list[dict[str, Any]] = []

    def get(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def getlist(self, *names: str) -> tuple[str, ...]:
        return tuple(v for n in names for v in self.query.get(n, ()))

    def getint(
        self, name: str, default: int, *, ge: int | None = None, le: int | None = None
    ) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            msg = "Input should be a valid integer, unable to parse string as an integer"
            self.errors.append(
                {"type": "int_parsing", "loc": ("query", name), "msg": msg, "input": raw}
            )
            return default
        for bound, kind, word in (
            (ge, "greater_than_equal", "greater"),
            (le, "less_than_equal", "less"),
        ):
            if bound is not None and (
                value < bound if kind.startswith("greater") else value > bound
            ):
                self.errors.append(
                    {
                        "type": kind,
                        "loc": ("query", name),
                        "msg": f"Input should be {word} than or equal to {bound}",
                        "input": raw,
                        "ctx": {kind[:1] + "e": bound},
                    }
                )
        return value

    def order(self, default: str = "desc") -> str:
        raw = self.get("order")
        if raw is None:
            return default
        if raw not in ("asc", "desc"):
            self.errors.append(
                {
                    "type": "literal_error",
                    "loc": ("query", "order"),
                    "msg": "Input should be 'asc' or 'desc'",
                    "input": raw,
                    "ctx": {"expected": "'asc' or 'desc'"},
                }
            )
            return default
        return raw

    def getbool(self, name: str) -> bool | None:
        raw = self.get(name)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.errors.append(
            {
                "type": "bool_parsing",
                "loc": ("query", name),
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": raw,
            }
        )
        return None

    def getdate(self, name: str) -> datetime | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            self.errors.append(
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": f"Value error, Invalid isoformat string: {raw!r}",
                    "input": raw,
                }
            )
            return None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def limit(
        self, default: int, cfg: RouteConfig, *, ge: int | None = None, le: int | None = None
    ) -> int:
        if cfg.max_list_limit is not None:
            le = cfg.max_list_limit if le is None else min(le, cfg.max_list_limit)
        return self.getint("limit", default, ge=ge, le=le)


def _redirect(cfg: RouteConfig, path: str, raw_query: str) -> Response:
    location = f"http://{cfg.host}{path}" + (f"?{raw_query}" if raw_query else "")
    return Response(307, b"", "application/json", (("Location", location),))


def route(
    data: FakeLettaData,
    *,
    cfg: RouteConfig,
    method: str,
    path: str,
    raw_query: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
) -> Response:
    """Answer one request the way Letta 0.16.8 does."""
    if path in _COLLECTIONS:
        return _redirect(cfg, path + "/", raw_query)
    if (
        path.endswith("/")
        and path[:-1]
        and any(r.match(path[:-1]) for r in (_STEP_ITEM, _RUN_ITEM, _AGENT_ITEM))
    ):
        return _redirect(cfg, path[:-1], raw_query)
    handler = _resolve(path)
    if handler is None:
        return Response.json(404, {"detail": "Not Found"})
    if method != "GET":
        return Response.json(405, {"detail": "Method Not Allowed"})
    q = _Query(query)
    try:
        return handler(data, cfg, q, headers)
    except _InvalidError as exc:
        return _validation_error(exc.errors)
    except NotFoundError as exc:
        return Response.json(404, {"detail": exc.detail})


_RouteFn = Callable[["FakeLettaData", RouteConfig, _Query, Mapping[str, str]], Response]


def _resolve(path: str) -> _RouteFn | None:
    if path == "/v1/health/":
        return lambda *_: Response.json(200, HEALTH)
    if path == "/v1/steps/":
        return _list_steps
    if path == "/v1/runs/":
        return _list_runs
    if path == "/v1/agents/":
        return lambda data, *_: Response.json(200, data.serve_agents())
    if m := _STEP_ITEM.match(path):
        step_id, step_sub = m["id"], m["sub"]
        if step_sub not in (None, "trace", "metrics", "messages"):
            return None
        return lambda data, cfg, q, h: _step_item(data, q, step_id, step_sub)
    if m := _RUN_ITEM.match(path):
        run_id, run_sub = m["id"], m["sub"]
        if run_sub not in (None, "steps", "messages", "metrics", "usage"):
            return None
        return lambda data, cfg, q, h: _run_item(data, cfg, q, run_id, run_sub)
    if m := _AGENT_ITEM.match(path):
        agent_id = m["id"]
        return lambda data, *_: (
            Response.json(200, agent)
            if (agent := data.serve_agent(agent_id)) is not None
            else _not_found("Agent", agent_id)
        )
    return None


def _checked(q: _Query) -> None:
    if q.errors:
        raise _InvalidError(q.errors)


def _list_steps(
    data: FakeLettaData, cfg: RouteConfig, q: _Query, headers: Mapping[str, str]
) -> Response:
    order = q.order()
    limit = q.limit(50, cfg)
    start, end = q.getdate("start_date"), q.getdate("end_date")
    has_feedback = q.getbool("has_feedback")
    _checked(q)
    if cfg.steps_route == "legacy400":
        detail = (
            "Argument order does not match type typing.Optional[str]; "
            f"is {order == 'asc'} of type <class 'bool'>"
        )
        return Response.json(400, {"detail": detail})
    agent_id = q.get("agent_id")
    if agent_id is not None and not _AGENT_ID_RE.match(agent_id):
        detail = (
            f"INVALID_ARGUMENT: Invalid agent ID format: {agent_id}. "
            "Expected format: 'agent-<uuid4>'"
        )
        return Response.json(400, {"detail": detail})
    if limit < 0:
        return Response.json(500, {"detail": "A database error occurred."})
    filt = StepFilter(
        agent_id=agent_id,
        model=q.get("model"),
        project_id=q.get("project_id") or headers.get("x-project"),
        trace_ids=q.getlist("trace_ids", "trace_ids[]"),
        feedback=q.get("feedback"),
        has_feedback=has_feedback,
        tags=q.getlist("tags", "tags[]"),
    )
    steps = data.serve_list_steps(
        order=order,
        limit=limit,
        after=q.get("after"),
        before=q.get("before"),
        start=start,
        end=end,
        filt=filt,
    )
    return Response.json(200, steps)


def _list_runs(
    data: FakeLettaData, cfg: RouteConfig, q: _Query, headers: Mapping[str, str]
) -> Response:
    order = q.order()
    limit = q.limit(100, cfg, ge=1, le=1000)
    background, active = q.getbool("background"), q.getbool("active")
    _checked(q)
    after, before = q.get("after"), q.get("before")
    if cfg.runs_paging == "letta-0.16.8":  # observed: before= is the next page, after= the previous
        after, before = before, after
    runs = data.serve_list_runs(
        order=order,
        limit=limit,
        after=after,
        before=before,
        agent_ids=q.getlist("agent_id", "agent_ids", "agent_ids[]"),
        statuses=q.getlist("statuses", "statuses[]"),
        background=background,
        stop_reason=q.get("stop_reason"),
        active=active,
        project_id=q.get("project_id") or headers.get("x-project"),
    )
    return Response.json(200, runs)


def _limited(items: list[Any], q: _Query) -> list[Any]:
    limit = q.getint("limit", -1)
    _checked(q)
    return items if limit < 0 else items[:limit]


def _step_item(data: FakeLettaData, q: _Query, step_id: str, sub: str | None) -> Response:
    if not re.match(_STEP_ID_PATTERN, step_id):
        error = {
            "type": "string_pattern_mismatch",
            "loc": ("path", "step_id"),
            "msg": "String should match pattern 'step-{uuid4}'",
            "input": step_id,
            "ctx": {"pattern": _STEP_ID_PATTERN},
        }
        return _validation_error([error], examples=["step-123e4567-e89b-42d3-8456-426614174000"])
    if sub is None:
        step = data.serve_step(step_id)
        return Response.json(200, step) if step is not None else _not_found("Step", step_id)
    if sub == "trace":
        return Response.json(200, data.serve_trace(step_id))
    if sub == "metrics":
        metrics = data.serve_metrics(step_id)
        return (
            Response.json(200, metrics)
            if metrics is not None
            else _not_found("StepMetrics", step_id)
        )
    messages = data.serve_step_messages(step_id)
    if messages is None:
        return _not_found("Step", step_id)
    return Response.json(200, _limited(messages, q))


def _run_item(
    data: FakeLettaData, cfg: RouteConfig, q: _Query, run_id: str, sub: str | None
) -> Response:
    if sub is None:
        run = data.serve_run(run_id)
        return Response.json(200, run) if run is not None else _not_found("Run", run_id)
    if sub == "steps":
        order = q.order()
        limit = q.limit(100, cfg)
        _checked(q)
        steps = data.serve_run_steps(
            run_id, order=order, limit=limit, after=q.get("after"), before=q.get("before")
        )
        return Response.json(200, steps) if steps is not None else _not_found("Run", run_id)
    part: Literal["messages", "metrics", "usage"] = (
        "messages" if sub == "messages" else "metrics" if sub == "metrics" else "usage"
    )
    result = data.serve_run_part(run_id, part)
    if result is None:
        return _not_found("Run", run_id)
    return Response.json(200, _limited(result, q) if part == "messages" else result)


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FaultRule:
    pattern: re.Pattern[str]
    kind: FaultKind
    remaining: int  # -1 = forever
    opts: dict[str, Any]
    hits: int = 0


class FaultInjector:
    """Rules matched (re.search) against the request path, first match wins.

    A rule with ``fraction`` below 1 takes a matching request only with that probability
    (drawn from this injector's own seeded generator); when it does not, the request
    goes on to the next rules.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def add(self, path_regex: str, kind: str, count: int = 1, **opts: Any) -> FaultRule:
        """Fault the next ``count`` requests whose path matches (``-1``: forever).

        Options: retry_after, reset_ms, reasons (429); seconds, close (timeout); method (any);
        declare_full (truncated: announce the full Content-Length, send half, close);
        body (str or JSON, replaces the canned body of status kinds); fraction (any: the
        probability that a matching request is faulted, default 1).
        """
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_KINDS)}")
        fraction = opts.get("fraction", 1.0)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
        rule = FaultRule(re.compile(path_regex), cast(FaultKind, kind), count, dict(opts))
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0 or not rule.pattern.search(path):
                    continue
                if rule.opts.get("method") not in (None, method):
                    continue
                fraction = rule.opts.get("fraction", 1.0)
                if fraction < 1.0 and self._rng.random() >= fraction:
                    continue
                if rule.remaining > 0:
                    rule.remaining -= 1
                rule.hits += 1
                return rule
        return None


_CLOUDFLARE_502 = (
    "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway | api.letta.com | Cloudflare</title>"
    '</head>\n<body>\n<div id="cf-error-details">\n<h1>Error 502</h1>\n<h2>Bad gateway</h2>\n'
    "<p>The web server reported a bad gateway error.</p>\n<p>Cloudflare Ray ID: 8f1e2d3c4b5a6978"
    "</p>\n</div>\n</body>\n</html>\n"
)


def _fault_response(rule: FaultRule) -> Response | None:
    """The canned answer for a fault kind (None for kinds that alter a normal answer)."""
    kind, opts = rule.kind, rule.opts
    if "body" in opts and kind not in ("truncated", "timeout", "reset"):
        body = opts["body"]
        raw = body.encode() if isinstance(body, str) else _json.dumps(body).encode()
        ctype = "text/html" if kind == "502html" else "application/json"
        return Response(int(kind[:3]) if kind[:3].isdigit() else 200, raw, ctype)
    if kind == "429":
        retry = opts.get("retry_after", 1)
        reset_ms = opts.get("reset_ms", int(float(retry) * 1000))
        reasons = opts.get("reasons", ["rate-limited"])
        payload = {"reasons": reasons, "timeToQuotaResetMs": reset_ms}
        return Response.json(429, payload, headers=(("Retry-After", str(retry)),))
    details = {
        "500": "An unknown error occurred",
        "503": "Service Unavailable",
        "401": "Unauthorized: invalid or missing API key",
        "403": "Forbidden",
        "404": "Not Found",
    }
    if kind in details:
        return Response.json(int(kind), {"detail": details[kind]})
    if kind == "502html":
        return Response(502, _CLOUDFLARE_502.encode(), "text/html; charset=UTF-8")
    if kind == "malformed":
        return Response(
            200, b'{"id": "step-oops", <!-- upstream said: not json', "application/json"
        )
    return None


# ---------------------------------------------------------------------------------------------
# HTTP server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case keys
    status: int  # 0 = the connection was dropped without an answer


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: FakeLettaServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish mid-answer are expected here; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 60
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        # Recorded just before the answer leaves (in _send), so a client that has its
        # answer always finds its request in the log; unanswered ones are recorded here.
        self._request = (self.command, path, query, headers)
        self._recorded = False
        status = 0
        try:
            status = self._answer(owner, path, split.query, query, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if not self._recorded:
                owner._record(RecordedRequest(self.command, path, query, headers, status))

    def _answer(
        self,
        owner: FakeLettaServer,
        path: str,
        raw_query: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
    ) -> int:
        if owner.latency_s > 0:
            owner._stopping.wait(owner.latency_s)
        rule = owner.faults.take(self.command, path)
        if rule is not None:
            if rule.kind == "timeout":
                owner._stopping.wait(float(rule.opts.get("seconds", 5)))
            if rule.kind == "reset" or (rule.kind == "timeout" and rule.opts.get("close")):
                self._reset()
                return 0
            canned = _fault_response(rule)
            if canned is not None:
                self._send(canned)
                return canned.status
        if owner.api_key is not None and headers.get("authorization") != f"Bearer {owner.api_key}":
            resp = Response.json(401, {"detail": "Unauthorized: invalid or missing API key"})
        else:
            try:
                resp = route(
                    owner.data,
                    cfg=owner.route_config(headers),
                    method=self.command,
                    path=path,
                    raw_query=raw_query,
                    query=query,
                    headers=headers,
                )
            except Exception as exc:  # a bug in the fake: make it loud, not a dropped socket
                owner.errors.append(exc)
                resp = Response.json(500, {"detail": f"fake letta internal error: {exc!r}"})
        if rule is not None and rule.kind == "truncated":
            half = resp.body[: len(resp.body) // 2]
            if rule.opts.get("declare_full"):
                self._send(resp, body=half, length=len(resp.body))
                self.close_connection = True
            else:
                self._send(resp, body=half)
            return resp.status
        self._send(resp)
        return resp.status

    def _send(
        self, resp: Response, *, body: bytes | None = None, length: int | None = None
    ) -> None:
        payload = resp.body if body is None else body
        if not self._recorded:
            self._recorded = True
            self.server.owner._record(RecordedRequest(*self._request, resp.status))
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class FakeLettaServer:
    """``with FakeLettaServer(data) as srv:`` serves ``data`` at ``srv.base_url``.

    Knobs (attributes, changeable at runtime): steps_route, runs_paging, api_key,
    max_list_limit, latency_s; ``faults`` for fault injection.
    """

    def __init__(
        self,
        data: FakeLettaData,
        *,
        steps_route: StepsRoute = "ok",
        runs_paging: RunsPaging = "letta-0.16.8",
        api_key: str | None = None,
        max_list_limit: int | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.data = data
        self.steps_route: StepsRoute = steps_route
        self.runs_paging: RunsPaging = runs_paging
        self.api_key = api_key
        self.max_list_limit = max_list_limit
        self.latency_s = latency_s
        self.faults = FaultInjector()
        self.connections_accepted = 0
        self.errors: list[Exception] = []  # exceptions raised by routes (answered with 500)
        self._stopping = threading.Event()
        self._log: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-letta-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def count(
        self, path_regex: str = "", *, method: str | None = None, status: int | None = None
    ) -> int:
        """How many logged requests have a path matching ``path_regex`` (re.search)."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for r in self.requests
            if pattern.search(r.path)
            and (method is None or r.method == method)
            and (status is None or r.status == status)
        )

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # -- internals used by the handler -------------------------------------------------------

    def route_config(self, headers: Mapping[str, str]) -> RouteConfig:
        return RouteConfig(
            steps_route=self.steps_route,
            runs_paging=self.runs_paging,
            max_list_limit=self.max_list_limit,
            host=headers.get("host", f"127.0.0.1:{self.port}"),
        )

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._log.append(req)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self.connections_accepted += 1
                self._conns.add(conn)
                self._threads.add(threading.current_thread())
            else:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())
