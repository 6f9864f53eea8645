"""LettaClient against the fake Letta server over real sockets, with injected faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from letta_otel.letta.client import (
    LettaAuthError,
    LettaClient,
    LettaError,
    RetryPolicy,
    StepsRouteBroken,
    _retry_hint,
)
from letta_otel.letta.http import RawResponse
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
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


def test_retry_after_and_quota_reset_are_honoured(server: FakeLettaServer) -> None:
    slept: list[float] = []

    async def go() -> None:
        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)

        policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=30)
        async with LettaClient(server.base_url, retry=policy, sleep=fake_sleep) as client:
            await client.get_step(STEP)

    server.faults.add(rf"^/v1/steps/{STEP}$", "429", count=1, retry_after=7)
    asyncio.run(go())
    assert slept == [7]


def test_quota_reset_in_the_body_is_a_hint_too() -> None:
    body = RawResponse(429, {}, b'{"reasons": ["x"], "timeToQuotaResetMs": 2500}')
    assert _retry_hint(body) == pytest.approx(2.5)
    dated = RawResponse(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"")
    assert _retry_hint(dated) == 0.0
    assert _retry_hint(RawResponse(503, {}, b"<html>")) is None


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
