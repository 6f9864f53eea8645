"""LettaClient against the fake Letta server over real sockets, with injected faults."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from letta_otel.letta.answers import _retry_hint
from letta_otel.letta.client import (
    LettaAuthError,
    LettaClient,
    LettaError,
    RawResponse,
    StepsRouteBroken,
)
from letta_otel.retry import Backoff, RetryPolicy
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.letta.servers import ScriptedServer, ok

FAST = RetryPolicy(attempts=4, backoff=Backoff(initial=0.01, maximum=0.05, jitter=0.5))
STEP = "step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052"


@pytest.fixture
def server() -> Iterator[FakeLettaServer]:
    with FakeLettaServer(FakeLettaData.from_samples()) as srv:
        yield srv


def settled_count(server: FakeLettaServer, pattern: str, expected: int) -> int:
    """The fake logs a request after writing its answer: give the last one a moment."""
    deadline = time.monotonic() + 2
    while server.count(pattern) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.count(pattern)


def call(
    server: FakeLettaServer, fn: str, *args: object, retry: RetryPolicy = FAST, **kwargs: object
) -> object:
    async def go() -> object:
        async with LettaClient(server.base_url, retry=retry, timeout=2) as client:
            return await getattr(client, fn)(*args, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize(
    "kind", ["429", "500", "503", "502html", "malformed", "truncated", "reset"]
)
def test_transient_faults_are_retried(server: FakeLettaServer, kind: str) -> None:
    server.faults.add(rf"^/v1/steps/{STEP}$", kind, count=2, retry_after=0)
    step = call(server, "get_step", STEP)
    assert getattr(step, "id", None) == STEP
    assert settled_count(server, rf"^/v1/steps/{STEP}$", 3) == 3


def test_timeouts_are_retried(server: FakeLettaServer) -> None:
    server.faults.add(rf"^/v1/steps/{STEP}$", "timeout", count=1, seconds=3)
    step = call(server, "get_step", STEP)
    assert getattr(step, "id", None) == STEP


class FakeTime:
    """The retry policy's clock and sleep: a sleep moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def timed_call(
    server: FakeLettaServer, t: FakeTime, fn: str, *args: object, **options: object
) -> object:
    async def go() -> object:
        options.setdefault("retry", RetryPolicy(attempts=5, backoff=Backoff(0.01, 30, 0.5)))
        async with LettaClient(
            server.base_url,
            sleep=t.sleep,
            clock=t.clock,
            timeout=2,
            **options,  # type: ignore[arg-type]
        ) as client:
            return await getattr(client, fn)(*args)

    return asyncio.run(go())


def test_retry_after_is_honoured(server: FakeLettaServer) -> None:
    t = FakeTime()
    server.faults.add(rf"^/v1/steps/{STEP}$", "429", count=1, retry_after=7)
    assert getattr(timed_call(server, t, "get_step", STEP), "id", None) == STEP
    assert t.slept == [7]


def test_quota_reset_in_a_429_body_is_honoured(server: FakeLettaServer) -> None:
    t = FakeTime()
    server.faults.add(rf"^/v1/steps/{STEP}$", "429", count=1, body={"timeToQuotaResetMs": 2500})
    assert getattr(timed_call(server, t, "get_step", STEP), "id", None) == STEP
    assert t.slept == [2.5]


def test_a_hint_past_the_deadline_ends_the_call_at_once(server: FakeLettaServer) -> None:
    t = FakeTime()
    server.faults.add(rf"^/v1/steps/{STEP}$", "429", count=-1, retry_after=300)
    with pytest.raises(LettaError) as info:
        timed_call(server, t, "get_step", STEP)
    assert t.slept == []  # not a second of it slept
    assert settled_count(server, rf"^/v1/steps/{STEP}$", 1) == 1
    message = str(info.value)
    assert "failed after 1 attempt: HTTP 429" in message
    assert "asked to wait 300.0s (Retry-After), past this call's 120s deadline" in message


def test_hints_are_honoured_while_they_fit_in_the_deadline(server: FakeLettaServer) -> None:
    t = FakeTime()
    server.faults.add(rf"^/v1/steps/{STEP}$", "503", count=-1, body={"timeToQuotaResetMs": 40_000})
    with pytest.raises(LettaError, match=r"40.0s \(timeToQuotaResetMs\), past this call's 100s"):
        timed_call(server, t, "get_step", STEP, deadline=100.0)
    assert t.slept == [40, 40]  # 20 s left for the third wait of 40 s: given up
    assert settled_count(server, rf"^/v1/steps/{STEP}$", 3) == 3


def test_backoff_stops_at_the_deadline_too(server: FakeLettaServer) -> None:
    t = FakeTime()
    server.faults.add(rf"^/v1/steps/{STEP}$", "500", count=-1)
    policy = RetryPolicy(attempts=10, deadline=10.0, backoff=Backoff(2.0, 60.0))
    with pytest.raises(LettaError, match="failed after 3 attempts: HTTP 500; this call's 10s"):
        timed_call(server, t, "get_step", STEP, retry=policy)
    assert t.slept == [2.0, 4.0]  # the next, 8 s, would leave nothing of the 10 s


def test_quota_reset_in_the_body_is_a_hint_too() -> None:
    body = RawResponse(429, {}, b'{"reasons": ["x"], "timeToQuotaResetMs": 2500}')
    assert _retry_hint(body) == pytest.approx(2.5)
    dated = RawResponse(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    assert _retry_hint(dated) == 0.0
    assert _retry_hint(RawResponse(503, {}, b"<html>")) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    hint = _retry_hint(RawResponse(429, {"retry-after": later}, b""))
    assert hint is not None and 28 <= hint <= 30
    assert _retry_hint(RawResponse(429, {"retry-after": "2.5"}, b"")) == 2.5
    assert _retry_hint(RawResponse(429, {"retry-after": "soon"}, b"")) is None


def test_persistent_failure_is_reported_without_secrets(server: FakeLettaServer) -> None:
    server.faults.add(r"^/v1/runs/", "503", count=-1)

    async def go() -> None:
        async with LettaClient(server.base_url, api_key="sk-secret-999", retry=FAST) as client:
            await client.get_run("run-7b2ca31d-a6dd-495a-8310-600dc38a5dbb")

    with pytest.raises(LettaError) as info:
        asyncio.run(go())
    assert "after 4 attempts" in str(info.value) and "HTTP 503" in str(info.value)
    assert "sk-secret-999" not in str(info.value)


@pytest.mark.parametrize("kind", ["401", "403"])
def test_auth_errors_are_not_retried(server: FakeLettaServer, kind: str) -> None:
    server.faults.add(r"^/v1/runs/", kind, count=-1)
    with pytest.raises(LettaAuthError, match="LETTA_API_KEY"):
        call(server, "get_run", "run-7b2ca31d-a6dd-495a-8310-600dc38a5dbb")
    assert settled_count(server, r"^/v1/runs/", 1) == 1


def status_then_ok(status: int, times: int) -> ScriptedServer:
    """Answers ``status`` (with a JSON detail) ``times`` times, then 200."""

    def script(conn: socket.socket, request: bytes, n: int) -> bool:
        if n <= times:
            body = b'{"detail": "no such thing"}'
            conn.sendall(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        else:
            conn.sendall(ok(b'{"ok": true}'))
        return True

    return ScriptedServer(script)


def health_reporting(url: str, errors: list[tuple[str, int | None]]) -> object:
    async def go() -> object:
        async with LettaClient(
            url, retry=FAST, on_error=lambda k, s: errors.append((k, s))
        ) as client:
            return await client.health()

    return asyncio.run(go())


@pytest.mark.parametrize("status", [400, 405, 410, 413, 422, 451])
def test_other_client_errors_are_not_retried(status: int) -> None:
    errors: list[tuple[str, int | None]] = []
    with (
        status_then_ok(status, 10) as server,
        pytest.raises(LettaError, match=f"HTTP {status}: no such thing"),
    ):
        health_reporting(server.url, errors)
    assert len(server.requests) == 1
    assert errors == [(str(status), status)]


@pytest.mark.parametrize(
    "status", [408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524]
)
def test_every_retryable_status_is_retried_and_reported(status: int) -> None:
    errors: list[tuple[str, int | None]] = []
    with status_then_ok(status, 2) as server:
        assert health_reporting(server.url, errors) == {"ok": True}
    assert len(server.requests) == 3
    assert errors == [(str(status), status)] * 2


def test_bearer_and_project_headers(server: FakeLettaServer) -> None:
    server.api_key = "k-123"

    async def go() -> None:
        async with LettaClient(server.base_url, api_key="k-123", project="p1") as client:
            await client.health()

    asyncio.run(go())
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer k-123"
    assert request.headers["x-project"] == "p1"


def test_broken_steps_route_is_recognised() -> None:
    with (
        FakeLettaServer(FakeLettaData.from_samples(), steps_route="legacy400") as srv,
        pytest.raises(StepsRouteBroken),
    ):
        call(srv, "list_steps", limit=1)


def test_not_found_and_null_trace_are_none(server: FakeLettaServer) -> None:
    missing = "step-00000000-0000-4000-8000-000000000000"
    assert call(server, "get_step", missing) is None
    assert call(server, "get_trace", missing) is None
    assert call(server, "get_metrics", missing) is None


def test_one_invalid_record_does_not_sink_the_page(server: FakeLettaServer) -> None:
    server.data.patch_step(STEP, status={"not": "a string"})

    async def go() -> tuple[list[str], list[str], list[object]]:
        async with LettaClient(server.base_url, retry=FAST) as client:
            steps, raw_ids = await client.list_steps(limit=200)
            return [s.id for s in steps], raw_ids, list(client.invalid_records)

    valid, raw_ids, invalid = asyncio.run(go())
    assert STEP in raw_ids and STEP not in valid  # the cursor still moves past it
    assert len(valid) == len(raw_ids) - 1
    assert [getattr(i, "record_id", None) for i in invalid] == [STEP]


def test_the_daemons_client_takes_its_deadline_from_the_settings(
    server: FakeLettaServer,
) -> None:
    """LETTA_OTEL_LETTA_DEADLINE bounds a call: a server asking to wait past it ends the
    call at once, naming the deadline the setting gave."""
    from letta_otel.assemble import build_client  # noqa: PLC0415
    from letta_otel.config import Settings  # noqa: PLC0415 - only this test builds one

    server.faults.add(rf"^/v1/steps/{STEP}$", "429", count=-1, retry_after=30)
    settings = Settings(letta_base_url=server.base_url, letta_timeout=2, letta_deadline=7)

    async def go() -> None:
        client = build_client(settings)
        try:
            await client.get_step(STEP)
        finally:
            await client.aclose()

    started = time.monotonic()
    with pytest.raises(LettaError, match=r"past this call's 7s deadline"):
        asyncio.run(go())
    assert time.monotonic() - started < 5
