"""The daemon's start-up wait, in-process: what is waited for, what ends it at once,
what it reports, and that a stop cancels even a try in flight.

The loop runs on the real event loop with the real stop signal and tiny poll intervals;
the end-to-end proofs (a real daemon, receiver and fake Letta) are in
``tests/e2e/test_startup.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource

from letta_otel.assemble import check_otlp_reachable, startup_discovery
from letta_otel.config import Settings, load_settings
from letta_otel.letta.client import (
    LettaAuthError,
    LettaClient,
    LettaError,
    LettaUnavailable,
)
from letta_otel.letta.discovery import Discovery
from letta_otel.metrics_otlp import PushCounter
from letta_otel.retry import MAX_CYCLE_DELAY
from letta_otel.startup import (
    StartupError,
    Unreachable,
    describe_connect_error,
    format_seconds,
    wait_until_reachable,
)
from letta_otel.stop import StopSignal
from letta_otel.telemetry import Telemetry

POLL = 0.005


class Reported:
    """What the wait told readiness (the Telemetry methods it calls)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.delays: list[float] = []

    def starting(self, reason: str, retry_in: float) -> None:
        self.events.append(("starting", reason))
        self.delays.append(retry_in)

    def started(self) -> None:
        self.events.append(("started",))


def refused(what: str = "the OTLP endpoint http://collector:4317") -> Unreachable:
    return Unreachable("cannot reach it", what=what, error="connection refused")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_tries_are_waited_for_with_the_cycle_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = [refused(), refused(), refused("Letta at http://letta:8283")]

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "the bridge"

    async def main() -> str | None:
        return await wait_until_reachable(
            attempt, poll_interval=POLL, readiness=reported, stop=StopSignal("stop")
        )

    reported = Reported()
    with caplog.at_level(logging.INFO, logger="letta_otel.startup"):
        assert asyncio.run(main()) == "the bridge"
    otlp = "waiting for the OTLP endpoint http://collector:4317 (connection refused)"
    letta = "waiting for Letta at http://letta:8283 (connection refused)"
    assert reported.events == [
        ("starting", otlp),
        ("starting", otlp),
        ("starting", letta),
        ("started",),
    ]
    for n, delay in enumerate(reported.delays, start=1):  # retry.cycle_delay's, jittered
        full = min(MAX_CYCLE_DELAY, 2 * POLL * 2 ** (n - 1))
        assert 0.8 * full - 1e-9 <= delay <= full + 1e-9
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"{event[1]}; next try in {format_seconds(delay)}"
        for event, delay in zip(reported.events, reported.delays, strict=False)
    ]
    assert [r.fields["attempt"] for r in warnings] == [1, 2, 3]  # type: ignore[attr-defined]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    assert "after 3 failed tries" in caplog.records[-1].getMessage()


def test_anything_else_ends_the_wait_at_once() -> None:
    reported = Reported()

    async def attempt() -> str:
        raise StartupError("GET /v1/steps/: HTTP 401 — check LETTA_API_KEY and LETTA_PROJECT")

    async def main() -> str | None:
        return await wait_until_reachable(
            attempt, poll_interval=POLL, readiness=reported, stop=StopSignal("stop")
        )

    with pytest.raises(StartupError, match="LETTA_API_KEY"):
        asyncio.run(main())
    assert reported.events == []


def test_a_stop_cancels_the_try_in_flight() -> None:
    cancelled: list[bool] = []

    async def attempt() -> str:
        try:
            await asyncio.Event().wait()  # a probe that never answers
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    async def main() -> str | None:
        stop = StopSignal("stop")
        asyncio.get_running_loop().call_later(0.05, stop.request)
        return await asyncio.wait_for(
            wait_until_reachable(attempt, poll_interval=POLL, readiness=Reported(), stop=stop),
            timeout=10,
        )

    assert asyncio.run(main()) is None
    assert cancelled == [True]


def test_a_stop_during_the_back_off_ends_the_wait() -> None:
    reported = Reported()

    async def attempt() -> str:
        raise refused()

    async def main() -> str | None:
        stop = StopSignal("stop")
        asyncio.get_running_loop().call_later(0.05, stop.request)
        return await asyncio.wait_for(  # the back-off would be 16 s or more
            wait_until_reachable(attempt, poll_interval=10, readiness=reported, stop=stop),
            timeout=10,
        )

    assert asyncio.run(main()) is None
    assert len(reported.events) == 1 and reported.delays[0] >= 16


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ConnectionRefusedError(111, "Connect call failed ('10.0.0.7', 4317)"),
            "connection refused",
        ),
        (TimeoutError(), "timed out"),
        (
            socket.gaierror(-2, "Name or service not known"),
            "the name does not resolve: Name or service not known",
        ),
        (OSError("Multiple exceptions: [Errno 111] ..."), "Multiple exceptions: [Errno 111] ..."),
    ],
)
def test_connect_errors_in_a_few_words(error: OSError, said: str) -> None:
    assert describe_connect_error(error) == said


def test_nothing_at_the_otlp_endpoint_is_unreachable_with_the_setting() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    settings = load_settings(env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    with pytest.raises(Unreachable) as info:
        asyncio.run(check_otlp_reachable(settings, attempts=1))
    assert str(info.value) == (
        f"cannot reach the OTLP endpoint {endpoint} (connection refused); check "
        "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and that the "
        "collector or backend is running"
    )
    assert (info.value.what, info.value.error) == (
        f"the OTLP endpoint {endpoint}",
        "connection refused",
    )


def letta_settings() -> Settings:
    return load_settings(env={"LETTA_BASE_URL": "http://letta:8283"})


async def failing(error: LettaError) -> Discovery:
    raise error


def test_letta_not_answering_is_waited_for() -> None:
    gave_up = LettaUnavailable("GET /v1/steps/ failed after 5 attempts: HTTP 503")
    with pytest.raises(Unreachable) as info:
        asyncio.run(startup_discovery(letta_settings(), failing(gave_up)))
    assert str(info.value) == (
        "cannot reach Letta at LETTA_BASE_URL=http://letta:8283: "
        "GET /v1/steps/ failed after 5 attempts: HTTP 503"
    )
    assert info.value.what == "Letta at http://letta:8283"
    assert info.value.error == "GET /v1/steps/ failed after 5 attempts: HTTP 503"


@pytest.mark.parametrize(
    "error",
    [
        LettaAuthError("GET /v1/steps/: HTTP 401 — check LETTA_API_KEY", status=401),
        LettaError("GET /v1/steps/: HTTP 422: bad query", status=422),
        LettaError("GET /v1/steps/: the TLS certificate of letta is not trusted"),
    ],
    ids=["rejected-credentials", "other-4xx", "untrusted-certificate"],
)
def test_letta_refusing_us_is_not_waited_for(error: LettaError) -> None:
    with pytest.raises(StartupError) as info:
        asyncio.run(startup_discovery(letta_settings(), failing(error)))
    assert not isinstance(info.value, Unreachable)


def test_the_client_gives_up_on_a_closed_port_as_unavailable() -> None:
    async def probe() -> None:
        async with LettaClient(
            f"http://127.0.0.1:{closed_port()}", timeout=0.5, deadline=0.5
        ) as client:
            await client.list_steps(limit=1)

    with pytest.raises(LettaUnavailable, match=r"cannot connect to 127\.0\.0\.1"):
        asyncio.run(probe())


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.32, "0.32s"), (0.4, "0.4s"), (8.27, "8.3s"), (42.4, "42s")]
)
def test_waits_are_shown_to_two_digits(seconds: float, shown: str) -> None:
    assert format_seconds(seconds) == shown


def test_otlp_metric_pushes_wait_with_start_up() -> None:
    telemetry = Telemetry(resource=Resource({}), poll_interval=1, ready_intervals=2)
    results: list[bool] = []
    pushed: list[int] = []
    telemetry.pushes = [PushCounter(results.append)]

    def push() -> MetricExportResult:
        pushed.append(1)
        return MetricExportResult.SUCCESS

    try:
        telemetry.starting("waiting for the OTLP endpoint http://c:4317 (connection refused)", 1)
        assert telemetry.pushes[0].export(push) is MetricExportResult.SUCCESS
        assert (pushed, results) == ([], [])  # held: not sent, not counted as an attempt
        telemetry.started()
        telemetry.pushes[0].export(push)
        assert (pushed, results) == ([1], [True])
    finally:
        telemetry.shutdown()
