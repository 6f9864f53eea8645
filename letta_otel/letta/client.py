"""Async Letta REST client: auth, one retry policy with a deadline, typed results.

Only transport concerns live here; which steps are new is ``discovery``'s job.
Requests go through one aiohttp session (:mod:`letta_otel.letta.session`: TLS,
proxy, same-origin redirects, the connection pool) and are retried by
:class:`letta_otel.retry.RetryPolicy`: every failed attempt is reported to
``on_error``; a timeout, a reset, a malformed or cut-short answer, invalid JSON and
HTTP 408/409/425/429/5xx are retried, inside one deadline for the whole call; 401/403
and other 4xx are not. A list response with a bad record is validated item by item,
so that record is reported with its id and skipped while the rest of the page is used
(:mod:`.decode`). What a failed answer means: :mod:`.answers`; the errors: :mod:`.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson
from tenacity import RetryCallState
from yarl import URL

from letta_otel import __version__
from letta_otel.letta.answers import (
    describe_body,
    describe_failure,
    error_for,
    framing_conflict,
    retry_hint_and_source,
)
from letta_otel.letta.decode import full_trace, lean_trace, list_decoder, parse_list
from letta_otel.letta.errors import (
    InvalidRecord,
    LettaAuthError,
    LettaError,
    LettaNotFound,
    LettaUnavailable,
    RawResponse,
    StepsRouteBroken,
)
from letta_otel.letta.models import (
    Agent,
    LettaModel,
    Message,
    ModelError,
    ProviderTrace,
    Run,
    Step,
    StepMetrics,
    describe,
    json_decoder,
)
from letta_otel.letta.ratelimit import RateLimiter
from letta_otel.letta.session import (
    MAX_REDIRECTS,
    RedirectRefused,
    TransportConfigError,
    describe_proxy,
    open_session,
)
from letta_otel.retry import Deadline, Retryable, RetryPolicy, Sleep, why_given_up

__all__ = [
    "InvalidRecord",
    "LettaAuthError",
    "LettaClient",
    "LettaError",
    "LettaNotFound",
    "LettaUnavailable",
    "RawResponse",
    "RetryPolicy",
    "StepsRouteBroken",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=LettaModel)


RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


BROKEN_STEPS_ROUTE_MARKER = "Argument order does not match type"


# A connect gets at most this much of the request timeout: an address that does not
# answer the handshake is usually a wrong LETTA_BASE_URL or a firewall.
MAX_CONNECT_TIMEOUT = 10.0


def segment(value: str) -> str:
    """``value`` (an id Letta returned) as one path segment, whatever it holds: ``/``,
    ``?``, ``#``, ``%`` and spaces percent-encoded, and ``.``/``..`` too, which a URL
    parser would otherwise resolve away."""
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    return encoded


class LettaClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        project: str | None = None,
        timeout: float = 30.0,
        max_connections: int = 8,
        max_rps: float = 0.0,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[str, int | None], None] | None = None,
    ) -> None:
        """``timeout``: per attempt; ``deadline``: per call, all attempts and waits
        included (default: the retry policy's, 120 s). ``sleep`` and ``clock`` are the
        retry policy's, replaceable in tests."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self._base = base_url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": f"letta-otel/{__version__}"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if project:
            headers["X-Project"] = project
        self._headers = headers
        self._timeout = timeout
        self._request_timeout = self._attempt_timeout(timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        policy = retry or RetryPolicy()
        if deadline is not None:
            policy = RetryPolicy(policy.attempts, deadline, policy.backoff)
        if policy.deadline <= 0 or policy.attempts < 1:
            raise ValueError("the retry policy needs at least one attempt and a deadline > 0")
        self._retry = policy
        self._sleep = sleep
        self._clock = clock
        self.limiter = RateLimiter(max_rps)
        self.invalid_records: list[InvalidRecord] = []
        self.requests_made = 0
        # Told of every failed attempt (retried or not): error kind, HTTP status if any.
        self.on_error = on_error

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> LettaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- typed endpoints ----------------------------------------------------------

    async def list_steps(
        self,
        *,
        after: str | None = None,
        start_date: datetime | None = None,
        limit: int = 200,
        order: str = "asc",
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[list[Step], list[str]]:
        """One page of ``GET /v1/steps/``: the valid steps and every raw id (for cursors)."""
        params: dict[str, Any] = {"order": order, "limit": limit, **(extra or {})}
        if after:
            params["after"] = after
        if start_date:
            params["start_date"] = start_date.isoformat()
        try:
            body = await self._get_json("/v1/steps/", params, list_decoder(Step))
        except LettaError as exc:
            if exc.status == 400 and BROKEN_STEPS_ROUTE_MARKER in str(exc):
                raise StepsRouteBroken(str(exc), status=400, path=exc.path) from None
            raise
        return self._parse_list(body, Step, "step")

    async def get_step(self, step_id: str) -> Step | None:
        return await self._get_model(f"/v1/steps/{segment(step_id)}", Step)

    async def get_trace(self, step_id: str, *, lean: bool = False) -> ProviderTrace | None:
        """The step's provider trace; 200 with ``null`` until the background writer
        stores it (or never). ``lean``: without the request's long values (the prompt),
        for when content is not captured (see :func:`lean_trace_json`)."""
        decode = lean_trace if lean else full_trace
        return await self._get_model(f"/v1/steps/{segment(step_id)}/trace", ProviderTrace, decode)

    async def get_metrics(self, step_id: str) -> StepMetrics | None:
        return await self._get_model(f"/v1/steps/{segment(step_id)}/metrics", StepMetrics)

    async def get_messages(self, step_id: str) -> list[Message]:
        try:
            body = await self._get_json(
                f"/v1/steps/{segment(step_id)}/messages", {"limit": 1000}, list_decoder(Message)
            )
        except LettaNotFound:
            return []
        return self._parse_list(body, Message, "message")[0]

    async def get_run(self, run_id: str) -> Run | None:
        return await self._get_model(f"/v1/runs/{segment(run_id)}", Run)

    async def list_runs(self, params: Mapping[str, Any]) -> tuple[list[Run], list[str]]:
        body = await self._get_json("/v1/runs/", params, list_decoder(Run))
        return self._parse_list(body, Run, "run")

    async def list_run_steps(
        self, run_id: str, *, after: str | None = None, limit: int = 100
    ) -> tuple[list[Step], list[str]]:
        params: dict[str, Any] = {"order": "asc", "limit": limit}
        if after:
            params["after"] = after
        try:
            body = await self._get_json(
                f"/v1/runs/{segment(run_id)}/steps", params, list_decoder(Step)
            )
        except LettaNotFound:
            return [], []
        return self._parse_list(body, Step, "step")

    async def get_agent(self, agent_id: str) -> Agent | None:
        return await self._get_model(f"/v1/agents/{segment(agent_id)}", Agent)

    async def health(self) -> dict[str, Any]:
        body = await self._get_json("/v1/health/", {})
        return body if isinstance(body, dict) else {}

    # --- plumbing -----------------------------------------------------------------

    async def _get_model(
        self,
        path: str,
        model: type[M],
        decode: Callable[[bytes], M | None] | None = None,
    ) -> M | None:
        """``model`` from a JSON document (None for ``null`` or 404): straight from the
        bytes unless ``decode`` says how."""
        try:
            found: M | None = await self._get_json(
                path, {}, decode or json_decoder(model | None).decode
            )
        except LettaNotFound:
            return None
        except ModelError as exc:
            raise LettaError(
                f"GET {path}: response does not look like a {model.__name__}: {describe(exc)}",
                path=path,
            ) from None
        return found

    def _parse_list(self, body: Any, model: type[M], kind: str) -> tuple[list[M], list[str]]:
        items, ids, invalid = parse_list(body, model, kind)
        for record in invalid:
            self.invalid_records.append(record)
            log.warning(
                "skipping invalid %s %s from Letta: %s", kind, record.record_id, record.error
            )
        return items, ids

    async def _get_json(
        self,
        path: str,
        params: Mapping[str, Any],
        decode: Callable[[bytes], Any] = orjson.loads,
    ) -> Any:
        """``path`` (already percent-encoded) with ``params``, decoded by ``decode``,
        retried by the policy within one deadline."""
        query = _flatten(params)
        target = self._base + path + (f"?{urlencode(query)}" if query else "")
        url = URL(target, encoded=True)  # as built: no re-quoting, no dot-segment folding
        deadline = Deadline(self._retry.deadline, self._clock)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            detail = error.detail if isinstance(error, Retryable) else str(error)
            log.debug("GET %s: %s; retrying in %.2fs", path, detail, state.upcoming_sleep)

        def give_up(state: RetryCallState) -> NoReturn:
            raise LettaUnavailable(
                f"GET {path} {why_given_up(state, self._retry, deadline)}", path=path
            )

        retrying = self._retry.retrying(
            deadline, sleep=self._sleep, before_sleep=before_sleep, give_up=give_up
        )
        try:
            return await retrying(self._attempt, url, path, decode, deadline)
        finally:
            # tenacity keeps the call's last actions, bound methods of the retrying
            # object, in that object: a reference cycle per call, which the daemon's
            # rare young-generation collections (letta_otel.eventloop.tune_gc) let pile up
            # (about 5 MB of peak RSS in benchmarks.bench). Emptied, refcounting frees it.
            retrying.iter_state.reset()

    async def _attempt(
        self, url: URL, path: str, decode: Callable[[bytes], Any], deadline: Deadline
    ) -> Any:
        """One try: the decoded body, or :class:`Retryable`, or a :class:`LettaError`
        that no retry will fix. Every failure is reported to ``on_error`` first."""
        if self.limiter.enabled:  # off by default: no coroutine call per request
            await self.limiter.acquire()
        self.requests_made += 1
        response = await self._fetch(url, path, deadline)
        status = response.status
        if status < 300:
            try:
                return decode(response.body)
            except ModelError:
                raise  # JSON, but not of the expected shape: the caller's to report
            except ValueError:  # orjson's JSONDecodeError, msgspec's DecodeError
                self._report("invalid_json", status)
                raise Retryable(f"HTTP {status} with a body that is not valid JSON") from None
        self._report(str(status), status)
        if status in RETRYABLE_STATUS:
            hint, source = retry_hint_and_source(response)
            raise Retryable(
                f"HTTP {status}{describe_body(response)}", hint=hint, hint_source=source
            )
        raise error_for(status, path, response)

    async def _fetch(self, url: URL, path: str, deadline: Deadline) -> RawResponse:
        """The whole answer, or the failure below HTTP as :class:`Retryable` (or a
        :class:`LettaError` when retrying cannot help), reported to ``on_error``."""
        session = self._session or self._open(path)
        left = deadline.remaining()
        # Each attempt gets the request timeout, or what is left of the call's deadline.
        timeout = self._request_timeout if left >= self._timeout else self._attempt_timeout(left)
        try:
            async with session.get(url, timeout=timeout, max_redirects=MAX_REDIRECTS) as answer:
                body = await answer.read()
                headers = answer.headers
                if conflict := framing_conflict(headers.getall("Content-Length", ())):
                    answer.close()  # the connection, too: what follows on it is unknown
                    raise aiohttp.ClientPayloadError(conflict)
                return RawResponse(answer.status, headers, body)
        except TimeoutError:  # aiohttp's timeouts are TimeoutErrors too: first
            self._report("timeout", None)
            raise Retryable("timed out") from None
        except RedirectRefused as exc:
            self._report("connection", None)
            raise LettaError(f"GET {path}: {exc}", path=path) from None
        except aiohttp.TooManyRedirects:
            self._report("connection", None)
            raise LettaError(
                f"GET {path}: more than {MAX_REDIRECTS - 1} redirects", path=path
            ) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            self._report("connection", None)
            raise LettaError(
                f"GET {path}: the TLS certificate of {exc.host} is not trusted "
                f"({exc.certificate_error}); if it is issued by a private CA, point "
                "SSL_CERT_FILE or SSL_CERT_DIR at that CA's certificate",
                path=path,
            ) from None
        except aiohttp.ClientError as exc:
            self._report("connection", None)
            raise Retryable(describe_failure(exc)) from None

    def _open(self, path: str) -> aiohttp.ClientSession:
        try:
            session, proxy = open_session(
                self._base,
                headers=self._headers,
                timeout=self._request_timeout,
                max_connections=self._max_connections,
            )
        except TransportConfigError as exc:
            raise LettaError(f"GET {path}: {exc}", path=path) from None
        if proxy is not None:
            log.info("Letta requests go through the proxy %s", describe_proxy(proxy))
        self._session = session
        return session

    def _attempt_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        seconds = max(seconds, 0.001)
        return aiohttp.ClientTimeout(total=seconds, connect=min(seconds, MAX_CONNECT_TIMEOUT))

    def _report(self, kind: str, status: int | None) -> None:
        if self.on_error is not None:
            self.on_error(kind, status)


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values: Sequence[Any] = value if isinstance(value, list | tuple) else [value]
        for item in values:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs
