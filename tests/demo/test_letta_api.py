"""The demo's Letta API over real sockets: the captures as Letta serves them, re-timed."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from letta_otel.demo.captures import LEAD, captures_dir, load_captures
from letta_otel.demo.letta_api import LettaApiServer

CAPTURES = Path(str(captures_dir()))
NOW = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)
STEP_COUNT = 7


def capture(scenario: str, name: str) -> Any:
    return json.loads((CAPTURES / scenario / name).read_text())


def step_files(scenario: str) -> list[tuple[str, str]]:
    """(step id, file stem) of a scenario, in step order."""
    found = sorted(p.stem for p in (CAPTURES / scenario).glob("step*_step-*.json"))
    return [(stem.split("_", 1)[1], stem) for stem in found if stem.count("_") == 1]


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        query = urllib.parse.urlencode(params, doseq=True)
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def ok(self, path: str, **params: Any) -> Any:
        status, body = self.get(path, **params)
        assert status == 200, (path, status, body)
        return body


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    server = LettaApiServer(load_captures(NOW)).start()
    try:
        yield Api(server.base_url)
    finally:
        server.stop()


def ts(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def test_health(api: Api) -> None:
    assert api.ok("/v1/health/") == capture(".", "health.json")


def test_all_runs_end_just_before_now_keeping_their_spacing(api: Api) -> None:
    runs = api.ok("/v1/runs/")
    ends = [ts(r["completed_at"]) for r in runs]
    assert max(ends) == NOW - LEAD
    assert min(ts(r["created_at"]) for r in runs) > NOW - timedelta(hours=1)
    served = {r["id"]: r for r in runs}
    original = {capture(s, "run.json")["id"]: capture(s, "run.json") for s in scenarios()}
    assert served.keys() == original.keys()
    shifts = {ts(served[i]["created_at"]) - ts(original[i]["created_at"]) for i in served}
    shifts |= {ts(served[i]["completed_at"]) - ts(original[i]["completed_at"]) for i in served}
    assert len(shifts) == 1  # one offset for every timestamp: durations stay real
    for run_id, run in served.items():
        rest = {k: v for k, v in run.items() if k not in ("created_at", "completed_at")}
        assert rest == {k: v for k, v in original[run_id].items() if k in rest}


def scenarios() -> list[str]:
    return [s["name"] for s in json.loads((CAPTURES / "index.json").read_text())["scenarios"]]


@pytest.mark.parametrize("scenario", ["plain", "tool_two_steps", "fail_http500", "stream_fail"])
def test_step_documents_are_the_captures(api: Api, scenario: str) -> None:
    for step_id, stem in step_files(scenario):
        assert api.ok(f"/v1/steps/{step_id}") == capture(scenario, f"{stem}.json")
        assert api.ok(f"/v1/steps/{step_id}/metrics") == capture(scenario, f"{stem}_metrics.json")
        trace, original = (
            api.ok(f"/v1/steps/{step_id}/trace"),
            capture(scenario, f"{stem}_trace.json"),
        )
        if original is None:
            assert trace is None  # Letta answers 200 null for a trace it never stored
            continue
        moved = ts(trace["created_at"]) - ts(original["created_at"])
        assert ts(trace["updated_at"]) - ts(original["updated_at"]) == moved
        assert {k: v for k, v in trace.items() if k not in ("created_at", "updated_at")} == {
            k: v for k, v in original.items() if k not in ("created_at", "updated_at")
        } | {"response_json": trace["response_json"]}
        response, captured = dict(trace["response_json"]), dict(original["response_json"])
        if "created" in captured:  # the completion's epoch seconds move with the rest
            assert response.pop("created") - captured.pop("created") == int(moved.total_seconds())
        assert response == captured
        messages = api.ok(f"/v1/steps/{step_id}/messages", limit=1000)
        originals = capture(scenario, f"{stem}_messages.json")
        assert [m["id"] for m in messages] == [m["id"] for m in originals]
        assert all(m["date"] != o["date"] for m, o in zip(messages, originals, strict=True))


def test_steps_listing_pages_forward_from_a_start_date(api: Api) -> None:
    seen: list[str] = []
    after: str | None = None
    start = (NOW - timedelta(hours=1)).isoformat()
    while True:
        params: dict[str, Any] = {"order": "asc", "limit": 2}
        params.update({"after": after} if after else {"start_date": start})
        page = api.ok("/v1/steps/", **params)
        seen.extend(s["id"] for s in page)
        if len(page) < 2:
            break
        after = page[-1]["id"]
    assert len(seen) == len(set(seen)) == STEP_COUNT
    # Newest first by default, the same order reversed.
    assert [s["id"] for s in api.ok("/v1/steps/", limit=100)] == seen[::-1]
    # start_date is strict and filters: nothing after the newest step began.
    assert api.ok("/v1/steps/", start_date=NOW.isoformat()) == []
    assert api.ok("/v1/steps/", has_feedback="true") == []


def test_errors(api: Api) -> None:
    assert api.get("/v1/steps/", after="step-00000000-0000-4000-8000-000000000000")[0] == 404
    assert api.get("/v1/steps/", order="sideways")[0] == 422
    assert api.get("/v1/steps/", limit="many")[0] == 422
    assert api.get("/v1/steps/step-00000000-0000-4000-8000-000000000000")[0] == 404
    assert api.get("/v1/runs/run-00000000-0000-4000-8000-000000000000")[0] == 404
    assert api.get("/v1/agents/agent-00000000-0000-4000-8000-000000000000")[0] == 404
    assert api.get("/v1/steps/step-00000000-0000-4000-8000-000000000000/trace") == (200, None)


def test_runs_their_steps_and_agents(api: Api) -> None:
    runs = api.ok("/v1/runs/", order="asc")
    assert [r["id"] for r in runs] == [capture(s, "run.json")["id"] for s in scenarios()]
    first_page = api.ok("/v1/runs/", limit=2)
    assert [r["id"] for r in first_page] == [r["id"] for r in runs[::-1][:2]]
    assert [r["id"] for r in api.ok("/v1/runs/", limit=2, after=first_page[-1]["id"])] == [
        r["id"] for r in runs[::-1][2:4]
    ]
    tool_run = capture("tool_two_steps", "run.json")["id"]
    steps = api.ok(f"/v1/runs/{tool_run}/steps", order="asc")
    assert [s["id"] for s in steps] == [sid for sid, _ in step_files("tool_two_steps")]
    assert api.ok(f"/v1/runs/{tool_run}")["id"] == tool_run
    memgpt = api.ok("/v1/agents/agent-df73fa68-abaa-4d0c-8a06-b4df607e0381")
    assert (memgpt["name"], memgpt["agent_type"]) == ("otel-demo-memgpt", "memgpt_v2_agent")
    v1 = api.ok("/v1/agents/agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5")
    assert (v1["name"], v1["agent_type"]) == ("otel-demo-v1", "letta_v1_agent")


def test_fresh_ids_replace_every_run_and_step_id_consistently() -> None:
    captured = load_captures(NOW)
    fresh = load_captures(NOW, fresh_ids=True)
    old_ids = {r.run_id for r in captured.demo_runs} | {
        s for r in captured.demo_runs for s in r.step_ids
    }
    served = json.dumps(
        [[r.body, [[s.body, s.trace, s.metrics, s.messages] for s in r.steps]] for r in fresh.runs]
    )
    assert not any(old in served for old in old_ids)
    for run in fresh.runs:
        assert re.fullmatch(r"run-[0-9a-f-]{36}", run.id)
        for step in run.steps:
            assert step.body["run_id"] == step.metrics["run_id"] == run.id
            assert all(m["step_id"] == step.id for m in step.messages)
            if isinstance(step.trace, dict):
                assert (step.trace["step_id"], step.trace["run_id"]) == (step.id, run.id)
    assert [r.scenario for r in fresh.demo_runs] == [r.scenario for r in captured.demo_runs]


def test_stop_closes_the_port() -> None:
    server = LettaApiServer(load_captures(NOW)).start()
    url = server.base_url
    assert Api(url).ok("/v1/health/")["status"] == "ok"
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/v1/health/", timeout=2)
