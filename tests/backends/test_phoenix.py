"""A real backend: export the fake Letta dataset to Arize Phoenix and read it back.

A session fixture installs ``arize-phoenix`` (:data:`PHOENIX_VERSION`, its dependencies
pinned by ``constraints-phoenix-20.26.1.txt``) from PyPI into its own venv under the temp
dir (``tests/cached_venv.py``: keyed by a hash of the pins and the interpreter, reused
while they are unchanged, installs serialised by a lock file), starts ``phoenix serve``
with BOTH its HTTP and gRPC servers on 127.0.0.1 (via ``_phoenix_launcher.py``: Phoenix
has no setting for the gRPC host) on free ports and a temporary working directory, checks
(in /proc, no ``ss`` needed) that nothing of it listens beyond loopback, and stops it at
the end.

Each protocol exports its own freshly generated dataset (10 runs, one per captured
scenario) with the real CLI, ``letta-otel run --once``, into its own Phoenix project
(Phoenix files spans by the resource attribute ``openinference.project.name``), then reads
the spans back through ``GET /v1/projects/{project}/spans/otlpv1?trace_id=…`` and checks
the tree, the ``gen_ai.*`` attributes and Phoenix's own classification of the spans
(``openinference.span.kind``: LLM / AGENT / TOOL, derived from ``gen_ai.operation.name``).

Locally ``--no-phoenix``, ``--no-live`` or ``LETTA_OTEL_SKIP_PHOENIX=1`` skip it; never
under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from letta_otel.mapping import ids
from tests import listening
from tests.cached_venv import InstallError, VenvSpec, ensure
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.plain_http import Http

PHOENIX_VERSION = "20.26.1"
HERE = Path(__file__).resolve().parent
CONSTRAINTS = HERE / f"constraints-phoenix-{PHOENIX_VERSION}.txt"
LAUNCHER = HERE / "_phoenix_launcher.py"
REPO = HERE.parents[1]
INSTALL_TIMEOUT = 1200
START_TIMEOUT = 180
INGEST_TIMEOUT = 60
N_RUNS = 10  # generate() cycles the 10 captured scenarios: every span shape once
_ISOLATE_PREFIXES = ("LETTA_", "OTEL_", "HONEYCOMB_", "PHOENIX_")

pytestmark = [pytest.mark.phoenix, pytest.mark.timeout(INSTALL_TIMEOUT + START_TIMEOUT + 300)]


# ------------------------------------------------------------------------------ install


def ensure_phoenix() -> tuple[Path, float]:
    """The Phoenix venv's python, and how long installing took (0 when reused)."""
    spec = VenvSpec(
        name=f"phoenix-{PHOENIX_VERSION}",
        requirements=(f"arize-phoenix=={PHOENIX_VERSION}",),
        constraints=CONSTRAINTS,
    )
    try:
        venv = ensure(spec, timeout=INSTALL_TIMEOUT)
    except (InstallError, TimeoutError) as exc:
        pytest.fail(f"installing Phoenix failed: {exc}", pytrace=False)
    return venv.python, venv.install_seconds


# -------------------------------------------------------------------------------- server


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Phoenix:
    http_port: int
    grpc_port: int
    proc: subprocess.Popen[bytes]
    log: Path
    install_seconds: float
    start_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    python, install_seconds = ensure_phoenix()
    workdir = tmp_path_factory.mktemp("phoenix")
    http_port, grpc_port = _free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE_PREFIXES)}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_TELEMETRY_ENABLED="false",
        HOME=str(workdir),  # whatever Phoenix's libraries cache stays in the temp dir
    )
    log = workdir / "phoenix.log"
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), str(LAUNCHER)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Phoenix(http_port, grpc_port, proc, log, install_seconds, 0.0)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"phoenix exited {proc.returncode}:\n{server.log_tail()}", pytrace=False
                )
            if Http(server.base_url).healthy("/healthz"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"phoenix not ready in {START_TIMEOUT}s:\n{server.log_tail()}")
            time.sleep(0.25)
        server.start_seconds = time.monotonic() - started
        print(
            f"\nphoenix {PHOENIX_VERSION}: install {install_seconds:.1f}s "
            f"(0 = reused {python.parents[1]}), ready in {server.start_seconds:.1f}s"
        )
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.mark.skipif(not listening.supported(), reason="reads /proc/<pid>/net/tcp: Linux only")
def test_phoenix_listens_on_loopback_only(phoenix: Phoenix) -> None:
    addresses = listening.listening_addresses(phoenix.proc.pid)
    ports = {port for _, port in addresses}
    assert {phoenix.http_port, phoenix.grpc_port} <= ports, addresses
    exposed = [(host, port) for host, port in addresses if not listening.is_loopback(host)]
    assert not exposed, f"phoenix listens beyond loopback: {exposed}"


# ---------------------------------------------------------------------------------- test


def _value(any_value: dict[str, Any]) -> Any:
    for key in ("string_value", "bool_value", "int_value", "double_value"):
        if any_value.get(key) is not None:
            return any_value[key]
    array = any_value.get("array_value")
    if array:
        return tuple(_value(v) for v in array["values"])
    return None


@dataclass(frozen=True)
class PhoenixSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    attributes: dict[str, Any]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> PhoenixSpan:
        return cls(
            trace_id=raw["trace_id"],
            span_id=raw["span_id"],
            parent_span_id=raw.get("parent_span_id") or None,
            name=raw["name"],
            attributes={kv["key"]: _value(kv["value"]) for kv in raw.get("attributes") or []},
        )

    @property
    def operation(self) -> str:
        return self.name.split(" ", 1)[0]


def read_spans(
    phoenix: Phoenix, project: str, trace_ids: list[str] | None = None
) -> list[PhoenixSpan]:
    params: list[tuple[str, str | int]] = [("limit", 1000)]
    params += [("trace_id", t) for t in trace_ids or []]
    response = Http(phoenix.base_url, timeout=30).get(
        f"/v1/projects/{project}/spans/otlpv1", params=params
    )
    if response.status_code == 404:  # the project appears with its first span
        return []
    response.raise_for_status()
    body = response.json()
    assert body.get("next_cursor") is None, "more than one page: raise the limit"
    return [PhoenixSpan.parse(raw) for raw in body["data"]]


def export_once(
    letta: FakeLettaServer, endpoint: str, protocol: str, project: str, state: Path
) -> int:
    """Runs ``letta-otel run --once``; returns how many spans it says the backend accepted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE_PREFIXES)}
    env.update(
        LETTA_BASE_URL=letta.base_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        LETTA_OTEL_STATE_PATH=str(state),
        LETTA_OTEL_ENRICH_GRACE="0s",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "letta_otel", "run", "--once"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = re.search(r"spans=(\d+) batches=\d+ failed_batches=0 ", proc.stderr)
    assert summary, proc.stderr[-3000:]
    return int(summary.group(1))


def expected_shape(data: FakeLettaData) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """trace id per run id, and each terminal step by id (computed from Letta's data)."""
    traces = {run["id"]: run["id"].removeprefix("run-").replace("-", "") for run in data.runs()}
    terminal = set(data.expected_terminal_step_ids())
    steps = {step["id"]: step for step in data.steps() if step["id"] in terminal}
    return traces, steps


@pytest.mark.parametrize(
    ("protocol", "seed"), [("grpc", 501), ("http/protobuf", 502)], ids=["grpc", "http"]
)
def test_phoenix_receives_the_tree_with_genai_attributes_and_span_kinds(
    phoenix: Phoenix, tmp_path: Path, protocol: str, seed: int
) -> None:
    data = FakeLettaData.generate(N_RUNS, seed=seed)
    traces, steps = expected_shape(data)
    project = f"letta-otel-{protocol.split('/', maxsplit=1)[0]}"
    endpoint = (
        f"http://127.0.0.1:{phoenix.grpc_port}"
        if protocol == "grpc"
        else f"http://127.0.0.1:{phoenix.http_port}"  # /v1/traces is appended
    )
    started = time.monotonic()
    with FakeLettaServer(data) as letta:
        sent = export_once(letta, endpoint, protocol, project, tmp_path / "state.db")
    exported_in = time.monotonic() - started

    # Phoenix accepts first and inserts in the background: wait for every span sent.
    deadline = time.monotonic() + INGEST_TIMEOUT
    spans = read_spans(phoenix, project)
    while len(spans) < sent and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = read_spans(phoenix, project)
    print(f"\n{protocol}: exported {sent} spans in {exported_in:.2f}s, {len(spans)} read back")
    assert len(spans) == sent, (len(spans), sent, phoenix.log_tail())
    kinds = Counter(s.operation for s in spans)
    assert kinds["invoke_agent"] == N_RUNS, (kinds, phoenix.log_tail())
    assert kinds["agent_step"] == len(steps)
    assert set(s.trace_id for s in spans) == set(traces.values())
    assert len({s.span_id for s in spans}) == len(spans), "a span arrived twice"

    # The per-trace query the issue names returns exactly that trace.
    run_id, trace_id = next(iter(traces.items()))
    one = read_spans(phoenix, project, [trace_id])
    assert one and {s.trace_id for s in one} == {trace_id}
    assert one[0].attributes["letta.run.id"] == run_id or any(
        s.attributes.get("letta.run.id") == run_id for s in one
    )

    by_id = {s.span_id: s for s in spans}
    for span in spans:
        parent = by_id.get(span.parent_span_id) if span.parent_span_id else None
        CHECKS[span.operation](span, parent, traces, steps)
    assert kinds["chat"] > 0 and kinds["execute_tool"] > 0


Steps = dict[str, dict[str, Any]]


def check_run(
    span: PhoenixSpan, parent: PhoenixSpan | None, traces: dict[str, str], _: Steps
) -> None:
    attrs = span.attributes
    assert span.parent_span_id is None and parent is None
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.provider.name"] == "letta"
    assert span.name == f"invoke_agent {attrs['gen_ai.agent.name']}"
    assert attrs["gen_ai.agent.id"].startswith("agent-")
    assert traces[attrs["letta.run.id"]] == span.trace_id
    assert attrs["openinference.span.kind"] == "AGENT"  # Phoenix's classification


def check_step(
    span: PhoenixSpan, parent: PhoenixSpan | None, traces: dict[str, str], steps: Steps
) -> None:
    attrs = span.attributes
    assert parent is not None and parent.operation == "invoke_agent", span
    assert parent.trace_id == span.trace_id
    step = steps[attrs["letta.step.id"]]
    assert span.span_id == ids.format_span_id(ids.span_id("step", step["id"]))
    assert traces[step["run_id"]] == span.trace_id
    assert attrs["letta.step.status"] == step["status"]
    assert attrs["gen_ai.agent.id"] == step["agent_id"]
    # A step names its model and provider but is no LLM call: it says CHAIN itself, or
    # Phoenix would file it as a second LLM span (see README).
    assert attrs["gen_ai.request.model"] == step["model"]
    assert attrs["openinference.span.kind"] == "CHAIN"
    assert span.attributes.get("llm.token_count.prompt") is None


def check_chat(
    span: PhoenixSpan, parent: PhoenixSpan | None, _: dict[str, str], steps: Steps
) -> None:
    attrs = span.attributes
    assert parent is not None and parent.operation == "agent_step", span
    assert parent.trace_id == span.trace_id
    step = steps[parent.attributes["letta.step.id"]]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert span.name == f"chat {attrs['gen_ai.request.model']}"
    assert attrs["gen_ai.provider.name"]
    assert attrs["openinference.span.kind"] == "LLM"
    if step["status"] == "success":
        assert attrs["gen_ai.usage.input_tokens"] == step["prompt_tokens"]
        assert attrs["gen_ai.usage.output_tokens"] == step["completion_tokens"]
        assert attrs["llm.token_count.prompt"] == step["prompt_tokens"]  # Phoenix's view


def check_tool(span: PhoenixSpan, parent: PhoenixSpan | None, _: dict[str, str], __: Steps) -> None:
    attrs = span.attributes
    assert parent is not None and parent.operation == "agent_step", span
    assert parent.trace_id == span.trace_id
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert span.name == f"execute_tool {attrs['gen_ai.tool.name']}"
    assert attrs["gen_ai.tool.call.id"]
    assert attrs["openinference.span.kind"] == "TOOL"
    assert attrs["tool.name"] == attrs["gen_ai.tool.name"]  # Phoenix's view


CHECKS = {
    "invoke_agent": check_run,
    "agent_step": check_step,
    "chat": check_chat,
    "execute_tool": check_tool,
}
