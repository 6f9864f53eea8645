"""``letta-otel doctor`` against the fake Letta and the OTLP receiver: every failure it reports."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from letta_otel import cli
from letta_otel.doctor import TEST_SPAN_ATTRIBUTE, TEST_SPAN_NAME
from letta_otel.state import StateStore
from tests.e2e.conftest import _ISOLATE_PREFIXES, BridgeEnv
from tests.fakes.letta_api import FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver

SECRET_KEY = "sk-let-SECRET-doctor-key"
HONEYCOMB_KEY = "hcaik-SECRET-honeycomb"


class Doctor:
    def __init__(
        self,
        bridge_env: BridgeEnv,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.bridge_env = bridge_env
        self.monkeypatch = monkeypatch
        self.capsys = capsys

    def __call__(self, *flags: str, **env: str) -> tuple[int, str]:
        for key in list(os.environ):
            if key.startswith(_ISOLATE_PREFIXES):
                self.monkeypatch.delenv(key)
        for key, value in self.bridge_env.env(**env).items():
            self.monkeypatch.setenv(key, value)
        code = cli.main(["doctor", *flags])
        captured = self.capsys.readouterr()
        assert SECRET_KEY not in captured.out + captured.err
        assert "SECRET" not in captured.out + captured.err
        return code, captured.out

    def lines(self, out: str) -> dict[str, list[str]]:
        """check name -> ['ok: message', ...]."""
        found: dict[str, list[str]] = {}
        for line in out.splitlines():
            m = re.match(r"\[(ok|WARN|FAIL|skip)\]\s+([^:]+): (.*)", line)
            if m:
                found.setdefault(m.group(2), []).append(f"{m.group(1).lower()}: {m.group(3)}")
        return found


@pytest.fixture
def steps_route() -> str:
    return "ok"


@pytest.fixture
def doctor(
    bridge_env: BridgeEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Doctor:
    return Doctor(bridge_env, monkeypatch, capsys)


def status(doctor: Doctor, out: str, name: str) -> str:
    (entry,) = doctor.lines(out)[name]
    return entry


# ---------------------------------------------------------------------------- all good


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_healthy_setup_passes_and_sends_exactly_one_labelled_span(
    doctor: Doctor, bridge_env: BridgeEnv, receiver: OtlpReceiver, protocol: str
) -> None:
    bridge_env.protocol = protocol
    code, out = doctor()
    assert code == 0, out
    checks = doctor.lines(out)
    assert set(checks) == {
        "configuration",
        "Letta reachable",
        "Letta credentials",
        "Letta steps route",
        "OTLP export",
        "state file",
    }
    assert all(entry.startswith("ok: ") for entries in checks.values() for entry in entries), out
    assert out.rstrip().endswith("result: all checks passed")
    (span,) = receiver.spans
    assert span.name == TEST_SPAN_NAME
    assert span.attributes[TEST_SPAN_ATTRIBUTE] is True
    assert span.parent_span_id is None
    assert span.resource["service.name"] == "letta"
    assert span.trace_id in out  # the checklist names the trace to look for
    assert "(Letta 0.16.8)" in status(doctor, out, "Letta reachable")
    assert not bridge_env.state_path.exists()  # doctor does not create the state file


def test_json_output(doctor: Doctor) -> None:
    code, out = doctor("--json")
    document = json.loads(out)
    assert code == 0
    assert document["ok"] is True
    assert {c["status"] for c in document["checks"]} == {"ok"}
    assert len(document["checks"]) == 6


# --------------------------------------------------------------------------- configuration


def test_invalid_configuration_fails_with_every_problem_and_exit_2(doctor: Doctor) -> None:
    code, out = doctor(LETTA_OTEL_POLL_INTERVAL="soon", OTEL_EXPORTER_OTLP_PROTOCOL="pigeon")
    assert code == 2
    entry = status(doctor, out, "configuration")
    assert entry.startswith("fail: invalid (")
    assert "LETTA_OTEL_POLL_INTERVAL" in entry and "OTEL_EXPORTER_OTLP_PROTOCOL" in entry
    for name in ("Letta reachable", "OTLP export", "state file"):
        assert status(doctor, out, name) == "skip: configuration is invalid"


def test_honeycomb_without_key_names_the_variable(doctor: Doctor) -> None:
    code, out = doctor(LETTA_OTEL_BACKEND="honeycomb")
    assert code == 2
    assert "HONEYCOMB_API_KEY" in status(doctor, out, "configuration")


def test_stray_honeycomb_key_is_a_warning(doctor: Doctor) -> None:
    code, out = doctor(HONEYCOMB_API_KEY=HONEYCOMB_KEY)
    assert code == 0
    assert any(
        e.startswith("warn: HONEYCOMB_API_KEY is set but the backend is 'otlp'")
        for e in doctor.lines(out)["configuration"]
    )
    assert "1 warning" in out


def test_honeycomb_preset_sends_its_headers_and_never_shows_the_key(
    doctor: Doctor, receiver: OtlpReceiver
) -> None:
    code, out = doctor(LETTA_OTEL_BACKEND="honeycomb", HONEYCOMB_API_KEY=HONEYCOMB_KEY)
    assert code == 0, out
    assert "x-honeycomb-team=***" in status(doctor, out, "configuration")
    (request,) = receiver.requests
    assert request.headers["x-honeycomb-team"] == HONEYCOMB_KEY


# ------------------------------------------------------------------------------- Letta


def test_letta_rejecting_the_key_names_letta_api_key(
    doctor: Doctor, letta: FakeLettaServer
) -> None:
    letta.api_key = "the-right-key"
    code, out = doctor(LETTA_API_KEY=SECRET_KEY)
    assert code == 1
    entry = status(doctor, out, "Letta credentials")
    assert entry.startswith("fail: Letta answered HTTP 401")
    assert "LETTA_API_KEY" in entry
    assert out.rstrip().endswith("result: 1 failed")


def test_missing_key_says_it_is_not_set(doctor: Doctor, letta: FakeLettaServer) -> None:
    letta.faults.add(r"^/v1/runs/$", "401", count=-1)
    code, out = doctor()
    assert code == 1
    entry = status(doctor, out, "Letta credentials")
    assert "LETTA_API_KEY is not set" in entry
    assert status(doctor, out, "Letta steps route") == "skip: credentials were rejected"


def test_forbidden_names_letta_project(doctor: Doctor, letta: FakeLettaServer) -> None:
    letta.faults.add(r"^/v1/runs/$", "403", count=-1)
    code, out = doctor(LETTA_API_KEY=SECRET_KEY, LETTA_PROJECT="other-team")
    assert code == 1
    entry = status(doctor, out, "Letta credentials")
    assert entry.startswith("fail: Letta answered HTTP 403")
    assert "LETTA_API_KEY" in entry and "LETTA_PROJECT" in entry


@pytest.mark.parametrize(
    ("suffix", "hint"),
    [("/v1", "remove the trailing /v1"), ("/letta", "must be the server root")],
)
def test_wrong_base_url_is_explained(
    doctor: Doctor, letta: FakeLettaServer, suffix: str, hint: str
) -> None:
    code, out = doctor(LETTA_BASE_URL=letta.base_url + suffix)
    assert code == 1
    entry = status(doctor, out, "Letta reachable")
    assert entry.startswith("fail: ") and "HTTP 404" in entry and hint in entry
    assert status(doctor, out, "Letta credentials") == "skip: Letta is not reachable"


def test_runs_listing_404_points_at_the_base_url(doctor: Doctor, letta: FakeLettaServer) -> None:
    letta.faults.add(r"^/v1/runs/$", "404", count=-1)
    code, out = doctor()
    assert code == 1
    assert "must be the server root" in status(doctor, out, "Letta credentials")


def test_runs_listing_error_fails(doctor: Doctor, letta: FakeLettaServer) -> None:
    letta.faults.add(r"^/v1/runs/$", "500", count=-1)
    code, out = doctor()
    assert code == 1
    entry = status(doctor, out, "Letta credentials")
    assert entry.startswith("fail: listing runs failed") and "HTTP 500" in entry


def test_unreachable_letta_fails(doctor: Doctor) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    code, out = doctor(LETTA_BASE_URL=f"http://127.0.0.1:{port}")
    assert code == 1
    entry = status(doctor, out, "Letta reachable")
    assert entry.startswith(f"fail: cannot use http://127.0.0.1:{port}")
    assert "cannot connect" in entry and "LETTA_BASE_URL" in entry


def test_broken_steps_route_is_a_warning_not_a_failure(
    doctor: Doctor, letta: FakeLettaServer
) -> None:
    letta.steps_route = "legacy400"
    code, out = doctor()
    assert code == 0
    entry = status(doctor, out, "Letta steps route")
    assert entry.startswith("warn: GET /v1/steps/ answers HTTP 400")
    assert "runs fallback" in entry


def test_broken_steps_route_fails_when_discovery_insists_on_steps(
    doctor: Doctor, letta: FakeLettaServer
) -> None:
    letta.steps_route = "legacy400"
    code, out = doctor(LETTA_OTEL_DISCOVERY="steps")
    assert code == 1
    assert "LETTA_OTEL_DISCOVERY=steps" in status(doctor, out, "Letta steps route")


# -------------------------------------------------------------------------------- OTLP


@pytest.mark.parametrize(
    ("protocol", "said"),
    [("grpc", "UNAUTHENTICATED"), ("http/protobuf", "401")],
)
def test_backend_rejecting_the_span_reports_its_answer(
    doctor: Doctor, bridge_env: BridgeEnv, receiver: OtlpReceiver, protocol: str, said: str
) -> None:
    bridge_env.protocol = protocol
    receiver.set_failing(
        True,
        grpc_code=grpc.StatusCode.UNAUTHENTICATED,
        http_status=401,
        message="unknown API key - check your credentials",
    )
    code, out = doctor()
    assert code == 1
    entry = status(doctor, out, "OTLP export")
    assert entry.startswith(f"fail: {protocol} http://127.0.0.1:")
    assert "did not accept the test span" in entry
    assert said in entry
    if protocol == "grpc":  # gRPC carries the backend's message; HTTP only its status
        assert "unknown API key" in entry


def test_nothing_listening_at_the_otlp_endpoint_fails(
    doctor: Doctor, receiver: OtlpReceiver
) -> None:
    receiver.pause()
    code, out = doctor()
    assert code == 1
    entry = status(doctor, out, "OTLP export")
    assert entry.startswith("fail: cannot reach the OTLP endpoint")


@pytest.fixture
def silent_backend() -> Iterator[int]:
    """Accepts TCP connections and never answers (a hung collector)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_hung_backend_times_out_and_fails(
    doctor: Doctor, bridge_env: BridgeEnv, silent_backend: int, protocol: str
) -> None:
    bridge_env.protocol = protocol
    code, out = doctor(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{silent_backend}",
        OTEL_EXPORTER_OTLP_TIMEOUT="1000",
    )
    assert code == 1
    entry = status(doctor, out, "OTLP export")
    assert "did not accept the test span after" in entry


# -------------------------------------------------------------------------- state file


def test_state_file_in_use_by_a_daemon_is_a_warning(doctor: Doctor, bridge_env: BridgeEnv) -> None:
    store = StateStore(bridge_env.state_path)
    try:
        code, out = doctor()
    finally:
        store.close()
    assert code == 0
    assert status(doctor, out, "state file").startswith("warn: ")
    assert "in use by a running letta-otel daemon" in out


def test_existing_state_file_is_opened(doctor: Doctor, bridge_env: BridgeEnv) -> None:
    StateStore(bridge_env.state_path).close()
    code, out = doctor()
    assert code == 0
    assert status(doctor, out, "state file").endswith("opens, is writable and not locked")


def test_state_file_that_is_not_a_database_fails(doctor: Doctor, bridge_env: BridgeEnv) -> None:
    bridge_env.state_path.write_bytes(b"this is not sqlite" * 100)
    code, out = doctor()
    assert code == 1
    entry = status(doctor, out, "state file")
    assert entry.startswith("fail: cannot use state file") and "not a database" in entry


def test_state_directory_not_writable_fails(doctor: Doctor) -> None:
    # /proc refuses new files even for root (tests run as root, so chmod would not do).
    code, out = doctor(LETTA_OTEL_STATE_PATH="/proc/letta-otel.db")
    assert code == 1
    assert "its directory is not writable" in status(doctor, out, "state file")


def test_state_lock_file_cannot_be_created_fails(doctor: Doctor, tmp_path: Path) -> None:
    code, out = doctor(LETTA_OTEL_STATE_PATH="/proc/version")
    assert code == 1
    assert status(doctor, out, "state file").startswith("fail: cannot create the lock file")
