"""Async Letta REST client: auth, one retry policy with a deadline, typed results.

Only transport concerns live here; which steps are new is ``discovery``'s job.
Requests go through one aiohttp session (:mod:`letta_otel.letta.session`: TLS,
proxy, same-origin redirects, the connection pool) and are retried by
:class:`letta_otel.retry.RetryPolicy`: every failed attempt is reported to
``on_error``; a timeout, a reset, a malformed or cut-short answer, invalid JSON and
HTTP 408/409/425/429/5xx are retried, inside one deadline for the whole call; 401/403
and other 4xx are not. A list response with a bad record is validated item by item,
so that record is reported with its id and skipped while the rest of the page is used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import msgspec
import orjson
from tenacity import RetryCallState
from yarl import URL

from letta_otel import __version__
from letta_otel.letta.models import (
    Agent,
    LettaModel,
    Message,
    ModelError,
    ProviderTrace,
    Run,
    Step,
    StepMetrics,
    convert,
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
    "RawResponse",
    "RetryPolicy",
    "StepsRouteBroken",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=LettaModel)

# A provider trace's request holds the whole prompt, messages and tool schemas: about
# 10 KB of a 13 KB trace. Only content capture reads them; without it a request value
# longer than this is left undecoded (the sampling parameters are a few bytes each).
LEAN_REQUEST_VALUE_BYTES = 1024

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
BROKEN_STEPS_ROUTE_MARKER = "Argument order does not match type"
# A connect gets at most this much of the request timeout: an address that does not
# answer the handshake is usually a wrong LETTA_BASE_URL or a firewall.
MAX_CONNECT_TIMEOUT = 10.0


class LettaError(Exception):
    """A Letta request failed for good (after retries where retrying made sense)."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class LettaAuthError(LettaError):
    """401/403: retrying will not help; the operator must fix the key or project."""


class LettaNotFound(LettaError):
    pass


class StepsRouteBroken(LettaError):
    """``GET /v1/steps/`` answers 400 as on self-hosted Letta 0.12-0.16.8."""


@dataclass(slots=True)
class RawResponse:
    """An HTTP answer, read whole: what the error messages and retry hints look at."""

    status: int
    headers: Mapping[str, str]  # case-insensitive from aiohttp; lower-case names in tests
    body: bytes


@dataclass
class InvalidRecord:
    """An item of a list response that failed validation."""

    kind: str
    record_id: str | None
    error: str


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
            raise LettaError(f"GET {path} {why_given_up(state, self._retry, deadline)}", path=path)

        retrying = self._retry.retrying(
            deadline, sleep=self._sleep, before_sleep=before_sleep, give_up=give_up
        )
        try:
            return await retrying(self._attempt, url, path, decode, deadline)
        finally:
            # tenacity keeps the call's last actions, bound methods of the retrying
            # object, in that object: a reference cycle per call, which the daemon's
            # rare young-generation collections (letta_otel._loop.tune_gc) let pile up
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
            hint, source = _retry_hint_and_source(response)
            raise Retryable(
                f"HTTP {status}{_describe_body(response)}", hint=hint, hint_source=source
            )
        raise _error_for(status, path, response)

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
                if conflict := _framing_conflict(headers.getall("Content-Length", ())):
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
            raise Retryable(_describe_failure(exc)) from None

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


_OBJECT_OF_RAW = msgspec.json.Decoder(dict[str, msgspec.Raw] | None)
_ABSENT = msgspec.Raw(b"")


class _LeanTrace(msgspec.Struct):
    """The fields of a trace document a :class:`ProviderTrace` reads, found in one pass.

    Strings and timestamps are decoded here (msgspec and orjson agree on every string
    both accept, and reject the same ones; a timestamp is read by the same msgspec
    parser the model uses); anything else stays raw for orjson. A value of another type
    fails msgspec's validation and the document takes the general path.
    """

    request_json: dict[str, msgspec.Raw] | None = None
    response_json: msgspec.Raw = _ABSENT
    llm_config: msgspec.Raw = _ABSENT
    latency_ms: msgspec.Raw = _ABSENT
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    step_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    agent_tags: list[str] | None = None
    call_type: str | None = None
    source: str | None = None


_LEAN_TRACE = msgspec.json.Decoder(_LeanTrace)
_LEAN_RAW_FIELDS = _LeanTrace.__struct_fields__[1:4]
_LEAN_DECODED_FIELDS = _LeanTrace.__struct_fields__[4:]


class AllValid(list[M]):
    """A list response whose every item decoded as its model (the common case)."""


@cache  # one per model, like json_decoder's
def list_decoder(model: type[M]) -> Callable[[bytes], AllValid[M] | Any]:
    """Decodes a list response for :func:`parse_list`: straight into ``model`` items
    (:class:`AllValid`) when every item fits, else into plain JSON, which
    :func:`parse_list` then goes through item by item."""
    typed = json_decoder(list[model]).decode  # type: ignore[valid-type]

    def decode(body: bytes) -> AllValid[M] | Any:
        try:
            return AllValid(typed(body))
        except ModelError:  # some item (or the whole) has another shape
            return orjson.loads(body)

    return decode


def parse_list(
    body: Any, model: type[M], kind: str
) -> tuple[list[M], list[str], list[InvalidRecord]]:
    """A list response of ``kind`` records (:func:`list_decoder`'s result, or any
    decoded JSON): the valid ones, every raw id (for cursors) and the invalid ones
    (with their id and why)."""
    if isinstance(body, AllValid):
        valid: list[M] = list(body)
        return valid, [i for item in valid if isinstance(i := getattr(item, "id", None), str)], []
    if not isinstance(body, list):
        raise LettaError(f"expected a JSON list of {kind}s, got {type(body).__name__}")
    ids = [
        raw_id for raw in body if isinstance(raw, dict) and isinstance(raw_id := raw.get("id"), str)
    ]
    # Item by item, so that the rest is kept: a response whose every item fits was
    # already decoded in one call (AllValid), so the whole list is not tried again here.
    items: list[M] = []
    invalid: list[InvalidRecord] = []
    for raw in body:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            items.append(convert(model, raw))
        except ModelError as exc:
            invalid.append(
                InvalidRecord(kind, raw_id if isinstance(raw_id, str) else None, describe(exc))
            )
    return items, ids, invalid


def full_trace(body: bytes) -> ProviderTrace | None:
    """A provider trace document, whole (content capture reads the prompt)."""
    doc = orjson.loads(body)
    return None if doc is None else convert(ProviderTrace, doc)


def lean_trace(body: bytes) -> ProviderTrace | None:
    """A provider trace without the request's long values: :func:`lean_trace_fields`."""
    fields = lean_trace_fields(body)
    if type(fields) is _Typed:
        return ProviderTrace(**fields)  # already what validation would give: no copy
    return None if fields is None else convert(ProviderTrace, fields)


class _Typed(dict[str, Any]):
    """Fields each of which already has its ``ProviderTrace`` type (validation would
    return them unchanged), so the model is built from them directly."""


def lean_trace_fields(body: bytes) -> Any:
    """What ``convert(ProviderTrace, lean_trace_json(body))`` reads, in one scan.

    :func:`lean_trace_json` scans a trace twice (the document, then its request) and
    keeps every top-level key; this finds the model's fields and the request's values
    in one msgspec pass and skips the rest. Each raw value kept is parsed by orjson in
    place (a memoryview: no copy), as in the full parse. A null field is left out, as
    the model reads an absent one the same way. Whatever this pass will not take (a
    null document, a field of another type, malformed JSON) goes to
    :func:`lean_trace_json`. As there, what is skipped unread (other keys, long request
    values) is only checked for JSON syntax: not for UTF-8, nor for numbers orjson
    would refuse (beyond the float range), which then no longer fail the trace.
    """
    try:
        doc = _LEAN_TRACE.decode(body)
    except ValueError:  # msgspec's DecodeError, ValidationError and UnicodeDecodeError
        return lean_trace_json(body)
    loads = orjson.loads
    fields: dict[str, Any] = {}
    for name in _LEAN_RAW_FIELDS:
        if raw := getattr(doc, name):
            fields[name] = loads(memoryview(raw))
    request = doc.request_json
    if request is not None:
        fields["request_json"] = {
            k: loads(memoryview(v))
            for k, v in request.items()
            if len(v) <= LEAN_REQUEST_VALUE_BYTES
        }
    for name in _LEAN_DECODED_FIELDS:
        if (value := getattr(doc, name)) is not None:
            fields[name] = value
    return _Typed(fields) if _typed(fields) else fields


def _typed(fields: dict[str, Any]) -> bool:
    """Whether the values orjson parsed have their model types already (the usual case:
    objects, and a float or a small int latency, made a float here as validation would)."""
    for name in ("response_json", "llm_config"):
        value = fields.get(name)
        if value is not None and type(value) is not dict:
            return False
    latency = fields.get("latency_ms")
    if latency is None or type(latency) is float:
        return True
    if type(latency) is int and -(2**53) <= latency <= 2**53:
        fields["latency_ms"] = float(latency)
        return True
    return False


def lean_trace_json(body: bytes) -> Any:
    """A provider trace document without the request values longer than
    ``LEAN_REQUEST_VALUE_BYTES``, which are skipped over instead of being turned into
    Python objects (most of a trace's parsing cost).

    msgspec only finds where each value lies; the values kept are put back together
    and parsed by orjson, as in the full parse, so each comes out exactly the same.
    Anything msgspec will not split (not an object, say) goes to the full parse,
    which decides as it would have.
    """
    try:
        top = _OBJECT_OF_RAW.decode(body)
        if top is None:
            return None
        fields: dict[str, msgspec.Raw | bytes] = dict(top)
        raw_request = top.get("request_json")
        if raw_request is not None:
            request = _OBJECT_OF_RAW.decode(raw_request)
            if request is not None:
                fields["request_json"] = _object(
                    (k, v) for k, v in request.items() if len(v) <= LEAN_REQUEST_VALUE_BYTES
                )
    except ValueError:  # msgspec's DecodeError (and ValidationError: another shape), or
        # UnicodeDecodeError (a key that is not UTF-8): the full parse reports it
        return orjson.loads(body)
    return orjson.loads(_object(fields.items()))


def _object(items: Iterable[tuple[str, msgspec.Raw | bytes]]) -> bytes:
    """A JSON object of already-encoded values."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + bytes(v) for k, v in items) + b"}"


def _flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values: Sequence[Any] = value if isinstance(value, list | tuple) else [value]
        for item in values:
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


def _json_or_none(response: RawResponse) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def _retry_hint(response: RawResponse) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` or ``timeToQuotaResetMs``."""
    return _retry_hint_and_source(response)[0]


def _retry_hint_and_source(response: RawResponse) -> tuple[float | None, str]:
    """:func:`_retry_hint`, and where it came from (for the error when it is too long)."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return float(header), "Retry-After"
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
                return max((when - datetime.now(when.tzinfo)).total_seconds(), 0.0), "Retry-After"
            except (TypeError, ValueError):
                pass
    body = _json_or_none(response)
    if isinstance(body, dict):
        reset = body.get("timeToQuotaResetMs")
        if isinstance(reset, int | float) and not isinstance(reset, bool):
            return float(reset) / 1000, "timeToQuotaResetMs"
    return None, ""


def _framing_conflict(lengths: Sequence[str]) -> str:
    """Why an answer with two different ``Content-Length`` values is refused (RFC 9112
    6.3), or "" for one that has at most one.

    aiohttp's C parser rejects them itself; its pure-Python one (PyPy, or
    ``AIOHTTP_NO_EXTENSIONS``) reads the first and would take a cut body as whole.
    """
    if len(lengths) > 1 and len(set(lengths)) > 1:
        return f"conflicting Content-Length headers {lengths}"
    return ""


def _describe_failure(exc: aiohttp.ClientError) -> str:
    """What went wrong below HTTP, in one line (never a URL's credentials)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed before an answer"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"the proxy refused the tunnel (HTTP {exc.status} {exc.message})"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer's body is incomplete or malformed ({_first_line(str(exc))})"
    if isinstance(exc, aiohttp.ClientResponseError):  # the parser refused the answer
        return f"malformed HTTP answer ({_first_line(exc.message)})"
    if isinstance(exc, aiohttp.ClientOSError):
        return f"connection failed ({exc.strerror or type(exc).__name__})"
    return f"request failed ({type(exc).__name__})"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].rstrip(":")[:200]


def _describe_body(response: RawResponse) -> str:
    ctype = response.headers.get("content-type", "")
    if "html" in ctype:
        return " (an HTML error page, probably from a proxy)"
    return ""


def _detail(response: RawResponse) -> str:
    body = _json_or_none(response)
    if body is None and response.body.strip() != b"null":
        return response.body[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:200]


def _error_for(status: int, path: str, response: RawResponse) -> LettaError:
    detail = _detail(response)
    if status in (401, 403):
        return LettaAuthError(
            f"GET {path}: HTTP {status} — Letta rejected the credentials; check LETTA_API_KEY "
            f"and LETTA_PROJECT ({detail[:120]})",
            status=status,
            path=path,
        )
    if status == 404:
        return LettaNotFound(f"GET {path}: HTTP 404: {detail}", status=404, path=path)
    return LettaError(f"GET {path}: HTTP {status}: {detail}", status=status, path=path)
