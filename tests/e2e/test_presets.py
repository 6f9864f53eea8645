"""Each backend preset end to end: what really reached an OTLP receiver.

The preset's endpoint is redirected to the local receiver by overriding ONLY
``OTEL_EXPORTER_OTLP_ENDPOINT`` (scheme, host and port); everything else — protocol,
the ``/v1/traces`` path rule, auth headers, compression — still comes from the preset.
(``tests/test_presets.py`` checks the un-redirected endpoints.)
"""

from __future__ import annotations

import os

import pytest

from letta_otel import cli
from tests.e2e.conftest import _ISOLATE_PREFIXES, BridgeEnv, step_spans
from tests.fakes.otlp_receiver import GRPC_TRACES_PATH, HTTP_TRACES_PATH, OtlpReceiver

KEY = "hcaik_SECRET-0123456789abcdef"
PRESET_ENV: dict[str, dict[str, str]] = {
    "jaeger": {},
    "tempo": {"LETTA_OTEL_TEMPO_TENANT": "team-a"},
    "honeycomb": {"HONEYCOMB_API_KEY": KEY, "HONEYCOMB_DATASET": "letta-classic"},
}
EXPECTED_HEADERS: dict[str, dict[str, str]] = {
    "jaeger": {},
    "tempo": {"x-scope-orgid": "team-a"},
    "honeycomb": {"x-honeycomb-team": KEY, "x-honeycomb-dataset": "letta-classic"},
}


@pytest.fixture
def steps_route() -> str:
    return "ok"  # discovery is covered elsewhere; one route is enough here


def run_preset(
    bridge_env: BridgeEnv, monkeypatch: pytest.MonkeyPatch, protocol: str | None, **env: str
) -> int:
    """``run --once`` with only the endpoint pointing at the receiver.

    ``protocol=None`` leaves the protocol to the preset (gRPC receiver endpoint).
    """
    for key in list(os.environ):
        if key.startswith(_ISOLATE_PREFIXES):
            monkeypatch.delenv(key)
    bridge_env.protocol = protocol or "grpc"
    values = bridge_env.env(**env)
    values["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol or ""  # empty = unset
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return cli.main(["run", "--once"])


@pytest.mark.parametrize("protocol", [None, "http/protobuf"], ids=["preset-grpc", "http"])
@pytest.mark.parametrize("backend", ["jaeger", "tempo", "honeycomb"])
def test_preset_reaches_the_receiver(
    bridge_env: BridgeEnv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backend: str,
    protocol: str | None,
) -> None:
    code = run_preset(
        bridge_env, monkeypatch, protocol, LETTA_OTEL_BACKEND=backend, **PRESET_ENV[backend]
    )
    err = capsys.readouterr().err
    assert code == 0, err[-2000:]
    receiver, letta = bridge_env.receiver, bridge_env.letta
    requests = [r for r in receiver.requests if r.signal == "traces"]
    assert requests and all(r.accepted for r in requests)
    for request in requests:
        if protocol is None:
            assert (request.protocol, request.path) == ("grpc", GRPC_TRACES_PATH)
        else:
            assert (request.protocol, request.path) == ("http", HTTP_TRACES_PATH)
            assert request.headers["content-type"] == "application/x-protobuf"
            # Honeycomb's preset compresses (gRPC hides its encoding from the servicer).
            assert request.compression == ("gzip" if backend == "honeycomb" else None)
        sent = {k: v for k, v in request.headers.items() if k in EXPECTED_HEADERS[backend]}
        assert sent == EXPECTED_HEADERS[backend]
        assert not {"x-honeycomb-team", "x-scope-orgid"} & (
            set(request.headers) - set(EXPECTED_HEADERS[backend])
        )
    exported = {s.attributes["letta.step.id"] for s in step_spans(receiver.spans)}
    assert exported == set(letta.data.expected_terminal_step_ids())
    assert KEY not in err and "SECRET" not in err
    assert f"backend={backend}" in err


def test_explicit_headers_merge_with_the_preset_headers(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = run_preset(
        bridge_env,
        monkeypatch,
        "http/protobuf",
        LETTA_OTEL_BACKEND="honeycomb",
        HONEYCOMB_API_KEY=KEY,
        OTEL_EXPORTER_OTLP_HEADERS="x-team-route=blue",
        OTEL_EXPORTER_OTLP_COMPRESSION="none",
    )
    assert code == 0
    request = receiver.requests[0]
    assert request.headers["x-honeycomb-team"] == KEY
    assert request.headers["x-team-route"] == "blue"
    assert "x-honeycomb-dataset" not in request.headers
    assert request.compression is None  # explicit setting beats the preset's gzip


def test_honeycomb_without_key_exits_2_naming_it(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_preset(bridge_env, monkeypatch, None, LETTA_OTEL_BACKEND="honeycomb")
    err = capsys.readouterr().err
    assert code == 2
    assert "HONEYCOMB_API_KEY" in err
    assert receiver.requests == []
