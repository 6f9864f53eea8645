"""Throughput features over real sockets: cycles in slices, shards, the pipeline.

No timing is asserted here (performance is measured by ``benchmarks/bench.py``);
these tests check that the faster paths keep "nothing lost, nothing doubled".
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from letta_otel import assemble
from tests.e2e.conftest import BridgeEnv, RunOnce, run_spans, step_spans
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver


@pytest.fixture
def sample_data() -> FakeLettaData:
    return FakeLettaData.generate(120)  # 168 steps: a few listing pages


def _step_ids(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(str(s.attributes["letta.step.id"]) for s in step_spans(receiver.spans))


def test_once_cycles_until_the_listing_is_exhausted(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(assemble, "PAGES_PER_CYCLE", 1)
    monkeypatch.setattr("letta_otel.letta.discovery.STEPS_PAGE", 50)
    monkeypatch.setattr("letta_otel.letta.discovery.RUNS_PAGE", 50)
    assert run_once("--max-batch-spans", "7") == 0
    exported = _step_ids(receiver)
    assert set(exported) == set(letta.data.expected_terminal_step_ids())
    assert max(exported.values()) == 1
    runs = Counter(str(s.attributes["letta.run.id"]) for s in run_spans(receiver.spans))
    assert set(runs) == set(letta.data.run_ids()) and max(runs.values()) == 1
    if letta.steps_route == "ok":  # the steps listing is sliced into cycles
        assert capfd.readouterr().err.count("cycle via steps") >= 3


def test_shards_split_the_agents_without_overlap(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    tmp_path: Path,
    run_once: RunOnce,
) -> None:
    by_shard: list[Counter[str]] = []
    for k in (1, 2):
        receiver.clear()
        code = run_once("--shard", f"{k}/2", LETTA_OTEL_STATE_PATH=str(tmp_path / f"shard{k}.db"))
        assert code == 0
        by_shard.append(_step_ids(receiver))
        agents = {str(s.attributes["letta.agent.id"]) for s in step_spans(receiver.spans)}
        assert len(agents) == 1  # the two sample agents land on different shards
    first, second = by_shard
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(letta.data.expected_terminal_step_ids())
    assert max((first + second).values()) == 1


def test_max_rps_still_exports_everything(run_once: RunOnce, receiver: OtlpReceiver) -> None:
    assert run_once(LETTA_OTEL_MAX_RPS="2000", LETTA_OTEL_MAX_CONCURRENCY="4") == 0
    assert len(step_spans(receiver.spans)) == 168


def test_reread_sweeps_past_the_cycle_page_budget(
    bridge_env: BridgeEnv,
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(assemble, "PAGES_PER_CYCLE", 1)
    monkeypatch.setattr("letta_otel.letta.discovery.STEPS_PAGE", 20)
    data = letta.data
    ordered = sorted(data.expected_terminal_step_ids(), key=data.created_at)
    late = ordered[-10]  # near the end of the window: far past one cycle's single page
    data.hide(late)
    assert run_once() == 0
    assert late not in _step_ids(receiver)
    data.reveal(late)
    with sqlite3.connect(bridge_env.state_path) as db:  # make the once-a-minute re-read due
        db.execute("UPDATE meta SET value = '2000-01-01T00:00:00+00:00' WHERE key = 'reread.last'")
    assert run_once() == 0
    exported = _step_ids(receiver)
    assert exported[late] == 1 and max(exported.values()) == 1
    assert set(exported) == set(data.expected_terminal_step_ids())


def test_a_run_root_never_precedes_its_steps_across_slices(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(assemble, "PAGES_PER_CYCLE", 1)
    monkeypatch.setattr("letta_otel.letta.discovery.STEPS_PAGE", 7)  # many slice boundaries
    assert run_once() == 0
    arrival = {s.span_id: i for i, s in enumerate(receiver.spans)}
    runs = {str(s.attributes["letta.run.id"]): s for s in run_spans(receiver.spans)}
    assert set(runs) == set(letta.data.run_ids())
    for span in step_spans(receiver.spans):
        root = runs[str(span.attributes["letta.run.id"])]
        assert arrival[root.span_id] > arrival[span.span_id]
