"""Filters and sampling end to end, on both discovery paths, over real sockets.

Each filter test computes the expected step set from the fake server's own data and
runs the bridge through ``/v1/steps/`` (filters pushed down where the route allows)
and through the runs fallback (filters applied by letta-otel): both must export
exactly that set, and a run's root span exactly when one of its steps goes out.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from letta_otel import cli
from letta_otel.assemble import build_client, build_context, build_filters
from letta_otel.config import Settings
from letta_otel.export.sink import build_sink
from letta_otel.letta.discovery import RunsDiscovery, StepsDiscovery
from letta_otel.letta.enrich import Enricher
from letta_otel.mapping.records import RunRecord, StepRecord
from letta_otel.pipeline.cycle import Bridge, BridgeOptions
from letta_otel.pipeline.observer import NullObserver
from letta_otel.pipeline.selecting import Selection
from letta_otel.selection.sampling import Sampler
from letta_otel.state import StateStore
from tests.e2e.conftest import BridgeEnv, RunOnce, run_spans, step_spans
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer, RecordedRequest
from tests.fakes.otlp_receiver import OtlpReceiver

V1 = "agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5"  # otel-demo-v1: 8 runs, tags letta_v1
MEMGPT = "agent-df73fa68-abaa-4d0c-8a06-b4df607e0381"  # otel-demo-memgpt: 2 runs, memgpt_v2
NOBODY = "agent-00000000-0000-4000-8000-000000000000"
Step = dict[str, Any]


def _exported(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(str(s.attributes["letta.step.id"]) for s in step_spans(receiver.spans))


def _roots(receiver: OtlpReceiver) -> set[str]:
    return {str(s.attributes["letta.run.id"]) for s in run_spans(receiver.spans)}


def _recorded(letta: FakeLettaServer) -> list[RecordedRequest]:
    """The request log once it is complete: the fake records a request just after
    answering it, so the last entries can trail the client by a moment."""
    deadline, seen = time.monotonic() + 2, -1
    while time.monotonic() < deadline and len(letta.requests) != seen:
        seen = len(letta.requests)
        time.sleep(0.02)
    return letta.requests


def _queries(letta: FakeLettaServer, path: str) -> list[dict[str, list[str]]]:
    """Discovery listings of ``path`` (the feedback counter's own listing left out)."""
    return [r.query for r in _recorded(letta) if r.path == path and "has_feedback" not in r.query]


def _prepare_models(data: FakeLettaData) -> None:
    """Three runs switch to another model (name and handle); the rest keep fake-model."""
    for run_id in data.run_ids()[::3]:
        for step_id in data.run_step_ids(run_id):
            data.patch_step(step_id, model="gpt-4o-mini", model_handle="openai/gpt-4o-mini")


def _prepare_projects(data: FakeLettaData) -> None:
    for i, run_id in enumerate(data.run_ids()):
        data.set_project_id(run_id, "proj-a" if i % 2 else "proj-b")


CASES: dict[str, tuple[dict[str, str], Callable[[FakeLettaData], None], Callable[[Step], bool]]] = {
    "one-agent": (
        {"LETTA_OTEL_FILTER_AGENT_IDS": V1},
        lambda d: None,
        lambda s: s["agent_id"] == V1,
    ),
    "several-agents": (
        {"LETTA_OTEL_FILTER_AGENT_IDS": f"{MEMGPT},{NOBODY}"},
        lambda d: None,
        lambda s: s["agent_id"] == MEMGPT,
    ),
    "agent-tag": (
        {"LETTA_OTEL_FILTER_AGENT_TAGS": "memgpt_v2,no-such-tag"},
        lambda d: None,
        lambda s: s["agent_id"] == MEMGPT,
    ),
    "model-name": (
        {"LETTA_OTEL_FILTER_MODELS": "gpt-4o-mini"},
        _prepare_models,
        lambda s: s["model"] == "gpt-4o-mini",
    ),
    "model-handle": (
        {"LETTA_OTEL_FILTER_MODEL_HANDLES": "openai/gpt-4o-mini,anthropic/claude-3-5"},
        _prepare_models,
        lambda s: s["model_handle"] == "openai/gpt-4o-mini",
    ),
    "project": (
        {"LETTA_OTEL_FILTER_PROJECT_IDS": "proj-a"},
        _prepare_projects,
        lambda s: s["project_id"] == "proj-a",
    ),
    "failed-only": (
        {"LETTA_OTEL_FILTER_STEP_STATUSES": "failed"},
        lambda d: None,
        lambda s: s["status"] == "failed",
    ),
    "agent-and-status": (
        {"LETTA_OTEL_FILTER_AGENT_IDS": V1, "LETTA_OTEL_FILTER_STEP_STATUSES": "success"},
        lambda d: None,
        lambda s: s["agent_id"] == V1 and s["status"] == "success",
    ),
}
# What each case may send to GET /v1/steps/ (route "ok") and GET /v1/runs/ (fallback).
PUSHED: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "one-agent": ({"agent_id": V1}, {"agent_id": V1}),
    "model-name": ({"model": "gpt-4o-mini"}, {}),
    "project": ({"project_id": "proj-a"}, {}),
    "agent-and-status": ({"agent_id": V1}, {"agent_id": V1}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_filter_exports_the_same_set_on_both_paths(
    case: str, run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer
) -> None:
    env, prepare, wanted = CASES[case]
    data = letta.data
    prepare(data)
    expected = {s["id"] for s in data.steps() if wanted(s)}
    assert 0 < len(expected) < len(data.steps())  # the filter really selects something

    assert run_once(**env) == 0
    exported = _exported(receiver)
    assert set(exported) == expected
    assert max(exported.values()) == 1
    assert _roots(receiver) == {data.step(s)["run_id"] for s in expected}
    assert all("SampleRate" not in s.attributes for s in receiver.spans)

    steps_pushed, runs_pushed = PUSHED.get(case, ({}, {}))
    if letta.steps_route == "ok":
        listings = _queries(letta, "/v1/steps/")[1:]  # after the start-up probe
        assert listings
        for query in listings:
            assert {
                k: v[0] for k, v in query.items() if k in ("agent_id", "model", "project_id")
            } == steps_pushed
    else:
        for query in _queries(letta, "/v1/runs/"):
            assert {k: v[0] for k, v in query.items() if k == "agent_id"} == runs_pushed
    if case == "several-agents" and letta.steps_route == "legacy400":
        read = {r.path.split("/")[3] for r in _recorded(letta) if r.path.endswith("/steps")}
        assert read == {r["id"] for r in data.runs() if r["agent_id"] == MEMGPT}

    # Filtered steps are settled: a second pass fetches nothing about them, sends nothing.
    letta.clear_requests()
    assert run_once(**env) == 0
    assert _exported(receiver) == exported
    dropped = {s["id"] for s in data.steps()} - expected
    assert not [r for r in _recorded(letta) if any(sid in r.path for sid in dropped)]


def test_filtered_out_steps_are_never_enriched(
    run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer, bridge_env: BridgeEnv
) -> None:
    assert run_once(LETTA_OTEL_FILTER_STEP_STATUSES="failed") == 0
    enriched = {r.path.split("/")[3] for r in _recorded(letta) if r.path.endswith("/trace")}
    assert enriched == set(_exported(receiver))
    with sqlite3.connect(bridge_env.state_path) as db:
        states = Counter(state for (state,) in db.execute("SELECT state FROM steps"))
        runs = Counter(state for (state,) in db.execute("SELECT state FROM runs"))
    assert states == {"exported": 3, "filtered": 11}
    assert runs == {"exported": 3, "filtered": 7}


# --- sampling ---------------------------------------------------------------------------


@pytest.fixture
def generated(steps_route: str) -> Iterator[FakeLettaServer]:
    data = FakeLettaData.generate(240, mix="random", seed=3)
    with FakeLettaServer(data, steps_route=steps_route) as server:  # type: ignore[arg-type]
        yield server


def _failure_runs(data: FakeLettaData) -> set[str]:
    return {
        r["id"]
        for r in data.runs()
        if r["status"] in ("failed", "cancelled", "expired")
        or any(
            data.step(s)["status"] in ("failed", "cancelled") for s in data.run_step_ids(r["id"])
        )
    }


def test_sampling_keeps_failures_and_whole_runs_on_both_paths(
    generated: FakeLettaServer,
    receiver: OtlpReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = generated.data
    env = BridgeEnv(generated, receiver, tmp_path / "s.db")
    run_once = _runner(env, monkeypatch)
    assert run_once(LETTA_OTEL_SAMPLE_RATIO="0.25") == 0

    failures = _failure_runs(data)
    sampler = Sampler(0.25)
    kept = failures | {r for r in data.run_ids() if sampler.keeps(r)}
    assert len(failures) > 40 and len(kept - failures) > 20
    assert _roots(receiver) == kept
    exported = _exported(receiver)
    assert max(exported.values()) == 1
    assert set(exported) == {s for r in kept for s in data.run_step_ids(r)}  # runs whole

    for span in receiver.spans:
        run_id = span.attributes["letta.run.id"]
        assert span.attributes["SampleRate"] == (1 if run_id in failures else 4), span.name
    chats = [s for s in receiver.spans if s.name.startswith("chat ")]
    assert {s.attributes["SampleRate"] for s in chats} == {1, 4}

    dropped_steps = {s["id"] for s in data.steps()} - set(exported)
    enriched = {r.path.split("/")[3] for r in _recorded(generated) if r.path.endswith("/trace")}
    assert not enriched & dropped_steps  # sampled-out steps cost no enrichment

    generated.clear_requests()
    assert run_once(LETTA_OTEL_SAMPLE_RATIO="0.25") == 0  # decisions are remembered
    assert _exported(receiver) == exported
    assert not [r for r in _recorded(generated) if r.path.endswith(("/trace", "/metrics"))]


def _runner(env: BridgeEnv, monkeypatch: pytest.MonkeyPatch) -> RunOnce:
    for key in list(os.environ):
        if key.startswith(("LETTA_", "OTEL_")):
            monkeypatch.delenv(key)

    def run(*flags: str, **extra: str) -> int:
        for key, value in env.env(**extra).items():
            monkeypatch.setenv(key, value)
        return cli.main(["run", "--once", *flags])

    return run


def test_a_run_waits_until_it_has_finished(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    data = bridge_env.letta.data
    two_step = [r for r in data.run_ids() if len(data.run_step_ids(r)) == 2]
    run_id = next(r for r in two_step if Sampler(0.5).keeps(r) and r not in _failure_runs(data))
    first, second = data.run_step_ids(run_id)
    data.set_pending(second)
    assert run_once("--sample-ratio", "1/2") == 0
    assert first not in _exported(receiver)  # finished, but held for its run
    assert run_id not in _roots(receiver)

    data.complete(second)
    assert run_once("--sample-ratio", "1/2") == 0
    exported = _exported(receiver)
    assert exported[first] == exported[second] == 1
    spans = [s for s in receiver.spans if s.attributes.get("letta.run.id") == run_id]
    assert {s.attributes["SampleRate"] for s in spans} == {2}
    assert run_id in _roots(receiver)


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.runs: list[RunRecord] = []

    def step_accounted(self, record: StepRecord, llm: bool = True) -> None:
        self.steps.append(record)

    def run_accounted(self, record: RunRecord) -> None:
        self.runs.append(record)


def test_sampled_out_runs_are_handed_to_the_metrics_observer(
    letta: FakeLettaServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    settings = Settings(
        letta_base_url=letta.base_url,
        otlp_traces_endpoint=receiver.grpc_endpoint,
        sample_ratio=0.0,
    )
    recorder = Recorder()

    async def cycle() -> None:
        client = build_client(settings)
        state = StateStore(tmp_path / "s.db")
        sink = build_sink(settings)
        enricher = Enricher(client)
        discovery = (
            StepsDiscovery(client, timedelta(hours=1), None)
            if letta.steps_route == "ok"
            else RunsDiscovery(client, timedelta(hours=1), None)
        )
        try:
            bridge = Bridge(
                discovery=discovery,
                enricher=enricher,
                sink=sink,
                state=state,
                context=build_context(settings),
                options=BridgeOptions(),
                selection=Selection(build_filters(settings), Sampler(0.0), enricher),
                observer=recorder,
            )
            report = await bridge.cycle(once=True)
            assert report.ok
            assert (report.sampled_out_steps, report.sampled_out_runs) == (11, 7)
            await bridge.aclose()
        finally:
            await client.aclose()
            sink.shutdown()
            state.close()

    asyncio.run(cycle())
    data = letta.data
    failures = _failure_runs(data)
    assert _roots(receiver) == failures
    # Every run and step is accounted exactly once: the exported failures after their
    # batch was confirmed, the sampled-out rest when sampling settled them.
    assert sorted(r.run.id for r in recorder.runs) == sorted(data.run_ids())
    assert sorted(r.step.id for r in recorder.steps) == sorted(data.expected_terminal_step_ids())
    assert all(r.run is not None and r.agent is not None for r in recorder.steps)
    assert sum(r.step.total_tokens or 0 for r in recorder.steps) > 0
