"""The Letta-like live workload: runs arrive, and each part of a step appears on time.

Driven by a fake clock (``FakeLettaData.clock``), so every assertion is exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fakes.letta_api import FakeLettaData, FakeLettaServer, FaultInjector
from tests.fakes.workload import (
    FAULT_MIX,
    LettaLikeWorkload,
    StepTruth,
    WorkloadConfig,
    add_random_faults,
    request_kind,
    requests_by_kind,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


def _workload(
    seconds: float, *, seed: int = 1, config: WorkloadConfig | None = None, step: float = 1.0
) -> tuple[FakeLettaData, LettaLikeWorkload, Clock]:
    clock = Clock()
    data = FakeLettaData.empty(seed=seed)
    data.clock = clock
    workload = LettaLikeWorkload(data, config, seed=seed)
    workload.start()
    t = 0.0
    while t < seconds:
        t += step
        clock.set(T0 + timedelta(seconds=t))
        data.now()
    return data, workload, clock


@pytest.fixture(scope="module")
def ten_minutes() -> tuple[FakeLettaData, LettaLikeWorkload, Clock]:
    data, workload, clock = _workload(600)
    workload.stop()  # tests move the clock about; the runs stay those of these 10 minutes
    return data, workload, clock


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


@pytest.fixture
def served(
    ten_minutes: tuple[FakeLettaData, LettaLikeWorkload, Clock],
) -> Iterator[tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock]]:
    data, workload, clock = ten_minutes
    saved = clock.at
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        yield client, data, workload, clock
    clock.set(saved)


def _first(workload: LettaLikeWorkload, pred: Any) -> StepTruth:
    return next(s for s in workload.steps() if pred(s))


# --- generation --------------------------------------------------------------------------


def test_same_seed_same_workload_however_the_clock_is_read() -> None:
    _, coarse, _ = _workload(120, seed=5, step=7.0)
    _, fine, _ = _workload(120, seed=5, step=0.25)
    horizon = T0 + timedelta(seconds=112)  # both clocks passed it
    a = [s for s in coarse.steps() if s.created < horizon]
    b = [s for s in fine.steps() if s.created < horizon]
    assert a == b and len(a) > 100
    _, other, _ = _workload(120, seed=6)
    assert {s.step_id for s in other.steps()}.isdisjoint(s.step_id for s in a)


def test_shares_mirror_the_issue(
    ten_minutes: tuple[FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    data, workload, _ = ten_minutes
    steps, runs = workload.steps(), workload.runs()
    assert 540 <= len(runs) <= 660  # 1 run/s for 600 s
    assert 1.8 <= len(steps) / len(runs) <= 2.3  # a few steps each
    assert len(steps) / len(runs) == pytest.approx(workload.mean_steps_per_run(), rel=0.1)
    late = [s for s in steps if s.late_commit]
    assert 0.04 <= len(late) / len(steps) <= 0.08
    assert all(3 <= (s.visible - s.created).total_seconds() <= 10 for s in late)
    failed = [s for s in steps if s.failed]
    assert 0.03 <= len(failed) / len(steps) <= 0.08
    assert 0.2 <= sum(not s.has_trace for s in failed) / len(failed) <= 0.45  # about a third
    ok = [s for s in steps if not s.failed]
    assert 0.015 <= sum(not s.has_trace for s in ok) / len(ok) <= 0.045  # about 3%
    for s in steps:
        assert s.created <= s.ended <= s.terminal <= s.terminal + timedelta(seconds=2)
        assert (s.terminal - s.ended).total_seconds() <= 2
        assert s.metrics_at is not None and 0 <= (s.metrics_at - s.terminal).total_seconds() <= 0.5
        if s.trace_at is not None:
            assert 0 <= (s.trace_at - s.terminal).total_seconds() <= 6
    runless = [r for r in runs if r.runless]
    assert 3 <= len(runless) <= 30
    assert all(workload.step(sid).run_id is None for r in runless for sid in r.step_ids)
    assert {r.status for r in runs} == {"completed", "failed"}
    assert max(len(r.step_ids) for r in runs) >= 4
    # every step of a failed run that failed is its last; runs end with their last step
    for run in runs:
        truths = [workload.step(s) for s in run.step_ids]
        assert run.terminal == max(t.terminal for t in truths)
        assert [t.created for t in truths] == sorted(t.created for t in truths)
    assert len(data) == len(steps)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="rate"):
        WorkloadConfig(rate=0)
    with pytest.raises(ValueError, match="late_commit"):
        WorkloadConfig(late_commit=1.5)
    cfg = WorkloadConfig(trace_delay=lambda rng: 30.0, failed_runs=0, late_commit=0, no_trace=0)
    _, workload, _ = _workload(30, config=cfg)
    assert all(
        s.trace_at is None or s.trace_at - s.terminal == timedelta(seconds=30)
        for s in workload.steps()
    )


def test_stop_ends_arrivals_but_not_runs_under_way() -> None:
    data, workload, clock = _workload(60)
    workload.stop()
    n = len(workload.runs())
    clock.set(clock.at + timedelta(minutes=5))
    assert len(workload.runs()) == len(_ids(data.runs(include_hidden=True))) == n
    assert set(data.expected_terminal_step_ids()) == {s.step_id for s in workload.steps()}


# --- what is served when ---------------------------------------------------------------


def test_a_step_appears_part_by_part(
    served: tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    client, data, workload, clock = served
    s = _first(
        workload,
        lambda s: (
            s.has_trace and not s.late_commit and s.run_id and s.created > T0 + timedelta(minutes=1)
        ),
    )
    url = f"/v1/steps/{s.step_id}"
    clock.set(s.created - US)  # not started yet
    assert client.get(url).status_code == 404
    assert s.step_id not in _ids(client.get("/v1/steps/", params={"limit": 200}).json())
    clock.set(s.created)
    step = client.get(url).json()
    assert step["status"] == "pending" and step["stop_reason"] is None
    assert s.step_id in _ids(client.get("/v1/steps/", params={"limit": 200}).json())
    assert client.get(f"/v1/runs/{s.run_id}").json()["status"] == "running"
    clock.set(s.terminal - US)  # ended, but the row is not updated yet
    assert client.get(url).json()["status"] == "pending"
    assert s.step_id not in data.expected_terminal_step_ids()
    clock.set(s.terminal)
    assert client.get(url).json()["status"] == s.status
    assert s.step_id in data.expected_terminal_step_ids()
    assert client.get(f"{url}/trace").json() is None
    metrics = client.get(f"{url}/metrics")
    assert metrics.status_code == 404 and "StepMetrics" in metrics.json()["detail"]
    assert s.metrics_at is not None and s.trace_at is not None
    clock.set(s.metrics_at)
    assert client.get(f"{url}/metrics").json()["id"] == s.step_id
    clock.set(s.trace_at - US)
    assert client.get(f"{url}/trace").json() is None
    clock.set(s.trace_at)
    trace = client.get(f"{url}/trace").json()
    assert (trace["step_id"], trace["run_id"]) == (s.step_id, s.run_id)
    assert s.run_id is not None
    run = workload.run(s.run_id)
    clock.set(run.terminal)
    assert client.get(f"/v1/runs/{s.run_id}").json()["status"] == run.status


def test_steps_without_a_trace_never_get_one(
    served: tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    client, _, workload, clock = served
    missing = [s for s in workload.steps() if not s.has_trace]
    assert {s.scenario for s in missing} >= {"stream_fail", "plain"}
    clock.set(T0 + timedelta(hours=1))
    for s in missing[:20]:
        assert client.get(f"/v1/steps/{s.step_id}").json()["status"] == s.status
        assert client.get(f"/v1/steps/{s.step_id}/trace").json() is None


def test_late_commit_is_invisible_until_committed(
    served: tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    client, _, workload, clock = served
    s = _first(workload, lambda s: s.late_commit and s.run_id and s.visible > s.terminal)
    clock.set(s.visible - US)  # terminal already, still not committed
    assert client.get(f"/v1/steps/{s.step_id}").status_code == 404
    since = {"order": "asc", "start_date": (s.created - timedelta(seconds=1)).isoformat()}
    assert s.step_id not in _ids(client.get("/v1/steps/", params=since).json())
    assert s.step_id not in _ids(client.get(f"/v1/runs/{s.run_id}/steps").json())
    clock.set(s.visible)
    listed = client.get("/v1/steps/", params=since).json()
    assert s.step_id in _ids(listed)
    newer = [x for x in listed if workload.step(x["id"]).created > s.created]
    assert newer and _ids(listed).index(s.step_id) < _ids(listed).index(newer[0]["id"])
    assert client.get(f"/v1/steps/{s.step_id}").json()["status"] == s.status
    assert s.step_id in _ids(client.get(f"/v1/runs/{s.run_id}/steps").json())


def test_failed_run_carries_its_error(
    served: tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    client, _, workload, clock = served
    run = next(r for r in workload.runs() if r.status == "failed" and not r.runless)
    clock.set(run.terminal - US)
    assert client.get(f"/v1/runs/{run.run_id}").json()["status"] == "running"
    clock.set(run.terminal)
    served_run = client.get(f"/v1/runs/{run.run_id}").json()
    assert served_run["status"] == "failed" and served_run["metadata"]["error"]
    assert served_run["completed_at"] is not None
    failed = client.get(f"/v1/steps/{run.step_ids[-1]}").json()
    assert failed["status"] == "failed" and failed["error_type"] and failed["error_data"]
    assert failed["model"] and failed["provider_name"]
    listed = client.get("/v1/runs/", params={"statuses": "failed", "limit": 1000}).json()
    assert run.run_id in _ids(listed)


def test_steps_without_a_run(
    served: tuple[httpx.Client, FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    client, _, workload, clock = served
    run = next(r for r in workload.runs() if r.runless and r.status == "completed")
    truths = [workload.step(s) for s in run.step_ids]
    clock.set(max([*(t.visible for t in truths), run.terminal]) + timedelta(seconds=7))
    for sid in run.step_ids:
        assert client.get(f"/v1/steps/{sid}").json()["run_id"] is None
        assert client.get(f"/v1/steps/{sid}/metrics").json()["run_id"] is None
        trace = client.get(f"/v1/steps/{sid}/trace").json()
        assert trace is None or trace["run_id"] is None
        msgs = client.get(f"/v1/steps/{sid}/messages").json()
        assert msgs and all(m["run_id"] is None for m in msgs)
    assert client.get(f"/v1/runs/{run.run_id}").status_code == 404
    assert client.get(f"/v1/runs/{run.run_id}/steps").status_code == 404
    assert run.run_id not in _ids(client.get("/v1/runs/", params={"limit": 1000}).json())


def test_runs_fallback_sees_the_same_dynamics(
    ten_minutes: tuple[FakeLettaData, LettaLikeWorkload, Clock],
) -> None:
    data, workload, clock = ten_minutes
    s = _first(workload, lambda s: s.late_commit and s.run_id and s.visible > s.terminal)
    assert s.run_id is not None
    with (
        FakeLettaServer(data, steps_route="legacy400") as srv,
        httpx.Client(base_url=srv.base_url) as client,
    ):
        assert client.get("/v1/steps/").status_code == 400
        clock.set(workload.run(s.run_id).created - US)
        assert s.run_id not in _ids(client.get("/v1/runs/", params={"limit": 1000}).json())
        clock.set(s.visible - US)
        assert s.run_id in _ids(client.get("/v1/runs/", params={"limit": 1000}).json())
        assert s.step_id not in _ids(client.get(f"/v1/runs/{s.run_id}/steps").json())
        clock.set(s.visible)
        steps = client.get(f"/v1/runs/{s.run_id}/steps").json()
        assert {x["id"]: x["status"] for x in steps}[s.step_id] == s.status


# --- backlog -------------------------------------------------------------------------------


def test_backlog_is_frozen_in_flux() -> None:
    data = FakeLettaData.empty(seed=2)
    workload = LettaLikeWorkload.backlog(data, 3000, WorkloadConfig(rate=10), seed=2)
    frozen = data.clock()
    steps = workload.steps()
    assert len(steps) >= 3000
    assert abs(frozen - datetime.now(UTC)) < timedelta(minutes=2)
    expected = data.expected_terminal_step_ids()
    pending = [s for s in steps if s.created <= frozen < s.terminal]
    unwritten = [s for s in steps if s.has_trace and s.terminal <= frozen < s.trace_at]  # type: ignore[operator]
    uncommitted = [s for s in steps if s.created <= frozen < s.visible]
    assert pending and unwritten and uncommitted
    assert [s for s in steps if s.created > frozen]  # steps of the last runs not started yet
    ready = {s.step_id for s in steps if s.terminal <= frozen and s.visible <= frozen}
    assert set(expected) == ready and len(expected) < len(steps)
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        time.sleep(0.05)  # time passes; the backlog does not change
        assert client.get(f"/v1/steps/{unwritten[0].step_id}/trace").json() is None
        assert client.get(f"/v1/steps/{pending[0].step_id}").json()["status"] == "pending"
        assert client.get(f"/v1/steps/{uncommitted[0].step_id}").status_code == 404
    assert data.expected_terminal_step_ids() == expected
    again = LettaLikeWorkload.backlog(
        FakeLettaData.empty(seed=2), 3000, WorkloadConfig(rate=10), seed=2, end=frozen
    )
    assert [s.step_id for s in again.steps()] == [s.step_id for s in steps]
    assert again.runs()[-1].created == frozen  # the last run arrived as the clock stopped
    # the same seed live: the same runs, unfolding the same way after their arrival
    _, live, _ = _workload(60, seed=2, config=WorkloadConfig(rate=10))
    for a, b in zip(live.runs()[:100], workload.runs(), strict=False):
        assert (a.scenario, a.status, a.runless, a.terminal - a.created) == (
            b.scenario,
            b.status,
            b.runless,
            b.terminal - b.created,
        )


# --- faults and accounting --------------------------------------------------------------


def test_random_faults_hit_a_seeded_fraction() -> None:
    def hits(seed: int) -> list[str | None]:
        faults = FaultInjector(seed)
        add_random_faults(faults, hang_fraction=0.01, hang_seconds=20, fault_fraction=0.07)
        out: list[str | None] = []
        for _ in range(20_000):
            rule = faults.take("GET", "/v1/steps/step-x/trace")
            out.append(rule.kind if rule else None)
        assert faults.take("GET", "/v1/health/") is None  # start-up checks are left alone
        return out

    first = hits(3)
    assert first == hits(3) and first != hits(4)
    kinds = [k for k in first if k]
    assert 0.006 <= kinds.count("timeout") / len(first) <= 0.014
    assert 0.055 <= (len(kinds) - kinds.count("timeout")) / len(first) <= 0.085
    assert set(kinds) == {"timeout", *FAULT_MIX}
    with pytest.raises(ValueError, match="fraction"):
        FaultInjector().add("x", "500", fraction=2)


def test_hang_then_answer_over_http() -> None:
    data = FakeLettaData.from_samples()
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        srv.faults.reseed(0)
        add_random_faults(srv.faults, hang_fraction=1.0, hang_seconds=0.3)
        t0 = time.monotonic()
        assert client.get("/v1/runs/").status_code == 200
        assert time.monotonic() - t0 >= 0.3
        assert client.get("/v1/health/").status_code == 200


def test_request_kinds() -> None:
    sid, rid = "step-00000000-0000-4000-8000-000000000000", "run-x"
    assert [
        request_kind(p)
        for p in (
            "/v1/steps/",
            f"/v1/steps/{sid}",
            f"/v1/steps/{sid}/trace",
            f"/v1/steps/{sid}/metrics",
            f"/v1/steps/{sid}/messages",
            "/v1/runs/",
            f"/v1/runs/{rid}",
            f"/v1/runs/{rid}/steps",
            f"/v1/runs/{rid}/usage",
            "/v1/agents/agent-1",
            "/v1/health/",
            "/nope",
        )
    ] == [
        "steps listing",
        "step re-read",
        "trace",
        "metrics",
        "messages",
        "runs listing",
        "run by id",
        "run steps listing",
        "run parts",
        "agents",
        "health",
        "other",
    ]
    data = FakeLettaData.from_samples()
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        client.get("/v1/steps/")
        client.get(f"/v1/steps/{data.step_ids()[0]}/trace")
        assert requests_by_kind(srv.requests) == {"steps listing": 1, "trace": 1}
