"""A daemon started before its collector or Letta: it waits, not ready, then exports.

``letta-otel run`` as a real process against the fake Letta API and the real OTLP
receiver on 127.0.0.1. Nothing listens at first where the daemon is pointed (the
receiver paused on its ports, or a port that forwards to the fake Letta only once
opened); the daemon must stay up, answer ``/readyz`` 503 with the reason, log one line
per back-off step, commit nothing, and export every step exactly once when the
endpoint comes up. What waiting cannot fix still ends it at once with exit 2, and the
commands people and CI run (``run --once``, ``backfill``) still stop at once.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import BridgeEnv, spawn
from tests.e2e.faults_helpers import (
    Daemon,
    assert_exactly_once,
    delivered,
    measure,
    running_daemon,
    state_rows,
    wait_until,
)
from tests.e2e.test_daemon_process import finish
from tests.fakes.letta_api import FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver

POLL = 0.2  # FAST_ENV's poll interval: the first back-off steps are 0.4, 0.8, 1.6 s
# The back-off after the n-th failed try (letta_otel.retry.cycle_delay): twice the poll
# interval, doubling, less up to 20 % of jitter, at most a minute.
JITTER = 0.2
MAX_DELAY = 60.0

# A Letta that does not answer costs each try its client's retries: kept short here.
SHORT_LETTA_CALLS = {"LETTA_OTEL_LETTA_TIMEOUT": "1", "LETTA_OTEL_LETTA_DEADLINE": "1.5"}


@pytest.fixture
def steps_route() -> str:
    """The steps route only (the conftest also runs the runs fallback): start-up
    chooses the discovery the same way for both, and one route keeps this file quick."""
    return "ok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readyz(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)


def ready_gauge(port: int) -> float:
    """``letta_otel.ready`` as /metrics serves it."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("letta_otel_ready")
    ]
    assert len(values) == 1, values
    return values[0]


def log_entries(daemon: Daemon) -> list[dict[str, Any]]:
    """The daemon's JSON log lines (whole ones: it may be writing the last)."""
    text = daemon.log()
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return [json.loads(line) for line in lines if line.startswith("{")]


def waiting_entries(daemon: Daemon) -> list[dict[str, Any]]:
    return [e for e in log_entries(daemon) if e.get("event") == "waiting"]


def checkpoint(state_path: Path) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Steps, runs and meta keys of the state file (read beside the running daemon)."""
    with contextlib.closing(sqlite3.connect(state_path, timeout=10)) as db:
        meta = {str(k) for (k,) in db.execute("SELECT key FROM meta")}
    return state_rows(state_path), state_rows(state_path, "runs"), meta


def assert_one_line_per_back_off_step(entries: list[dict[str, Any]], what: str) -> None:
    """Each failed try is one WARNING, numbered 1, 2, 3..., announcing the back-off the
    retry policy gives that try, and the next line comes no sooner than announced."""
    assert len(entries) >= 2, entries
    assert [e["attempt"] for e in entries] == list(range(1, len(entries) + 1))
    for entry in entries:
        assert entry["level"] == "WARNING"
        assert entry["waiting_for"] == what
        assert entry["message"].startswith(f"waiting for {what} ({entry['error']}); next try in ")
        full = min(MAX_DELAY, 2 * POLL * 2 ** (entry["attempt"] - 1))
        assert (1 - JITTER) * full - 1e-3 <= entry["next_try_s"] <= full + 1e-3, entry
    for before, after in itertools.pairwise(entries):
        gap = (
            datetime.fromisoformat(after["time"]) - datetime.fromisoformat(before["time"])
        ).total_seconds()
        assert gap >= before["next_try_s"] - 0.002, (before, after)  # ms timestamps


class LatePort:
    """A loopback port where nothing listens until :meth:`open`; then each connection
    is forwarded to ``upstream``: a Letta that comes up, after the daemon, at the address
    the daemon was given (the fake Letta itself binds a fresh port whenever it starts)."""

    def __init__(self, upstream: int) -> None:
        self.port = free_port()
        self._upstream = upstream
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self._spawn(self._accept, listener)
        with self._lock:
            self._sockets.append(listener)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=5)
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def late_letta(letta: FakeLettaServer) -> Iterator[LatePort]:
    with LatePort(letta.port) as port:
        yield port


@contextmanager
def json_daemon(bridge_env: BridgeEnv, tmp_path: Path, **env: str) -> Iterator[tuple[Daemon, int]]:
    """``running_daemon`` with JSON logs (the waiting lines carry their numbers as
    fields) and a known health port."""
    port = free_port()
    with running_daemon(
        bridge_env,
        tmp_path / "daemon.log",
        LETTA_OTEL_HEALTH_ADDR=f"127.0.0.1:{port}",
        LETTA_OTEL_LOG_FORMAT="json",
        LETTA_OTEL_LOG_LEVEL="INFO",
        **env,
    ) as daemon:
        yield daemon, port


def test_daemon_started_before_its_collector_waits_then_exports_each_step_once(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    receiver.pause()  # the collector is not up yet: its ports refuse connections
    endpoint = receiver.grpc_endpoint
    what = f"the OTLP endpoint {endpoint}"
    # Metrics every 0.3 s: held while waiting, so no failed push buries the waiting lines.
    with json_daemon(bridge_env, tmp_path, OTEL_METRIC_EXPORT_INTERVAL="300") as (daemon, port):
        wait_until(lambda: len(waiting_entries(daemon)) >= 3, 30, "three back-off steps", daemon)
        reply = readyz(port)
        assert reply.status_code == 503
        assert reply.text.startswith(
            f"not ready: starting: waiting for {what} (connection refused); next try in "
        ) or reply.text.startswith(
            f"not ready: starting: waiting for {what} (connection refused); trying again now"
        ), reply.text
        assert ready_gauge(port) == 0
        # Nothing is committed while waiting: no step, no run, no cursor.
        assert checkpoint(bridge_env.state_path) == ({}, {}, {"schema_version"})
        assert letta.count(r"^/v1/") == 0  # Letta is not polled before the collector is up

        before_collector = log_entries(daemon)
        receiver.resume()  # the collector comes up on the endpoint the daemon was given
        wait_until(lambda: delivered(receiver, letta.data), 30, "every step", daemon)
        wait_until(lambda: readyz(port).status_code == 200, 30, "/readyz to turn ready", daemon)
        assert ready_gauge(port) == 1
        wait_until(lambda: "letta_otel.ready" in receiver.metrics_by_name(), 30, "a push", daemon)
        waited = waiting_entries(daemon)
        code = daemon.stop()
    assert code == 0, daemon.tail()
    assert_exactly_once(measure("collector up after the daemon", receiver, letta.data))
    assert_one_line_per_back_off_step(waited, what)
    assert {e["error"] for e in waited} == {"connection refused"}
    loud = [e for e in before_collector if e["level"] in ("WARNING", "ERROR", "CRITICAL")]
    assert loud == [e for e in before_collector if e.get("event") == "waiting"], loud
    assert "Traceback" not in daemon.log()
    started = [e for e in log_entries(daemon) if "answer after" in e["message"]]
    assert len(started) == 1 and f"after {len(waited)} failed tries" in started[0]["message"]


def test_daemon_started_before_letta_waits_then_exports_each_step_once(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    late_letta: LatePort,
    tmp_path: Path,
) -> None:
    what = f"Letta at {late_letta.url}"
    with json_daemon(bridge_env, tmp_path, LETTA_BASE_URL=late_letta.url, **SHORT_LETTA_CALLS) as (
        daemon,
        port,
    ):
        wait_until(lambda: len(waiting_entries(daemon)) >= 2, 30, "two back-off steps", daemon)
        reply = readyz(port)
        assert reply.status_code == 503
        assert reply.text.startswith(f"not ready: starting: waiting for {what} (GET /v1/steps/ ")
        assert f"cannot connect to 127.0.0.1:{late_letta.port}" in reply.text
        assert ready_gauge(port) == 0
        assert checkpoint(bridge_env.state_path) == ({}, {}, {"schema_version"})
        assert receiver.spans == []

        late_letta.open()  # Letta comes up where the daemon was told to look
        wait_until(lambda: delivered(receiver, letta.data), 30, "every step", daemon)
        wait_until(lambda: readyz(port).status_code == 200, 30, "/readyz to turn ready", daemon)
        waited = waiting_entries(daemon)
        code = daemon.stop()
    assert code == 0, daemon.tail()
    assert_exactly_once(measure("Letta up after the daemon", receiver, letta.data))
    assert_one_line_per_back_off_step(waited, what)
    # One line per try, not per request: the client's retries inside a try log at DEBUG.
    for entry in waited:
        assert entry["error"].startswith("GET /v1/steps/ failed after ")
    assert "Traceback" not in daemon.log()


def test_letta_answering_503_at_start_is_waited_for(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    overloaded = letta.faults.add(r"^/v1/", "503", count=-1)
    with json_daemon(bridge_env, tmp_path, **SHORT_LETTA_CALLS) as (daemon, port):
        wait_until(lambda: len(waiting_entries(daemon)) >= 2, 30, "two back-off steps", daemon)
        assert "HTTP 503" in readyz(port).text
        assert checkpoint(bridge_env.state_path) == ({}, {}, {"schema_version"})
        letta.faults.clear()
        wait_until(lambda: delivered(receiver, letta.data), 30, "every step", daemon)
        code = daemon.stop()
    assert code == 0, daemon.tail()
    assert overloaded.hits >= 2
    assert_exactly_once(measure("Letta 503 at start", receiver, letta.data))
    assert "Traceback" not in daemon.log()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_while_waiting_exits_0_at_once_even_mid_try(
    bridge_env: BridgeEnv, letta: FakeLettaServer, tmp_path: Path, sig: signal.Signals
) -> None:
    # Letta accepts the probe and does not answer for 30 s: the try is in flight.
    hung = letta.faults.add(r"^/v1/steps/$", "timeout", count=-1, seconds=30)
    env = bridge_env.env(LETTA_OTEL_LETTA_TIMEOUT="25", LETTA_OTEL_LETTA_DEADLINE="25")
    proc = spawn(env, "run")
    try:
        wait_until(lambda: hung.hits >= 1, 30, "the start-up probe to reach Letta")
    finally:
        proc.send_signal(sig)
    started = time.monotonic()
    code, err = finish(proc, timeout=10)  # not the 25 s the probe could still take
    assert code == 0, err[-3000:]
    assert time.monotonic() - started < 10
    assert "stopped while waiting for the OTLP endpoint and Letta" in err
    assert "Traceback" not in err
    assert checkpoint(bridge_env.state_path) == ({}, {}, {"schema_version"})


def test_rejected_credentials_at_daemon_start_exit_2_at_once(
    bridge_env: BridgeEnv, letta: FakeLettaServer
) -> None:
    letta.api_key = "the-right-key"
    code, err = finish(spawn(bridge_env.env(LETTA_API_KEY="the-wrong-key"), "run"), timeout=20)
    assert code == 2
    assert "cannot start: GET /v1/steps/: HTTP 401" in err
    assert "LETTA_API_KEY" in err and "LETTA_PROJECT" in err
    assert "the-wrong-key" not in err and "the-right-key" not in err
    assert "Traceback" not in err
    assert letta.count(r"^/v1/steps/$") == 1  # refused once: not retried, not waited for


def test_backfill_still_stops_when_nothing_listens_at_the_otlp_endpoint(
    bridge_env: BridgeEnv, receiver: OtlpReceiver
) -> None:
    receiver.pause()
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    code, err = finish(spawn(bridge_env.env(), "backfill", "--since", since), timeout=60)
    assert code == 2
    assert (
        f"cannot start: cannot reach the OTLP endpoint {receiver.grpc_endpoint} "
        "(connection refused); check OTEL_EXPORTER_OTLP_ENDPOINT" in err
    )
    assert "Traceback" not in err


def test_backfill_still_stops_when_letta_does_not_answer(
    bridge_env: BridgeEnv, late_letta: LatePort
) -> None:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    env = bridge_env.env(LETTA_BASE_URL=late_letta.url, **SHORT_LETTA_CALLS)
    code, err = finish(spawn(env, "backfill", "--since", since), timeout=60)
    assert code == 2
    assert f"cannot start: cannot reach Letta at LETTA_BASE_URL={late_letta.url}: " in err
    assert "Traceback" not in err
