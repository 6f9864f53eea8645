"""Send the kit's Letta server real traffic, failures included, and check each outcome.

Two agents are created once and reused (looked up by name): ``otel-demo-v1``
(``letta_v1_agent``) and ``otel-demo-memgpt`` (``memgpt_v2_agent``, which answers through
the ``send_message`` tool). Each scenario sends one user message whose words steer the
fake LLM (see ``fake_llm.py``) and says what Letta must make of it: the HTTP status, the
run's status, how many steps and how many of them failed. A scenario that ends otherwise
raises :class:`SeedError` naming it, so a broken kit fails loudly here rather than as a
puzzling assertion in a contract test. Every call adds new runs and steps (that is the
point); nothing is deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.plain_http import Http

MODEL_HANDLE = "openai-proxy/fake-model"
EMBEDDING_HANDLE = "openai/text-embedding-3-small"
RUN_TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
STEP_TERMINAL = frozenset({"success", "failed", "cancelled"})

AGENTS = {
    "v1": {
        "name": "otel-demo-v1",
        "agent_type": "letta_v1_agent",
        "tags": ["otel-demo", "letta_v1"],
    },
    "memgpt": {
        "name": "otel-demo-memgpt",
        "agent_type": "memgpt_v2_agent",
        "tags": ["otel-demo", "memgpt_v2"],
    },
}


@dataclass(frozen=True)
class Scenario:
    name: str
    agent: str  # key of AGENTS
    mode: str  # "sync" (/messages), "stream" (/messages/stream), "async" (/messages/async)
    text: str  # words in it steer the fake LLM
    http_status: int
    run_status: str
    steps: int
    failed_steps: int = 0


SCENARIOS = (
    Scenario("plain", "v1", "sync", "hello, a plain turn", 200, "completed", 1),
    Scenario("tool_two_steps", "v1", "sync", "TOOL look something up", 200, "completed", 2),
    Scenario("slow", "v1", "sync", "SLOW answer slowly", 200, "completed", 1),
    # The LLM answers 500 (three times: the OpenAI SDK retries); Letta answers 500 too.
    Scenario("fail_http500", "v1", "sync", "FAIL on purpose", 500, "failed", 1, 1),
    Scenario(
        "fail_malformed", "v1", "sync", "FAILBAD: a body that is not JSON", 500, "failed", 1, 1
    ),
    Scenario("stream_tool", "v1", "stream", "TOOL in a streamed turn", 200, "completed", 2),
    # HTTP 200 (the stream had started); the step fails and gets no provider trace.
    Scenario("stream_fail", "v1", "stream", "FAIL in a streamed turn", 200, "failed", 1, 1),
    Scenario("async_slow_tool", "v1", "async", "SLOW TOOL in the background", 200, "completed", 2),
    Scenario("memgpt_plain", "memgpt", "sync", "hello, memgpt-style agent", 200, "completed", 1),
    Scenario(
        "memgpt_tool", "memgpt", "sync", "TOOL with a memgpt-style agent", 200, "completed", 2
    ),
)


class SeedError(RuntimeError):
    pass


@dataclass
class Outcome:
    scenario: Scenario
    http_status: int
    seconds: float
    run_ids: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None

    def problems(self) -> list[str]:
        want = self.scenario
        found = []
        if self.http_status != want.http_status:
            found.append(f"HTTP {self.http_status}, expected {want.http_status}")
        if len(self.runs) != 1:
            found.append(f"{len(self.runs)} new runs, expected 1")
        elif self.runs[0]["status"] != want.run_status:
            found.append(f"run {self.runs[0]['status']}, expected {want.run_status}")
        statuses = [s["status"] for s in self.steps]
        if len(statuses) != want.steps or statuses.count("failed") != want.failed_steps:
            found.append(f"steps {statuses}, expected {want.steps} ({want.failed_steps} failed)")
        return found

    def summary(self) -> str:
        statuses = ",".join(s["status"] for s in self.steps)
        return (
            f"{self.scenario.name:16} {self.scenario.mode:6} HTTP {self.http_status} "
            f"{self.seconds:5.2f}s run={'/'.join(r['status'] for r in self.runs)} "
            f"steps=[{statuses}] stop={self.stop_reason}"
        )


def agent(http: Http, key: str) -> dict[str, Any]:
    """The scenario agent ``key``, created on first use."""
    spec = AGENTS[key]
    listed = http.get("/v1/agents/", params={"name": spec["name"], "limit": 10})
    listed.raise_for_status()
    for found in listed.json():
        if found.get("name") == spec["name"]:
            return dict(found)
    created = http.post(
        "/v1/agents/",
        {**spec, "model": MODEL_HANDLE, "embedding": EMBEDDING_HANDLE},
        timeout=120,
    )
    created.raise_for_status()
    return dict(created.json())


def run_ids(http: Http, agent_id: str) -> list[str]:
    response = http.get("/v1/runs/", params={"agent_id": agent_id, "limit": 50, "order": "desc"})
    response.raise_for_status()
    return [run["id"] for run in response.json()]


def settle(http: Http, run_id: str, timeout: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run and its steps once the run and every step are terminal (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        run = http.get(f"/v1/runs/{run_id}")
        run.raise_for_status()
        steps = http.get(f"/v1/runs/{run_id}/steps", params={"order": "asc", "limit": 100})
        steps.raise_for_status()
        done = run.json()["status"] in RUN_TERMINAL and all(
            s["status"] in STEP_TERMINAL for s in steps.json()
        )
        if done or time.monotonic() > deadline:
            return run.json(), steps.json()
        time.sleep(0.2)


def send(http: Http, scenario: Scenario, agent_id: str, timeout: float) -> Outcome:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": scenario.text}]}
    before = set(run_ids(http, agent_id))
    path = f"/v1/agents/{agent_id}/messages"
    stop_reason = None
    if scenario.mode == "stream":
        answer = http.post(f"{path}/stream", {**body, "stream_tokens": True}, timeout=timeout)
        for line in answer.text.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                event = json.loads(line[6:])
                if isinstance(event, dict) and event.get("message_type") == "stop_reason":
                    stop_reason = event.get("stop_reason")
    else:
        answer = http.post(
            f"{path}/async" if scenario.mode == "async" else path, body, timeout=timeout
        )
        if answer.status_code == 200 and scenario.mode == "sync":
            stop_reason = (answer.json().get("stop_reason") or {}).get("stop_reason")
    outcome = Outcome(scenario, answer.status_code, answer.elapsed)
    # A failed sync call answers 500 without ids: the new runs of the agent are the truth.
    outcome.run_ids = [r for r in run_ids(http, agent_id) if r not in before]
    for run_id in outcome.run_ids:
        run, steps = settle(http, run_id, timeout)
        outcome.runs.append(run)
        outcome.steps += steps
    outcome.stop_reason = stop_reason
    return outcome


def seed(
    base_url: str, only: Iterable[str] = (), *, timeout: float = 120.0, log: Any = None
) -> list[Outcome]:
    """Send the scenarios (all, or those named in ``only``); raise SeedError on a surprise."""
    wanted = set(only)
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        raise SeedError(f"unknown scenarios: {sorted(unknown)}")
    http = Http(base_url, timeout=timeout)
    agents = {key: agent(http, key)["id"] for key in AGENTS}
    outcomes = []
    for scenario in SCENARIOS:
        if wanted and scenario.name not in wanted:
            continue
        outcome = send(http, scenario, agents[scenario.agent], timeout)
        outcomes.append(outcome)
        if log is not None:
            print(outcome.summary(), file=log, flush=True)
        if problems := outcome.problems():
            raise SeedError(
                f"scenario {scenario.name!r} ({scenario.text!r}): {'; '.join(problems)}\n"
                f"{outcome.summary()}"
            )
    return outcomes
