"""The daemon as a real process: signals, exit codes, the state lock, start-up errors."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import BridgeEnv, spawn, step_spans
from tests.fakes.letta_api import FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def finish(proc: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"process did not exit; stderr:\n{err[-3000:]}") from None
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_daemon_follows_new_work_and_stops_cleanly(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, sig: signal.Signals
) -> None:
    # The failed streamed step never gets a provider trace: it waits out the grace.
    proc = spawn(bridge_env.env(LETTA_OTEL_ENRICH_GRACE="1s"), "run")
    try:
        wait_until(lambda: len(receiver.spans) >= 43, 30, "the first 43 spans")
        new_run = letta.data.add_run("tool_two_steps")
        wait_until(
            lambda: any(
                s.attributes.get("letta.run.id") == new_run
                for s in receiver.spans
                if s.name.startswith("invoke_agent")
            ),
            30,
            "the new run's root span",
        )
    finally:
        proc.send_signal(sig)
    code, err = finish(proc)
    assert code == 0, err[-3000:]
    assert "stop requested" in err
    assert "Traceback" not in err
    exported = [s.attributes["letta.step.id"] for s in step_spans(receiver.spans)]
    assert sorted(exported) == sorted(set(exported))
    assert set(exported) == set(letta.data.expected_terminal_step_ids())
    with sqlite3.connect(bridge_env.state_path) as db:
        states = dict(db.execute("SELECT step_id, state FROM steps").fetchall())
    assert {k for k, v in states.items() if v == "exported"} == set(exported)


def test_bad_configuration_is_one_report_and_exit_2(tmp_path: Path) -> None:
    proc = spawn(
        {
            "LETTA_BASE_URL": "ftp://nowhere",
            "LETTA_OTEL_POLL_INTERVAL": "soon",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
            "LETTA_OTEL_STATE_PATH": str(tmp_path / "missing-dir" / "state.db"),
            "LETTA_API_KEY": "sk-let-me-in",
        },
        "run",
        "--once",
    )
    code, err = finish(proc)
    assert code == 2
    for name in (
        "LETTA_BASE_URL",
        "LETTA_OTEL_POLL_INTERVAL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "LETTA_OTEL_STATE_PATH",
    ):
        assert name in err
    assert "Traceback" not in err
    assert "sk-let-me-in" not in err


@pytest.mark.parametrize("command", [("run", "--once"), ("run",)], ids=["once", "daemon"])
def test_second_daemon_on_the_same_state_is_refused(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, command: tuple[str, ...]
) -> None:
    # An unusable state file ends even a daemon at once: waiting would not free it.
    first = spawn(bridge_env.env(), "run")
    try:
        wait_until(lambda: len(receiver.spans) >= 40, 30, "the first daemon to export")
        second = spawn(bridge_env.env(), *command)
        code, err = finish(second)
        assert code == 2
        assert "in use by another letta-otel process" in err
        assert "Traceback" not in err
    finally:
        first.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_letta_at_start_names_the_setting(
    bridge_env: BridgeEnv,
) -> None:
    env = bridge_env.env(LETTA_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    code, err = finish(spawn(env, "run", "--once"), timeout=60)
    assert code == 2
    assert "LETTA_BASE_URL" in err
    assert "Traceback" not in err


def test_unreachable_otlp_endpoint_at_start_names_the_setting(bridge_env: BridgeEnv) -> None:
    # `run --once` stops; the daemon waits for its collector instead (tests/e2e/test_startup.py).
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = bridge_env.env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    code, err = finish(spawn(env, "run", "--once"), 60)
    assert code == 2
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in err and endpoint in err
    assert (
        f"cannot start: cannot reach the OTLP endpoint {endpoint} (connection refused); check "
        "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in err
    )
    assert "Traceback" not in err


def test_rejected_credentials_at_start(bridge_env: BridgeEnv, letta: FakeLettaServer) -> None:
    letta.api_key = "the-right-key"
    code, err = finish(spawn(bridge_env.env(LETTA_API_KEY="the-wrong-key"), "run", "--once"))
    assert code == 2
    assert "LETTA_API_KEY" in err
    assert "the-wrong-key" not in err and "the-right-key" not in err
