"""Contract test against the REAL Letta 0.16.8 server of the repository's kit (tests/live/kit).

The session fixture ``letta_kit`` (conftest.py) starts the kit (or reuses one already up)
and seeds it with every scenario of ``tests/live/kit/seed.py``. Each test then runs the
real CLI (``python -m letta_otel run --once``) as a subprocess against it, exporting to
an in-process ``OtlpReceiver``, and compares what the receiver decoded with what the
live API says, read independently with a stdlib client (``tests/plain_http.py``):

* stock server: ``GET /v1/steps/`` answers HTTP 400, so discovery falls back to
  ``/v1/runs/`` (gRPC and HTTP/protobuf), a restart with the same state exports
  nothing twice, and fresh traffic exports exactly the new terminal steps;
* the kit's second instance on the same database, with that route fixed: the
  ``/v1/steps/`` cursor with ``LETTA_OTEL_DISCOVERY=steps``.

The database may hold traffic from earlier sessions (a reused kit), so the expected set
is "every terminal step of every run created inside the configured lookback", and the
lookback is chosen so that no run sits near its boundary. To tolerate someone else
sending traffic meanwhile, the API is read before and after each bridge run: the exported
set must lie between the two (on a quiet server they are equal, so this is an equality).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest

from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.live.conftest import KIT_TIMEOUT, LettaKit
from tests.live.kit import Http

REPO = Path(__file__).resolve().parents[2]

STEP_TERMINAL = frozenset({"success", "failed", "cancelled"})
RUN_TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})
# No run may be created this close to the lookback boundary (either side), so the
# bridge's "now - lookback" and ours select the same runs for the whole test module.
BOUNDARY_MARGIN = timedelta(minutes=10)
DEFAULT_LOOKBACK = timedelta(hours=2)
# Scenarios of the kit's seed sent as "new traffic" after a restart: 7 steps, 2 failed.
NEW_TRAFFIC = ("plain", "tool_two_steps", "fail_http500", "stream_fail", "memgpt_tool")
NEW_TRAFFIC_MIN_STEPS = 7

BRIDGE_TIMEOUT = 180

_ISOLATE_PREFIXES = ("LETTA_", "OTEL_", "HONEYCOMB_")

pytestmark = [pytest.mark.live, KIT_TIMEOUT]

P = ParamSpec("P")
R = TypeVar("R")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE_PREFIXES)}
    env.update(extra)
    return env


def dump_letta_log_on_failure(test: Callable[P, R]) -> Callable[P, R]:
    """Print the tail of the kit's server logs when the test fails (pytest shows it)."""

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return test(*args, **kwargs)
        except BaseException:
            live = kwargs.get("live")
            if isinstance(live, Live):
                print(live.kit.log_tail())
            raise

    return wrapper


def _parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_uuid_hex(run_id: str) -> str:
    return run_id.removeprefix("run-").replace("-", "")


# --------------------------------------------------------------------------- the server


def steps_route_works(http: Http) -> bool:
    code = http.get("/v1/steps/", params={"limit": 1}).status_code
    if code not in {200, 400}:
        pytest.fail(f"GET /v1/steps/ answered {code}; expected 200 or 400", pytrace=False)
    return code == 200


@dataclass
class Live:
    kit: LettaKit

    @property
    def base_url(self) -> str:
        return self.kit.base_url

    @property
    def http(self) -> Http:
        return self.kit.http


@pytest.fixture
def live(letta_kit: LettaKit) -> Live:
    return Live(letta_kit)


# --------------------------------------------------------------------------- the truth


@dataclass(frozen=True)
class Snapshot:
    """Terminal steps of the runs created inside the lookback, read from the live API."""

    runs: dict[str, dict[str, Any]]
    steps: dict[str, dict[str, Any]]  # terminal steps only

    @property
    def step_ids(self) -> set[str]:
        return set(self.steps)

    @property
    def terminal_run_ids(self) -> set[str]:
        return {rid for rid, run in self.runs.items() if run["status"] in RUN_TERMINAL}


def list_runs(http: Http) -> list[dict[str, Any]]:
    response = http.get("/v1/runs/", params={"order": "desc", "limit": 1000})
    response.raise_for_status()
    runs: list[dict[str, Any]] = response.json()
    return runs


def choose_lookback(http: Http) -> timedelta:
    """2h, unless a run was created within BOUNDARY_MARGIN of that boundary: then more."""
    now = datetime.now(UTC)
    ages = [now - created for r in list_runs(http) if (created := _parse_ts(r.get("created_at")))]
    lookback = DEFAULT_LOOKBACK
    while near := [a for a in ages if abs(a - lookback) < BOUNDARY_MARGIN]:
        lookback = max(near) + BOUNDARY_MARGIN + timedelta(seconds=1)
    return timedelta(seconds=int(lookback.total_seconds()) + 1)


def snapshot(http: Http, lookback: timedelta) -> Snapshot:
    runs = list_runs(http)
    cutoff = datetime.now(UTC) - lookback
    window = {
        r["id"]: r
        for r in runs
        if (created := _parse_ts(r.get("created_at"))) is None or created > cutoff
    }
    assert len(runs) < 1000 or len(window) < len(runs), (
        "more than 1000 runs inside the lookback; restart the kit (python -m tests.live.kit stop)"
    )
    steps: dict[str, dict[str, Any]] = {}
    for run_id in window:
        response = http.get(f"/v1/runs/{run_id}/steps", params={"limit": 1000})
        response.raise_for_status()
        for step in response.json():
            if step["status"] in STEP_TERMINAL:
                steps[step["id"]] = step
    return Snapshot(window, steps)


# --------------------------------------------------------------------------- the bridge


@dataclass
class BridgeRun:
    returncode: int
    stdout: str
    stderr: str
    spans: list[ReceivedSpan]  # only the spans this run exported

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stderr ---\n{self.stderr[-6000:]}"


def run_bridge(
    base_url: str,
    receiver: OtlpReceiver,
    state_path: Path,
    *,
    protocol: str,
    lookback: timedelta,
    discovery: str = "auto",
    command: tuple[str, ...] = ("run", "--once"),
) -> BridgeRun:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    env = _clean_env(
        LETTA_BASE_URL=base_url,
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="10000",
        LETTA_OTEL_STATE_PATH=str(state_path),
        LETTA_OTEL_INITIAL_LOOKBACK=f"{int(lookback.total_seconds())}s",
        LETTA_OTEL_DISCOVERY=discovery,
        LETTA_OTEL_LOG_LEVEL="INFO",
    )
    already = len(receiver.spans)
    proc = subprocess.run(
        [sys.executable, "-m", "letta_otel", *command],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BRIDGE_TIMEOUT,
        check=False,
    )
    return BridgeRun(proc.returncode, proc.stdout, proc.stderr, receiver.spans[already:])


def run_backfill(
    base_url: str,
    receiver: OtlpReceiver,
    state_path: Path,
    *,
    lookback: timedelta,
    discovery: str = "auto",
) -> BridgeRun:
    """``letta-otel backfill --since now-lookback`` (until now), over gRPC."""
    since = (datetime.now(UTC) - lookback).isoformat()
    return run_bridge(
        base_url,
        receiver,
        state_path,
        protocol="grpc",
        lookback=lookback,
        discovery=discovery,
        command=("backfill", "--since", since),
    )


def assert_backfill_contract(
    base_url: str, tmp_path: Path, lookback: timedelta, discovery: str
) -> None:
    """A backfill of the lookback exports what run --once would, once; again: nothing."""
    http = Http(base_url)
    state = tmp_path / f"backfill-{discovery}.db"
    with OtlpReceiver() as receiver:
        before = snapshot(http, lookback)
        first = run_backfill(base_url, receiver, state, lookback=lookback, discovery=discovery)
        after = snapshot(http, lookback)
        exported = assert_span_contract(http, first, before, after)
        again = run_backfill(base_url, receiver, state, lookback=lookback, discovery=discovery)
        assert again.returncode == 0, again.describe()
        assert not set(exported_step_ids(again.spans)) & exported
        assert max(exported_step_ids(receiver.spans).values()) == 1
    assert f"through /v1/{discovery}/" in first.stderr, first.describe()


def _step_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == "agent_step"]


def _run_spans(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.name.startswith("invoke_agent")]


def exported_step_ids(spans: list[ReceivedSpan]) -> Counter[str]:
    return Counter(str(s.attributes["letta.step.id"]) for s in _step_spans(spans))


def assert_span_contract(http: Http, run: BridgeRun, before: Snapshot, after: Snapshot) -> set[str]:
    """Everything promised about one ``--once`` export; returns the exported step ids.

    ``before``/``after`` are the live API read just before/after the bridge ran: every
    step terminal in ``before`` must be exported, nothing outside ``after``.
    """
    assert run.returncode == 0, run.describe()
    exported = exported_step_ids(run.spans)
    assert exported, f"nothing exported\n{run.describe()}"
    dupes = {sid: n for sid, n in exported.items() if n > 1}
    assert not dupes, f"steps exported more than once: {dupes}"
    missing = before.step_ids - set(exported)
    unexpected = set(exported) - after.step_ids
    assert not missing, f"terminal steps not exported: {sorted(missing)}\n{run.describe()}"
    assert not unexpected, f"exported steps outside the window/not terminal: {sorted(unexpected)}"

    runs = _assert_run_spans(run.spans, set(exported), before, after)
    step_spans = _assert_step_spans(http, run.spans, runs)
    _assert_chat_spans(http, run.spans, step_spans, after)
    _assert_tool_spans(run.spans)
    return set(exported)


def _assert_run_spans(
    spans: list[ReceivedSpan], exported: set[str], before: Snapshot, after: Snapshot
) -> dict[str, ReceivedSpan]:
    runs = {str(s.attributes["letta.run.id"]): s for s in _run_spans(spans)}
    assert len(runs) == len(_run_spans(spans)), "a run was exported twice"
    stepped_runs = {after.steps[sid]["run_id"] for sid in exported}
    for run_id in before.terminal_run_ids & stepped_runs:
        assert run_id in runs, f"no invoke_agent span for terminal run {run_id}"
    for run_id, span in runs.items():
        live_run = after.runs.get(run_id)
        assert live_run is not None, f"invoke_agent for a run outside the window: {run_id}"
        assert live_run["status"] in RUN_TERMINAL
        assert span.trace_id == run_uuid_hex(run_id)
        assert span.parent_span_id is None
        assert span.attributes["letta.run.status"] == live_run["status"]
        assert span.status_code == ("ERROR" if live_run["status"] == "failed" else "UNSET")
    return runs


def _assert_step_spans(
    http: Http, spans: list[ReceivedSpan], runs: dict[str, ReceivedSpan]
) -> dict[str, ReceivedSpan]:
    by_step: dict[str, ReceivedSpan] = {}
    for span in _step_spans(spans):
        step_id = str(span.attributes["letta.step.id"])
        response = http.get(f"/v1/steps/{step_id}")
        response.raise_for_status()
        step = response.json()
        by_step[step_id] = span
        run_id = step["run_id"]
        assert span.attributes["letta.run.id"] == run_id
        assert span.trace_id == run_uuid_hex(run_id), step_id
        if run_id in runs:
            assert span.parent_span_id == runs[run_id].span_id, f"{step_id} not under its run"
        for key, live_field in [
            ("letta.step.status", "status"),
            ("letta.step.stop_reason", "stop_reason"),
            ("letta.agent.id", "agent_id"),
            ("letta.model_handle", "model_handle"),
            ("letta.trace_id", "trace_id"),
        ]:
            assert span.attributes.get(key) == step[live_field], (step_id, key)
        if step["status"] == "failed":
            assert span.status_code == "ERROR", step_id
            assert span.attributes["error.type"] == step["error_type"], step_id
        else:
            assert span.status_code != "ERROR", step_id
            assert "error.type" not in span.attributes, step_id
    return by_step


def _assert_chat_spans(
    http: Http,
    spans: list[ReceivedSpan],
    step_spans: dict[str, ReceivedSpan],
    after: Snapshot,
) -> None:
    chats: dict[str, list[ReceivedSpan]] = {}
    for chat in (s for s in spans if s.name.startswith("chat ")):
        step_id = str(chat.attributes["letta.step.id"])
        chats.setdefault(step_id, []).append(chat)
        assert chat.parent_span_id == step_spans[step_id].span_id, step_id
        assert chat.kind == "CLIENT"
        step = after.steps[step_id]
        assert chat.attributes.get("gen_ai.usage.input_tokens") == step["prompt_tokens"], step_id
        assert chat.attributes.get("gen_ai.usage.output_tokens") == step["completion_tokens"]
        assert chat.attributes["gen_ai.request.model"] == step["model"]
        assert chat.attributes["gen_ai.provider.name"] == step["provider_name"]
    # One chat span per LLM call Letta recorded: by a provider trace, or by the step
    # metrics' llm_request_ns alone (Letta 0.16.8 leaves some successful steps without a
    # trace); a failed stream leaves neither.
    for step_id in step_spans:
        trace = http.get(f"/v1/steps/{step_id}/trace")
        trace.raise_for_status()
        metrics = http.get(f"/v1/steps/{step_id}/metrics")
        metrics.raise_for_status()
        timed = bool((metrics.json() or {}).get("llm_request_ns"))
        expected = 1 if trace.json() is not None or timed else 0
        assert len(chats.get(step_id, [])) == expected, (step_id, "chat spans")
        if trace.json() is None and expected:
            (chat,) = chats[step_id]
            assert chat.attributes["letta.provider_trace.missing"] is True, step_id


def _assert_tool_spans(spans: list[ReceivedSpan]) -> None:
    by_id = {s.span_id: s for s in spans}
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    assert tools, "no execute_tool spans at all (the seed calls tools)"
    for tool in tools:
        parent = by_id.get(tool.parent_span_id or "")
        assert parent is not None, tool.name
        assert parent.name == "agent_step", tool.name
        assert tool.trace_id == parent.trace_id


# --------------------------------------------------------------------------- the tests


@pytest.mark.live
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@dump_letta_log_on_failure
def test_stock_server_exports_through_runs_fallback(
    live: Live, tmp_path: Path, protocol: str
) -> None:
    http = live.http
    assert not steps_route_works(http), "expected the stock server (GET /v1/steps/ = 400)"
    lookback = choose_lookback(http)
    with OtlpReceiver() as receiver:
        before = snapshot(http, lookback)
        run = run_bridge(
            live.base_url, receiver, tmp_path / "state.db", protocol=protocol, lookback=lookback
        )
        after = snapshot(http, lookback)
        exported = assert_span_contract(http, run, before, after)
        assert {r.protocol for r in receiver.requests} == {protocol.split("/", maxsplit=1)[0]}
    assert "discovering steps through /v1/runs/" in run.stderr, run.describe()
    failed = [sid for sid in exported if after.steps[sid]["status"] == "failed"]
    assert len(failed) >= 3, "the seed's failures (500, malformed, stream) must be there"


@pytest.mark.live
@dump_letta_log_on_failure
def test_stock_restart_exports_nothing_twice_then_only_new_steps(
    live: Live, tmp_path: Path
) -> None:
    http = live.http
    state = tmp_path / "state.db"
    lookback = choose_lookback(http)
    with OtlpReceiver() as receiver:
        before = snapshot(http, lookback)
        first = run_bridge(live.base_url, receiver, state, protocol="grpc", lookback=lookback)
        after = snapshot(http, lookback)
        first_ids = assert_span_contract(http, first, before, after)

        # Same state file, nothing happened on the server: nothing is sent again.
        again = run_bridge(live.base_url, receiver, state, protocol="grpc", lookback=lookback)
        quiet_after = snapshot(http, lookback)
        assert again.returncode == 0, again.describe()
        new_ids = set(exported_step_ids(again.spans))
        assert not new_ids & first_ids, f"re-exported after restart: {new_ids & first_ids}"
        assert new_ids <= quiet_after.step_ids - before.step_ids
        if quiet_after.step_ids == before.step_ids:
            assert again.spans == [], [s.name for s in again.spans]

        # New traffic: exactly the new terminal steps arrive, once.
        live.kit.seed(*NEW_TRAFFIC)
        seeded_before = snapshot(http, lookback)
        third = run_bridge(live.base_url, receiver, state, protocol="grpc", lookback=lookback)
        seeded_after = snapshot(http, lookback)
        assert third.returncode == 0, third.describe()
        third_ids = set(exported_step_ids(third.spans))
        known = first_ids | new_ids
        assert not third_ids & known, f"re-exported: {sorted(third_ids & known)}"
        assert seeded_before.step_ids - known <= third_ids <= seeded_after.step_ids - known
        assert len(third_ids) >= NEW_TRAFFIC_MIN_STEPS
        # The new export honours the same contract (same window, minus what was sent).
        assert_span_contract(
            http,
            third,
            Snapshot(
                seeded_before.runs, {k: v for k, v in seeded_before.steps.items() if k not in known}
            ),
            seeded_after,
        )
        totals = exported_step_ids(receiver.spans)
        assert max(totals.values()) == 1


@pytest.mark.live
@dump_letta_log_on_failure
def test_stock_server_backfill_exports_the_range_once(live: Live, tmp_path: Path) -> None:
    assert not steps_route_works(live.http), "expected the stock server (GET /v1/steps/ = 400)"
    assert_backfill_contract(live.base_url, tmp_path, choose_lookback(live.http), "runs")


@pytest.mark.live
@dump_letta_log_on_failure
def test_patched_server_exports_through_steps_cursor(live: Live, tmp_path: Path) -> None:
    # The kit's second instance: the same database, GET /v1/steps/ fixed.
    base_url = live.kit.fixed_base_url()
    http = Http(base_url)
    assert steps_route_works(http), "expected the fixed instance (GET /v1/steps/ = 200)"
    lookback = choose_lookback(http)
    with OtlpReceiver() as receiver:
        before = snapshot(http, lookback)
        run = run_bridge(
            base_url,
            receiver,
            tmp_path / "state.db",
            protocol="http/protobuf",
            lookback=lookback,
            discovery="steps",
        )
        after = snapshot(http, lookback)
        assert_span_contract(http, run, before, after)
    assert "discovering steps through /v1/steps/" in run.stderr, run.describe()
    assert "/v1/runs/" not in run.stderr
    # The same range as a backfill: start_date/end_date on the steps route.
    assert_backfill_contract(base_url, tmp_path, choose_lookback(http), "steps")
    # The stock server next to it still has the bug (the runs fallback is tested on it).
    assert not steps_route_works(live.http)
