"""End-to-end harness: a fake Letta API and a real OTLP receiver on 127.0.0.1.

``bridge`` runs the real CLI (``letta_otel.cli.main``) in-process with an
environment built per test; ``spawn`` runs it as a subprocess for signal and
crash tests. Nothing here mocks letta-otel's own code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from letta_otel import cli
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan

REPO = Path(__file__).resolve().parents[2]

# The bridge's own env vars: cleared so the developer's shell cannot leak in.
_ISOLATE_PREFIXES = ("LETTA_", "OTEL_", "HONEYCOMB_")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


@pytest.fixture
def sample_data() -> FakeLettaData:
    return FakeLettaData.from_samples()


@pytest.fixture(params=["ok", "legacy400"], ids=["steps-route", "runs-fallback"])
def steps_route(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def letta(sample_data: FakeLettaData, steps_route: str) -> Iterator[FakeLettaServer]:
    with FakeLettaServer(sample_data, steps_route=steps_route) as server:  # type: ignore[arg-type]
        yield server


@dataclass
class BridgeEnv:
    letta: FakeLettaServer
    receiver: OtlpReceiver
    state_path: Path
    protocol: str = "grpc"
    extra: dict[str, str] | None = None

    def env(self, **overrides: str) -> dict[str, str]:
        endpoint = (
            self.receiver.grpc_endpoint if self.protocol == "grpc" else self.receiver.http_endpoint
        )
        env = {
            "LETTA_BASE_URL": self.letta.base_url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": self.protocol,
            "OTEL_EXPORTER_OTLP_TIMEOUT": "3000",
            "LETTA_OTEL_STATE_PATH": str(self.state_path),
            "LETTA_OTEL_POLL_INTERVAL": "0.2",
            "LETTA_OTEL_LOG_LEVEL": "DEBUG",
            # Any free port: parallel suites on one host must not fight over 9464.
            "LETTA_OTEL_HEALTH_ADDR": "127.0.0.1:0",
        }
        env.update(self.extra or {})
        env.update(overrides)
        return env


def isolated_environ(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE_PREFIXES)}
    base.update(env)
    return base


@pytest.fixture
def bridge_env(letta: FakeLettaServer, receiver: OtlpReceiver, tmp_path: Path) -> BridgeEnv:
    return BridgeEnv(letta, receiver, tmp_path / "state.db")


RunOnce = Callable[..., int]


@pytest.fixture
def run_once(bridge_env: BridgeEnv, monkeypatch: pytest.MonkeyPatch) -> RunOnce:
    """``run_once(*flags, **env)`` → exit code of ``letta-otel run --once``, in-process."""

    def run(*flags: str, **env: str) -> int:
        for key in list(os.environ):
            if key.startswith(_ISOLATE_PREFIXES):
                monkeypatch.delenv(key)
        for key, value in bridge_env.env(**env).items():
            monkeypatch.setenv(key, value)
        return cli.main(["run", "--once", *flags])

    return run


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "letta_otel", *args],
        env=isolated_environ(env),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def step_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == "agent_step"]


def run_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name.startswith("invoke_agent")]
