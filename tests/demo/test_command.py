"""``letta-otel demo`` end to end: a subprocess from an empty directory, real sockets only.

Locally it must show the trace trees and metrics the bridge delivered to its own receiver;
with OTEL_EXPORTER_OTLP_ENDPOINT the spans must reach that backend (here the repository's
real OTLP receiver) under the trace ids the demo prints.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from letta_otel import cli
from letta_otel.demo.captures import captures_dir
from letta_otel.mapping import ids
from tests.fakes.otlp_receiver import OtlpReceiver

REPO = Path(__file__).resolve().parents[2]
# The caller's own settings must not leak into what a test proves.
_ISOLATE_PREFIXES = ("LETTA_", "OTEL_", "HONEYCOMB_")
CAPTURED_TRACE_IDS = {
    "plain": "7b2ca31da6dd495a8310600dc38a5dbb",
    "tool_two_steps": "d74da3dab02844c48ac766b9ccabfbe7",
    "fail_http500": "a614a60258a24655a70693396c1af13d",
    "stream_fail": "4fa7f9c93278483e9a041974f080acc2",
    "memgpt_tool": "ee085275f10f4080a13fcc8e17219916",
}


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """TMPDIR for the demo: its temporary state directory must be gone afterwards."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def demo(workdir: Path, scratch: Path, *args: str, **env: str) -> Result:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE_PREFIXES)}
    # The package from this checkout, run from a directory that has nothing else in it.
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    environ.update(TMPDIR=str(scratch), PYTHONDONTWRITEBYTECODE="1", **env)
    proc = subprocess.run(
        [sys.executable, "-m", "letta_otel", "demo", *args],
        check=False,
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_local_demo_prints_trees_and_metrics_and_leaves_nothing(
    workdir: Path, scratch: Path
) -> None:
    result = demo(workdir, scratch)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert result.err == ""  # quiet: the daemon's INFO log is not the demo's output
    out = result.out
    assert "received 21 spans in 5 traces" in out
    for scenario, trace_id in CAPTURED_TRACE_IDS.items():
        assert re.search(rf"^trace {trace_id}  {scenario}: ", out, re.M), scenario
    for name in (
        "invoke_agent otel-demo-v1",
        "invoke_agent otel-demo-memgpt",
        "├─ agent_step",
        "│  ├─ chat fake-model",
        "execute_tool conversation_search",
        "execute_tool send_message",
    ):
        assert name in out, name
    # The failed step of fail_http500: ERROR with Letta's error type on the next line.
    step = re.search(
        r"^└─ agent_step +INTERNAL +\d+ ms +letta\.step\.status=failed.*\n(.*)$", out, re.M
    )
    assert step is not None, out
    assert "status=ERROR error.type=LLMServerError" in step[1]
    assert "letta.provider_trace.missing=true" in out  # stream_fail: no provider trace
    assert re.search(r"^letta\.steps\{letta\.step\.status=failed\} +2$", out, re.M)
    assert re.search(r"^letta\.steps\{letta\.step\.status=success\} +5$", out, re.M)
    assert re.search(r"^letta\.runs\{letta\.run\.status=completed\} +3$", out, re.M)
    for token_type in ("input", "output"):
        series = rf"gen_ai\.client\.token\.usage\{{gen_ai\.token\.type={token_type}\}}"
        assert re.search(rf"^{series} +count=[1-9]\d* sum=[1-9]\d* \{{token\}}$", out, re.M)
    assert list(workdir.iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_verbose_shows_the_bridge_log(workdir: Path, scratch: Path) -> None:
    result = demo(workdir, scratch, "--verbose")
    assert result.code == 0, result.err
    assert "cycle via steps: discovered=7 exported_steps=7 exported_runs=5" in result.err
    assert "LETTA_API_KEY" not in result.err and "letta-otel-demo" not in result.err


@pytest.fixture
def backend() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def printed_trace_ids(out: str) -> list[str]:
    return re.findall(r"^  ([0-9a-f]{32})  invoke_agent ", out, re.M)


def test_sends_to_the_users_backend(workdir: Path, scratch: Path, backend: OtlpReceiver) -> None:
    result = demo(workdir, scratch, OTEL_EXPORTER_OTLP_ENDPOINT=backend.grpc_endpoint)
    assert result.code == 0, result.err
    assert f"into grpc {backend.grpc_endpoint}" in result.out
    spans = backend.wait_for_spans(21)
    assert len(spans) == 21
    printed = printed_trace_ids(result.out)
    assert len(printed) == 5
    assert set(printed) == {s.trace_id for s in spans}
    roots = {s.trace_id: s for s in spans if s.parent_span_id is None}
    assert set(roots) == set(printed)
    assert all(s.name.startswith("invoke_agent ") for s in roots.values())
    # Fresh ids each time: a second demo to the same backend is a second set of traces.
    assert not set(printed) & set(CAPTURED_TRACE_IDS.values())
    for trace_id in printed:
        assert ids.format_trace_id(int(trace_id, 16)) == trace_id
    # Traces only, unless metrics are asked for: not every backend takes them.
    assert backend.metrics == []
    assert "metrics were not sent" in result.out
    assert list(workdir.iterdir()) == [] and list(scratch.iterdir()) == []


def test_http_protobuf_flag_and_metrics_when_asked(
    workdir: Path, scratch: Path, backend: OtlpReceiver
) -> None:
    result = demo(
        workdir,
        scratch,
        "--otlp-endpoint",
        backend.http_endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_HEADERS="x-demo-tenant=acme",
        LETTA_OTEL_METRICS="true",
    )
    assert result.code == 0, result.err
    spans = backend.wait_for_spans(21)
    assert {s.protocol for s in spans} == {"http"}
    assert set(printed_trace_ids(result.out)) == {s.trace_id for s in spans}
    assert all(
        r.headers.get("x-demo-tenant") == "acme" for r in backend.requests if r.signal == "traces"
    )
    assert [p.value for p in backend.wait_for_metrics("letta.steps")[-1].data_points]


def test_local_flag_ignores_the_environment(workdir: Path, scratch: Path) -> None:
    result = demo(workdir, scratch, "--local", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert result.code == 0, result.err
    assert "received 21 spans in 5 traces" in result.out


def test_letta_settings_of_the_caller_are_not_used(workdir: Path, scratch: Path) -> None:
    result = demo(
        workdir,
        scratch,
        LETTA_BASE_URL="https://api.letta.com",
        LETTA_API_KEY="sk-let-not-a-real-key",
        LETTA_OTEL_FILTER_AGENT_IDS="agent-00000000-0000-4000-8000-000000000000",
        LETTA_OTEL_STATE_PATH=str(workdir / "state.db"),
    )
    assert result.code == 0, result.err
    assert "received 21 spans in 5 traces" in result.out
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["--otlp-endpoint", "ftp://collector:4317"], {}, "--otlp-endpoint"),
        (
            [],
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "smoke"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        ([], {"LETTA_OTEL_BACKEND": "honeycomb"}, "HONEYCOMB_API_KEY"),
        (["--local", "--otlp-endpoint", "http://127.0.0.1:4317"], {}, "--local"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(  # noqa: PLR0917 - parameters and fixtures
    args: list[str],
    env: dict[str, str],
    names: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    for key in list(os.environ):
        if key.startswith(_ISOLATE_PREFIXES):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", *args]) == 2
    err = capsys.readouterr().err
    assert names in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_captures_ship_inside_the_package() -> None:
    # A wheel carries letta_otel/** only: the demo must not need tests/ or the repository.
    root = Path(str(captures_dir()))
    assert root.is_relative_to(REPO / "letta_otel")
    assert (root / "index.json").is_file() and (root / "README.md").is_file()
