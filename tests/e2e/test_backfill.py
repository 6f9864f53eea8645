"""``letta-otel backfill`` over real sockets, on both discovery routes."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from letta_otel import cli
from letta_otel.config.shard import parse_shard
from letta_otel.state import StateStore
from tests.e2e.conftest import BridgeEnv, isolated_environ, spawn, step_spans
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver

HOURS_AGO = 3


@pytest.fixture
def sample_data() -> FakeLettaData:
    # 40 runs ten minutes apart, the newest ending three hours ago: outside the
    # daemon's default one-hour lookback, inside the default seven-day backfill age.
    end = datetime.now(UTC) - timedelta(hours=HOURS_AGO)
    return FakeLettaData.generate(40, end=end, spacing=timedelta(minutes=10))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _backfill(env: BridgeEnv, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    for key, value in isolated_environ(env.env()).items():
        monkeypatch.setenv(key, value)
    return cli.main(["backfill", *args])


def _step_ids(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(str(s.attributes["letta.step.id"]) for s in step_spans(receiver.spans))


def _meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())


def test_backfill_exports_a_past_range_once_and_leaves_the_live_cursor_alone(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    steps_route: str,
) -> None:
    data = bridge_env.letta.data
    since = datetime.now(UTC) - timedelta(hours=HOURS_AGO + 12)
    assert _backfill(bridge_env, monkeypatch, "--since", _iso(since)) == 0
    exported = _step_ids(receiver)
    assert set(exported) == set(data.expected_terminal_step_ids())
    assert max(exported.values()) == 1
    meta = _meta(bridge_env.state_path)
    assert "steps.cursor" not in meta and "runs.watermark" not in meta
    if steps_route == "ok":  # its own cursor (the runs fallback resumes by dedupe)
        assert any(k.startswith("backfill.") and k.endswith(".cursor") for k in meta)

    # Again: nothing is sent twice; and the daemon's first run finds nothing new.
    assert _backfill(bridge_env, monkeypatch, "--since", _iso(since)) == 0
    assert cli.main(["run", "--once"]) == 0
    assert _step_ids(receiver) == exported


def test_until_and_agent_bound_the_range(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bridge_env.letta.data
    runs = sorted(data.run_ids(), key=data.created_at)
    since = data.created_at(runs[10]) - timedelta(minutes=1)
    until = data.created_at(runs[19]) + timedelta(minutes=1)
    agent = data.step(data.run_step_ids(runs[10])[0])["agent_id"]
    code = _backfill(
        bridge_env, monkeypatch, "--since", _iso(since), "--until", _iso(until), "--agent", agent
    )
    assert code == 0
    wanted = {
        sid
        for rid in runs[10:20]
        for sid in data.run_step_ids(rid)
        if data.step(sid)["agent_id"] == agent
    }
    assert wanted and set(_step_ids(receiver)) == wanted


def test_filters_apply_to_a_backfill_as_to_the_daemon(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bridge_env.letta.data
    since = _iso(datetime.now(UTC) - timedelta(hours=HOURS_AGO + 12))
    monkeypatch.setenv("LETTA_OTEL_FILTER_STEP_STATUSES", "failed")
    assert _backfill(bridge_env, monkeypatch, "--since", since) == 0
    failed = {s for s in data.expected_terminal_step_ids() if data.step(s)["status"] == "failed"}
    assert failed and set(_step_ids(receiver)) == failed


def test_a_sharded_backfill_exports_only_its_agents(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bridge_env.letta.data
    since = _iso(datetime.now(UTC) - timedelta(hours=HOURS_AGO + 12))
    agents = {data.step(s)["agent_id"] for s in data.expected_terminal_step_ids()}
    shard_of = {a: parse_shard("1/2").owns(a) for a in agents}
    assert set(shard_of.values()) == {True, False}, "the sample's agents share a shard"
    assert _backfill(bridge_env, monkeypatch, "--since", since, "--shard", "1/2") == 0
    mine = {s for s in data.expected_terminal_step_ids() if shard_of[data.step(s)["agent_id"]]}
    assert set(_step_ids(receiver)) == mine


def test_too_old_is_refused_unless_forced(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    since = _iso(datetime.now(UTC) - timedelta(hours=HOURS_AGO + 12))
    monkeypatch.setenv("LETTA_OTEL_BACKFILL_MAX_AGE", "2h")
    code = _backfill(bridge_env, monkeypatch, "--since", since, "--backfill-max-age", "2h")
    assert code == 2
    assert "LETTA_OTEL_BACKFILL_MAX_AGE" in capfd.readouterr().err
    assert receiver.spans == []
    code = _backfill(
        bridge_env, monkeypatch, "--since", since, "--backfill-max-age", "2h", "--force"
    )
    assert code == 0 and receiver.spans


def test_a_running_daemon_is_named_clearly(
    bridge_env: BridgeEnv, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    holder = StateStore(bridge_env.state_path)
    try:
        since = _iso(datetime.now(UTC) - timedelta(hours=HOURS_AGO + 12))
        assert _backfill(bridge_env, monkeypatch, "--since", since) == 2
    finally:
        holder.close()
    err = capfd.readouterr().err
    assert "held by a running letta-otel" in err and "--state-path" in err


def test_interrupted_backfill_resumes_without_duplicates(
    receiver: OtlpReceiver, tmp_path: Path, steps_route: str
) -> None:
    end = datetime.now(UTC) - timedelta(hours=HOURS_AGO)
    data = FakeLettaData.generate(60, end=end, spacing=timedelta(minutes=2))
    with FakeLettaServer(data, steps_route=steps_route, latency_s=0.03) as server:  # type: ignore[arg-type]
        env = BridgeEnv(server, receiver, tmp_path / "state.db").env(
            LETTA_OTEL_MAX_CONCURRENCY="2", LETTA_OTEL_MAX_BATCH_SPANS="4"
        )
        since = _iso(end - timedelta(hours=4))
        proc = spawn(env, "backfill", "--since", since)
        receiver.wait_for_spans(8, timeout=60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        partial = _step_ids(receiver)
        assert 0 < len(partial) < len(data.expected_terminal_step_ids())
        deadline = time.monotonic() + 60
        proc = spawn(env, "backfill", "--since", since)
        assert proc.wait(timeout=max(deadline - time.monotonic(), 1)) == 0
    exported = _step_ids(receiver)
    assert set(exported) == set(data.expected_terminal_step_ids())
    assert max(exported.values()) == 1
