"""The fake Letta API behaves like the real 0.16.8 server (checked against captured probes)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fakes.letta_api import (
    DEFAULT_FIXTURES_DIR,
    FakeLettaData,
    FakeLettaServer,
)

SAMPLES = DEFAULT_FIXTURES_DIR
V1_AGENT = "agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5"
MEMGPT_AGENT = "agent-df73fa68-abaa-4d0c-8a06-b4df607e0381"
ASYNC_RUN = "run-eca8caad-602a-4f0d-834b-4609aa4e1b04"
ASYNC_STEPS = [
    "step-c27885c7-1dce-47fe-b444-644a230cb558",
    "step-c9548f36-dfa5-45a9-bbb6-8c8c0133a2d9",
]
STREAM_FAIL_STEP = "step-2ef091a6-87d5-4e64-8f07-6f6f7ecec12c"


def _load(rel: str) -> Any:
    return json.loads((SAMPLES / rel).read_text())


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


@pytest.fixture
def data() -> FakeLettaData:
    return FakeLettaData.from_samples()


@pytest.fixture
def srv(data: FakeLettaData) -> Iterator[FakeLettaServer]:
    with FakeLettaServer(data) as server:
        yield server


@pytest.fixture
def client(srv: FakeLettaServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url, timeout=5) as c:
        yield c


def _page_all(client: httpx.Client, path: str, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        q = dict(params, **({"after": cursor} if cursor else {}))
        page = client.get(path, params=q).json()
        if not page:
            return seen
        seen += _ids(page)
        cursor = page[-1]["id"]


# --- GET /v1/steps/ --------------------------------------------------------------------------


def test_from_samples_shape(data: FakeLettaData) -> None:
    assert (len(data.step_ids()), len(data.run_ids()), len(data.agents())) == (14, 10, 2)
    newest_end = max(
        datetime.fromisoformat(r["completed_at"]).replace(tzinfo=UTC) for r in data.runs()
    )
    assert abs(newest_end - (datetime.now(UTC) - timedelta(minutes=1))) < timedelta(seconds=5)
    # quirks kept: zone-less completed_at, Z on created_at, no created_at on steps
    run = data.run(ASYNC_RUN)
    assert run["created_at"].endswith("Z") and not run["completed_at"].endswith("Z")
    assert "created_at" not in data.step(ASYNC_STEPS[0])
    # steps of a run are in run order; the trace is after the derived step start
    trace = data.trace(ASYNC_STEPS[0])
    assert datetime.fromisoformat(trace["created_at"]) > data.created_at(ASYNC_STEPS[0])
    assert data.created_at(ASYNC_STEPS[0]) < data.created_at(ASYNC_STEPS[1])


def test_steps_asc_paging_reproduces_real_order(client: httpx.Client, data: FakeLettaData) -> None:
    ours = set(data.step_ids())
    real = [s["id"] for s in _load("list_steps_patched/steps_list_asc_all.json") if s["id"] in ours]
    assert len(real) == 14
    assert _page_all(client, "/v1/steps/", order="asc", limit=3) == real
    # desc is the default, newest first
    assert _ids(client.get("/v1/steps/").json()) == real[::-1]
    assert _page_all(client, "/v1/steps/", limit=4) == real[::-1]


def _probe_cases() -> list[dict[str, Any]]:
    probes = _load("list_steps_patched/steps_list_probes.json")
    return [p for p in probes if "params" in p and p["params"].get("limit") not in (3,)]


@pytest.mark.parametrize("probe", _probe_cases(), ids=lambda p: p["label"])
def test_steps_list_matches_patched_server_probe(probe: dict[str, Any]) -> None:
    """Same query on the unshifted samples gives the real answer restricted to our 14 steps."""
    data = FakeLettaData.from_samples(shift=False)
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        resp = client.get("/v1/steps/", params=probe["params"])
    assert resp.status_code == probe["http_status"]
    if "ids" in probe:
        ours = set(data.step_ids())
        assert _ids(resp.json()) == [i for i in probe["ids"] if i in ours]
    elif "trace_id" in probe["body"]:
        assert resp.json()["detail"] == probe["body"]["detail"]
    else:
        assert resp.json() == probe["body"]


def test_unknown_cursor_404(client: httpx.Client) -> None:
    resp = client.get("/v1/steps/", params={"after": "step-00000000-0000-4000-8000-000000000000"})
    assert resp.status_code == 404
    assert resp.json() == {
        "detail": "No Step found with id step-00000000-0000-4000-8000-000000000000"
    }


def test_dates_are_exclusive_and_lenient(client: httpx.Client, data: FakeLettaData) -> None:
    ids = data.step_ids()
    pivot = data.created_at(ids[5])
    after = _ids(
        client.get("/v1/steps/", params={"order": "asc", "start_date": pivot.isoformat()}).json()
    )
    assert after == ids[6:]
    before = _ids(
        client.get("/v1/steps/", params={"order": "asc", "end_date": pivot.isoformat()}).json()
    )
    assert before == ids[:5]
    naive = pivot.replace(tzinfo=None).isoformat()
    z = pivot.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for value in (naive, z):
        got = client.get("/v1/steps/", params={"order": "asc", "start_date": value}).json()
        assert _ids(got) == ids[6:]
    day = (pivot - timedelta(days=1)).date().isoformat()
    assert len(client.get("/v1/steps/", params={"start_date": day}).json()) == 14


def test_steps_filters(client: httpx.Client, data: FakeLettaData) -> None:
    memgpt = client.get("/v1/steps/", params={"agent_id": MEMGPT_AGENT}).json()
    assert len(memgpt) == 3 and {s["agent_id"] for s in memgpt} == {MEMGPT_AGENT}
    trace_id = data.step(ASYNC_STEPS[0])["trace_id"]
    got = client.get("/v1/steps/", params={"trace_ids": [trace_id, "0" * 32]}).json()
    assert sorted(_ids(got)) == sorted(ASYNC_STEPS)
    data.patch_step(ASYNC_STEPS[1], feedback="positive")
    assert _ids(client.get("/v1/steps/", params={"has_feedback": "true"}).json()) == [
        ASYNC_STEPS[1]
    ]
    assert _ids(client.get("/v1/steps/", params={"feedback": "positive"}).json()) == [
        ASYNC_STEPS[1]
    ]
    assert client.get("/v1/steps/", params={"model": "nope"}).json() == []


def test_project_filter_query_and_header(client: httpx.Client, data: FakeLettaData) -> None:
    data.set_project_id(ASYNC_RUN, "project-1")
    assert data.metrics(ASYNC_STEPS[0])["project_id"] == "project-1"
    by_query = client.get("/v1/steps/", params={"project_id": "project-1"}).json()
    by_header = client.get("/v1/steps/", headers={"X-Project": "project-1"}).json()
    assert sorted(_ids(by_query)) == sorted(_ids(by_header)) == sorted(ASYNC_STEPS)
    runs = client.get("/v1/runs/", headers={"X-Project": "project-1"}).json()
    assert _ids(runs) == [ASYNC_RUN]
    gen = FakeLettaData.generate(3, project_id="p-9")
    assert {s["project_id"] for s in gen.steps()} == {"p-9"}


def test_legacy400_matches_stock_server() -> None:
    probes = _load("steps_list_probes.json")
    with (
        FakeLettaServer(FakeLettaData.from_samples(), steps_route="legacy400") as srv,
        httpx.Client(base_url=srv.base_url) as client,
    ):
        for probe in (p for p in probes if "params" in p):
            resp = client.get("/v1/steps/", params=probe["params"])
            assert resp.status_code == probe["http_status"]
            if resp.status_code == 422:
                assert resp.json()["detail"] == probe["body"]["detail"]
            else:
                assert resp.json() == probe["body"]
        assert sum("params" in p and p["http_status"] == 400 for p in probes) == 10
        srv.steps_route = "ok"  # runtime switch
        assert client.get("/v1/steps/").status_code == 200


def test_redirect_without_slash(client: httpx.Client) -> None:
    resp = client.get("/v1/steps", params={"limit": 1})
    assert resp.status_code == 307
    assert resp.headers["location"].endswith("/v1/steps/?limit=1")
    assert len(client.get("/v1/steps", params={"limit": 1}, follow_redirects=True).json()) == 1


def test_step_routes_and_errors(client: httpx.Client, data: FakeLettaData) -> None:
    errors = _load("errors.json")
    unknown = "step-00000000-0000-4000-8000-000000000000"
    assert client.get(f"/v1/steps/{unknown}").json() == errors["step_404"][1]
    resp = client.get(f"/v1/steps/{unknown}/trace")
    assert (resp.status_code, resp.json()) == (200, None)
    resp = client.get(f"/v1/steps/{unknown}/metrics")
    assert (resp.status_code, resp.json()) == (404, errors["metrics_unknown_step"][1])
    bad = client.get("/v1/steps/not-a-step-id").json()
    assert bad["detail"] == errors["step_bad_id"][1]["detail"]
    assert (
        client.get("/v1/runs/run-00000000-0000-4000-8000-000000000000").json()
        == errors["run_404"][1]
    )
    sid = ASYNC_STEPS[0]
    assert client.get(f"/v1/steps/{sid}").json() == data.step(sid)
    assert client.get(f"/v1/steps/{sid}/trace").json() == data.trace(sid)
    assert client.get(f"/v1/steps/{sid}/metrics").json()["step_ns"] == 1624679381
    msgs = client.get(f"/v1/steps/{sid}/messages").json()
    assert [m["message_type"] for m in msgs] == [
        "user_message",
        "tool_call_message",
        "tool_return_message",
    ]
    assert client.get(f"/v1/steps/{STREAM_FAIL_STEP}/trace").json() is None
    assert client.get("/v1/health/").json() == {"version": "0.16.8", "status": "ok"}
    agent = client.get(f"/v1/agents/{MEMGPT_AGENT}").json()
    assert (agent["name"], agent["tags"]) == ("otel-demo-memgpt", ["otel-demo", "memgpt_v2"])
    assert client.get(f"/v1/agents/{V1_AGENT}").json()["name"] == "otel-demo-v1"
    assert client.get("/v1/agents/agent-00000000-0000-4000-8000-000000000000").status_code == 404


# --- runs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("probe", _load("runs_list_probes.json"), ids=lambda p: str(p["params"]))
def test_runs_list_matches_real_probe(client: httpx.Client, probe: dict[str, Any]) -> None:
    resp = client.get("/v1/runs/", params=probe["params"])
    assert resp.status_code == probe["status"]
    assert _ids(resp.json()) == probe["ids"]


def test_runs_list_default_is_the_captured_list() -> None:
    """Unshifted, GET /v1/runs/ returns exactly the captured runs_list.json."""
    with (
        FakeLettaServer(FakeLettaData.from_samples(shift=False)) as srv,
        httpx.Client(base_url=srv.base_url) as client,
    ):
        assert client.get("/v1/runs/").json() == _load("runs_list.json")


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_runs_paging_inverted_like_letta_0168(srv: FakeLettaServer, order: str) -> None:
    with httpx.Client(base_url=srv.base_url) as client:
        everything = _ids(client.get("/v1/runs/", params={"order": order}).json())
        first = _ids(client.get("/v1/runs/", params={"order": order, "limit": 4}).json())
        nxt = client.get("/v1/runs/", params={"order": order, "limit": 4, "before": first[-1]})
        assert _ids(nxt.json()) == everything[4:8]
        prev = client.get("/v1/runs/", params={"order": order, "limit": 4, "after": everything[4]})
        assert _ids(prev.json()) == everything[:4]
        srv.runs_paging = "documented"
        nxt = client.get("/v1/runs/", params={"order": order, "limit": 4, "after": first[-1]})
        assert _ids(nxt.json()) == everything[4:8]


def test_runs_filters_and_validation(client: httpx.Client, data: FakeLettaData) -> None:
    failed = client.get("/v1/runs/", params={"statuses": ["failed", "cancelled"]}).json()
    assert {r["status"] for r in failed} == {"failed"} and len(failed) == 3
    bg = client.get("/v1/runs/", params={"background": "true"}).json()
    assert _ids(bg) == [ASYNC_RUN]
    assert len(client.get("/v1/runs/", params={"stop_reason": "llm_api_error"}).json()) == 1
    assert client.get("/v1/runs/", params={"limit": 1001}).status_code == 422
    assert client.get("/v1/runs/", params={"limit": 0}).status_code == 422
    assert client.get("/v1/runs/", params={"order": "up"}).status_code == 422


def test_run_steps_normal_paging(client: httpx.Client) -> None:
    desc = _ids(client.get(f"/v1/runs/{ASYNC_RUN}/steps").json())
    assert desc == ASYNC_STEPS[::-1]
    page1 = _ids(
        client.get(f"/v1/runs/{ASYNC_RUN}/steps", params={"order": "asc", "limit": 1}).json()
    )
    page2 = client.get(
        f"/v1/runs/{ASYNC_RUN}/steps", params={"order": "asc", "limit": 1, "after": page1[-1]}
    ).json()
    assert page1 + _ids(page2) == ASYNC_STEPS
    run_msgs = client.get(f"/v1/runs/{ASYNC_RUN}/messages").json()
    assert [m["message_type"] for m in run_msgs][-1] == "assistant_message"
    assert client.get(f"/v1/runs/{ASYNC_RUN}/metrics").json()["num_steps"] == 2
    assert client.get(f"/v1/runs/{ASYNC_RUN}/usage").json()["total_tokens"] > 0


# --- lifecycle and consistency knobs ---------------------------------------------------------


def test_pending_then_complete(client: httpx.Client, data: FakeLettaData) -> None:
    sid = ASYNC_STEPS[1]
    final = data.step(sid)
    data.set_pending(sid)
    step = client.get(f"/v1/steps/{sid}").json()
    assert step["status"] == "pending" and step["stop_reason"] is None
    assert (step["total_tokens"], step["prompt_tokens"], step["completion_tokens"]) == (0, 0, 0)
    assert step["trace_id"] == final["trace_id"]
    assert client.get(f"/v1/steps/{sid}/trace").json() is None
    metrics = client.get(f"/v1/steps/{sid}/metrics")
    assert metrics.status_code == 200
    assert {k: metrics.json()[k] for k in ("step_ns", "llm_request_ns", "tool_execution_ns")} == {
        "step_ns": None,
        "llm_request_ns": None,
        "tool_execution_ns": None,
    }
    run = client.get(f"/v1/runs/{ASYNC_RUN}").json()
    assert (run["status"], run["completed_at"], run["stop_reason"]) == ("running", None, None)
    assert sid not in data.expected_terminal_step_ids()
    assert client.get("/v1/runs/", params={"statuses": "running"}).json()[0]["id"] == ASYNC_RUN
    data.complete(sid)
    assert client.get(f"/v1/steps/{sid}").json() == final
    assert client.get(f"/v1/runs/{ASYNC_RUN}").json()["status"] == "completed"
    assert client.get(f"/v1/steps/{sid}/trace").json() is not None
    assert sid in data.expected_terminal_step_ids()


def test_add_run_advance_and_add_step(client: httpx.Client, data: FakeLettaData) -> None:
    run_id = data.add_run("tool_two_steps", pending=True)
    first, second = data.run_step_ids(run_id)
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"
    assert client.get(f"/v1/steps/{first}").json()["status"] == "pending"
    assert client.get(f"/v1/steps/{second}").status_code == 404  # not started yet
    assert client.get(f"/v1/runs/{run_id}/messages").json() == []
    assert data.advance(run_id) == second
    assert client.get(f"/v1/steps/{first}").json()["status"] == "success"
    assert client.get(f"/v1/steps/{second}").json()["status"] == "pending"
    assert _ids(client.get("/v1/steps/", params={"limit": 1}).json()) == [second]
    assert data.created_at(second) > data.created_at(first)
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"
    assert data.advance(run_id) is None
    run = client.get(f"/v1/runs/{run_id}").json()
    assert run["status"] == "completed" and run["completed_at"] is not None
    assert len(client.get(f"/v1/runs/{run_id}/messages").json()) == 4
    new = data.add_step(run_id)
    assert data.step(new)["run_id"] == run_id and data.step(new)["status"] == "pending"
    assert data.step(new)["trace_id"] == data.step(second)["trace_id"]
    assert data.messages(new)[0]["step_id"] == new
    assert _ids(client.get("/v1/steps/", params={"limit": 1}).json()) == [new]
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"


def test_hide_and_reveal(client: httpx.Client, data: FakeLettaData) -> None:
    order = data.step_ids()
    late = order[3]
    data.hide(late)
    assert late not in _page_all(client, "/v1/steps/", order="asc", limit=5)
    assert client.get(f"/v1/steps/{late}").status_code == 404
    assert client.get(f"/v1/steps/{late}/trace").json() is None
    run_id = data.step(late)["run_id"]
    assert late not in _ids(client.get(f"/v1/runs/{run_id}/steps").json())
    assert late not in data.expected_terminal_step_ids()
    data.reveal(late)
    assert _page_all(client, "/v1/steps/", order="asc", limit=5) == order


def test_withhold_trace_and_metrics(client: httpx.Client, data: FakeLettaData) -> None:
    sid = ASYNC_STEPS[0]
    data.withhold_trace(sid, times=2)
    got = [client.get(f"/v1/steps/{sid}/trace").json() for _ in range(3)]
    assert got[0] is None and got[1] is None and got[2]["step_id"] == sid
    data.withhold_trace(sid)
    assert all(client.get(f"/v1/steps/{sid}/trace").json() is None for _ in range(3))
    data.release_trace(sid)
    assert client.get(f"/v1/steps/{sid}/trace").json() is not None
    data.withhold_metrics(sid, times=1)
    assert client.get(f"/v1/steps/{sid}/metrics").json()["step_ns"] is None
    assert client.get(f"/v1/steps/{sid}/metrics").json()["step_ns"] == 1624679381


# --- faults, auth, transport -----------------------------------------------------------------


def test_fault_status_kinds(client: httpx.Client, srv: FakeLettaServer) -> None:
    srv.faults.add(r"^/v1/steps/$", "429", retry_after=2)
    resp = client.get("/v1/steps/")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
    assert resp.json() == {"reasons": ["rate-limited"], "timeToQuotaResetMs": 2000}
    assert client.get("/v1/steps/").status_code == 200  # count=1 consumed
    for kind in ("500", "503", "401", "403", "404"):
        srv.faults.add("/v1/runs/", kind)
        resp = client.get("/v1/runs/")
        assert resp.status_code == int(kind) and "detail" in resp.json()
    srv.faults.add("/v1/runs/", "502html")
    resp = client.get("/v1/runs/")
    assert resp.status_code == 502 and resp.headers["content-type"].startswith("text/html")
    assert "Cloudflare" in resp.text
    srv.faults.add("/trace$", "malformed")
    resp = client.get(f"/v1/steps/{ASYNC_STEPS[0]}/trace")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    assert srv.count(r"^/v1/runs/$") == 6
    assert srv.count(r"^/v1/runs/$", status=200) == 0


def test_fault_truncated(client: httpx.Client, srv: FakeLettaServer) -> None:
    full = client.get("/v1/steps/").content
    srv.faults.add("/v1/steps/", "truncated")
    cut = client.get("/v1/steps/")
    assert cut.status_code == 200 and cut.content == full[: len(full) // 2]
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    srv.faults.add("/v1/steps/", "truncated", declare_full=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/v1/steps/")
    assert client.get("/v1/steps/").content == full


def test_fault_reset_and_timeout(client: httpx.Client, srv: FakeLettaServer) -> None:
    srv.faults.add("/v1/runs/", "reset")
    with pytest.raises(httpx.TransportError):
        client.get("/v1/runs/")
    assert srv.requests[-1].status == 0
    assert client.get("/v1/runs/").status_code == 200
    srv.faults.add("/v1/runs/", "timeout", seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/runs/", timeout=0.1)
    srv.faults.add("/v1/runs/", "timeout", seconds=0.2)
    t0 = time.monotonic()
    assert client.get("/v1/runs/").status_code == 200
    assert time.monotonic() - t0 >= 0.2
    srv.faults.add("/v1/runs/", "timeout", seconds=0.05, close=True)
    with pytest.raises(httpx.TransportError):
        client.get("/v1/runs/")


def test_stop_interrupts_inflight_timeout_and_route_errors_are_loud(
    data: FakeLettaData, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv = FakeLettaServer(data).start()
    srv.faults.add("/v1/health/", "timeout")  # default 5 s
    client = httpx.Client(base_url=srv.base_url, timeout=0.2)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/health/")

    def boom() -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(data, "serve_agents", boom)
    resp = client.get("/v1/agents/")
    assert resp.status_code == 500 and "bug" in resp.json()["detail"]
    assert len(srv.errors) == 1
    client.close()
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 1.5


def test_fault_count_forever_and_clear(client: httpx.Client, srv: FakeLettaServer) -> None:
    rule = srv.faults.add("/v1/health/", "503", count=-1, method="GET")
    assert all(client.get("/v1/health/").status_code == 503 for _ in range(5))
    assert rule.hits == 5
    srv.faults.clear()
    assert client.get("/v1/health/").status_code == 200
    srv.faults.add("/v1/health/", "500", count=2)
    assert [client.get("/v1/health/").status_code for _ in range(3)] == [500, 500, 200]
    with pytest.raises(ValueError, match="unknown fault kind"):
        srv.faults.add("x", "418")


def test_api_key_and_request_log(data: FakeLettaData) -> None:
    with FakeLettaServer(data, api_key="sk-test") as srv, httpx.Client(base_url=srv.base_url) as c:
        assert c.get("/v1/health/").status_code == 401
        assert c.get("/v1/health/", headers={"Authorization": "Bearer nope"}).status_code == 401
        ok = c.get(
            "/v1/runs/",
            params={"statuses": ["a", "b"]},
            headers={"Authorization": "Bearer sk-test", "X-Project": "proj"},
        )
        assert ok.status_code == 200
        last = srv.requests[-1]
        assert (last.method, last.path, last.status) == ("GET", "/v1/runs/", 200)
        assert last.query == {"statuses": ["a", "b"]}
        assert last.headers["x-project"] == "proj"
        assert srv.count("/v1/health/", status=401) == 2


def test_max_list_limit_latency_keepalive(data: FakeLettaData) -> None:
    with FakeLettaServer(data, max_list_limit=200, latency_s=0.3) as srv:
        with httpx.Client(base_url=srv.base_url) as c:
            assert c.get("/v1/steps/", params={"limit": 201}).status_code == 422
            assert c.get("/v1/runs/", params={"limit": 200}).status_code == 200
            assert srv.connections_accepted == 1  # keep-alive
        results: list[int] = []

        def hit() -> None:
            with httpx.Client(base_url=srv.base_url) as c2:
                results.append(c2.get("/v1/health/").status_code)

        threads = [threading.Thread(target=hit) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 4
        assert time.monotonic() - t0 < 0.9  # concurrent, not 4 x 0.3 s


# --- generated data ----------------------------------------------------------------------------


def test_generate_scales_and_is_consistent() -> None:
    t0 = time.monotonic()
    big = FakeLettaData.generate(14_286)  # 1.4 steps per run: ~20,000 steps
    assert time.monotonic() - t0 < 5
    assert len(big) >= 20_000
    data = FakeLettaData.generate(5000, seed=7, mix="random")
    steps, runs = data.steps(), {r["id"]: r for r in data.runs()}
    assert len(runs) == 5000
    templates = set(FakeLettaData.from_samples().step_ids())
    assert not templates & {s["id"] for s in steps}
    run_trace: dict[str, str] = {}
    for step in steps[:: max(1, len(steps) // 400)] + steps[-20:]:
        sid, rid = step["id"], step["run_id"]
        assert rid in runs and runs[rid]["agent_id"] == step["agent_id"]
        assert run_trace.setdefault(rid, step["trace_id"]) == step["trace_id"]
        metrics = data.metrics(sid)
        assert (metrics["id"], metrics["run_id"]) == (sid, rid)
        trace = data.trace(sid)
        if trace is not None:
            assert (trace["step_id"], trace["run_id"], trace["agent_id"]) == (
                sid,
                rid,
                step["agent_id"],
            )
        msgs = data.messages(sid)
        assert all((m["step_id"], m["run_id"]) == (sid, rid) for m in msgs)
        calls = {
            m["tool_call"]["tool_call_id"] for m in msgs if m["message_type"] == "tool_call_message"
        }
        returns = {m["tool_call_id"] for m in msgs if m["message_type"] == "tool_return_message"}
        assert calls == returns
        if calls and trace is not None:
            assert all(c in json.dumps(trace["response_json"]) for c in calls)
    # deterministic and recent
    again = FakeLettaData.generate(5000, seed=7, mix="random", end=None)
    assert again.step_ids()[:50] == data.step_ids()[:50]
    newest = max(data.created_at(r) for r in runs)
    assert datetime.now(UTC) - newest < timedelta(minutes=2)
    assert datetime.now(UTC) - min(data.created_at(r) for r in runs) < timedelta(hours=1)


def test_generated_data_over_http() -> None:
    data = FakeLettaData.generate(120, seed=3)
    with FakeLettaServer(data) as srv, httpx.Client(base_url=srv.base_url) as client:
        assert len(client.get("/v1/steps/").json()) == 50  # default limit
        paged = _page_all(client, "/v1/steps/", order="asc", limit=37)
        assert paged == data.step_ids() and len(paged) == 168
        runs = _ids(client.get("/v1/runs/", params={"limit": 1000}).json())
        assert runs == data.run_ids()[::-1]
        sid = paged[-1]
        trace = client.get(f"/v1/steps/{sid}/trace").json()
        assert trace is None or trace["step_id"] == sid
        msgs = client.get(f"/v1/runs/{data.step(sid)['run_id']}/messages").json()
        assert all(re.fullmatch(r"message-[0-9a-f-]{36}", m["id"]) for m in msgs)


def test_fixtures_dir_argument() -> None:
    assert len(FakeLettaData.from_samples(SAMPLES)) == 14
    assert len(FakeLettaData.empty().agents()) == 2
