"""Proofs of "nothing lost, nothing doubled" under faults.

Every scenario drives the real daemon (a subprocess, or ``run --once`` in-process where
a scenario needs a monkeypatched clock knob) against the fake Letta API and the real
OTLP receiver, injects a fault, and ends with the same invariant: the ``letta.step.id``
of the ``agent_step`` spans the receiver *accepted* are exactly the terminal steps the
fake serves, each once; each terminal run's root span arrived once; every step span hangs
under its run's root. After a ``kill -9`` at most the batch in flight may repeat, with
identical ids. Each scenario prints one ``FAULT-SCENARIO`` line with its numbers (run
pytest with ``-s`` to see them inline; the table is also written at the end of the module).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from letta_otel.letta import discovery
from letta_otel.mapping import ids
from tests.e2e.conftest import BridgeEnv, RunOnce, step_spans
from tests.e2e.faults_helpers import (
    RESULTS,
    Daemon,
    SlowAnswers,
    accepted_batches,
    add_run_in_order,
    arrival,
    assert_exactly_once,
    delivered,
    exported_in_state,
    exported_runs,
    exported_steps,
    listing_path,
    listings,
    measure,
    running_daemon,
    state_rows,
    wait_cycles,
    wait_until,
)
from tests.fakes.letta_api import SCENARIO_NAMES, FakeLettaData, FakeLettaServer, FaultRule
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan


class _ScenarioTable:
    """Writes the FAULT-SCENARIO lines as one table in pytest's terminal summary."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("-", "fault scenarios: steps expected / exported / duplicated")
        for line in self.lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _scenario_table(request: pytest.FixtureRequest) -> Iterator[None]:
    first = len(RESULTS)
    yield
    if len(RESULTS) > first:
        request.config.pluginmanager.register(_ScenarioTable(RESULTS[first:]))


def _path(letta: FakeLettaServer) -> str:
    return "steps-route" if letta.steps_route == "ok" else "runs-fallback"


def _step_span(receiver: OtlpReceiver, step_id: str) -> ReceivedSpan:
    (span,) = [
        s
        for s in receiver.spans
        if s.name == "agent_step" and s.attributes.get("letta.step.id") == step_id
    ]
    return span


def _index(receiver: OtlpReceiver, name_prefix: str, key: str, value: str) -> int:
    """Arrival position of the first span named ``name_prefix…`` with ``key == value``."""
    return next(
        i
        for i, s in enumerate(receiver.spans)
        if s.name.startswith(name_prefix) and s.attributes.get(key) == value
    )


# ---------------------------------------------------------------------------------------
# 1. pending -> terminal
# ---------------------------------------------------------------------------------------


def test_pending_steps_go_out_once_after_they_turn_terminal(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    run_id = data.add_run("tool_two_steps", pending=True)  # step 1 pending, step 2 not started
    first = data.run_step_ids(run_id)[0]
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: delivered(receiver, data), 20, "the finished sample runs", daemon)
        wait_cycles(letta, 3, daemon)
        assert first not in exported_steps(receiver)
        assert run_id not in exported_runs(receiver)

        second = data.advance(run_id)  # step 1 done, step 2 starts (pending)
        assert second is not None
        wait_until(lambda: first in exported_steps(receiver), 10, "step 1 once done", daemon)
        wait_cycles(letta, 3, daemon)
        assert second not in exported_steps(receiver)
        assert run_id not in exported_runs(receiver)

        assert data.advance(run_id) is None  # step 2 done: the run is final
        wait_until(lambda: run_id in exported_runs(receiver), 10, "the run's root", daemon)
        wait_cycles(letta, 3, daemon)  # a few more cycles: a repeat would show now
        assert daemon.stop() == 0, daemon.tail()

    result = measure(f"pending-to-terminal[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
    for step_id in (first, second):
        span = _step_span(receiver, step_id)
        assert span.attributes["letta.step.status"] == "success"
        assert "letta.step.incomplete" not in span.attributes
    root_at = _index(receiver, "invoke_agent", "letta.run.id", run_id)
    assert root_at > _index(receiver, "agent_step", "letta.step.id", second)


# ---------------------------------------------------------------------------------------
# 2. pending past LETTA_OTEL_PENDING_TIMEOUT
# ---------------------------------------------------------------------------------------


def test_step_pending_past_the_timeout_goes_out_once_as_incomplete(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    run_id = data.add_run("plain", pending=True)
    (step_id,) = data.run_step_ids(run_id)
    started = time.monotonic()
    with running_daemon(
        bridge_env, tmp_path / "daemon.log", LETTA_OTEL_PENDING_TIMEOUT="2s"
    ) as daemon:
        wait_until(lambda: step_id in exported_steps(receiver), 15, "the timed-out step", daemon)
        assert arrival(receiver, step_id) - started >= 2.0, "sent before the pending timeout"
        span = _step_span(receiver, step_id)
        assert span.attributes["letta.step.incomplete"] is True
        assert span.attributes["letta.step.status"] == "pending"
        assert span.status_code == "UNSET"
        assert run_id not in exported_runs(receiver)  # the run is still running

        assert data.advance(run_id) is None  # it completes after all
        wait_until(lambda: run_id in exported_runs(receiver), 10, "the run's root", daemon)
        wait_cycles(letta, 4, daemon)
        assert daemon.stop() == 0, daemon.tail()

    result = measure(f"pending-timeout[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)  # in particular: the completed step was not sent again
    assert _step_span(receiver, step_id).attributes["letta.step.incomplete"] is True


# ---------------------------------------------------------------------------------------
# 3. late commit inside the re-read window
# ---------------------------------------------------------------------------------------


def test_late_step_of_a_finished_run_goes_out_once(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In-process, so the once-a-minute re-read can be made due on every cycle. (On the
    # runs fallback this needs the re-read of recently exported runs' steps, cce0ad1.)
    monkeypatch.setattr(discovery, "REREAD_EVERY", timedelta(0))
    data = letta.data
    two_step_run = next(r for r in data.run_ids() if len(data.run_step_ids(r)) == 2)
    late_step = data.run_step_ids(two_step_run)[1]  # older than most exported steps
    data.hide(late_step)

    assert run_once() == 0
    assert run_once() == 0  # a re-read that sees nothing new yet
    assert late_step not in exported_steps(receiver)
    assert two_step_run in exported_runs(receiver)  # finished, all its visible steps out

    data.reveal(late_step)
    assert run_once() == 0
    assert run_once() == 0  # and again: nothing doubled

    result = measure(f"late-step-of-finished-run[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)


def test_late_run_inside_the_reread_window_goes_out_once(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discovery, "REREAD_EVERY", timedelta(0))
    data = letta.data
    newest = max(data.created_at(r) for r in data.run_ids())
    # 5 min older than the newest run: past the runs listing's 2 min overlap, inside the
    # 15 min re-read window; its steps are older than the steps cursor.
    late_run = data.add_run("tool_two_steps", created_at=newest - timedelta(minutes=5), hidden=True)
    late_steps = data.run_step_ids(late_run)

    assert run_once() == 0
    assert run_once() == 0
    assert not set(late_steps) & set(exported_steps(receiver))
    assert late_run not in exported_runs(receiver)

    data.reveal_run(late_run)
    for step_id in late_steps:
        data.reveal(step_id)
    assert run_once() == 0
    assert run_once() == 0

    result = measure(f"late-run[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)


def test_late_commit_found_by_the_daemons_first_reread(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """The real loop, no knobs: on a fresh state the steps listing is re-read on the 2nd
    cycle (the runs listing re-lists 2 min below its newest run on every cycle), so the
    late objects are revealed between cycle 1 and cycle 2 (poll interval 5 s: enough
    margin for cycle 1 to finish and be observed on a loaded 2-core machine)."""
    data = letta.data
    newest = max(data.created_at(r) for r in data.run_ids())
    late_run = data.add_run("plain", created_at=newest - timedelta(seconds=60), hidden=True)
    late_steps = data.run_step_ids(late_run)
    with running_daemon(
        bridge_env, tmp_path / "daemon.log", LETTA_OTEL_POLL_INTERVAL="5"
    ) as daemon:
        wait_until(lambda: len(exported_runs(receiver)) >= 9, 15, "cycle 1's export", daemon)
        done = listings(letta)
        # cycle 1 only (on the steps route the start-up probe lists /v1/steps/ too)
        assert done == (2 if letta.steps_route == "ok" else 1), "cycle 2 came too early"
        data.reveal_run(late_run)
        for step_id in late_steps:
            data.reveal(step_id)
        wait_until(lambda: delivered(receiver, data), 20, "the late run", daemon)
        wait_cycles(letta, 1, daemon)  # one more cycle: nothing doubled
        assert daemon.stop() == 0, daemon.tail()
    result = measure(f"late-commit-daemon[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)


# ---------------------------------------------------------------------------------------
# 4. a provider trace that is null at first, or for good
# ---------------------------------------------------------------------------------------


def _llm_spans(receiver: OtlpReceiver, step_id: str) -> list[ReceivedSpan]:
    return [
        s
        for s in receiver.spans
        if s.name.startswith("chat ") and s.attributes.get("letta.step.id") == step_id
    ]


def test_late_trace_follows_its_step_and_a_missing_one_is_marked(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """Steps do not wait for their provider traces: the step span goes out at once, the
    LLM span follows once the trace is written (or the grace is over), exactly once."""
    data = letta.data
    (late,) = data.run_step_ids(data.add_run("memgpt_plain"))  # send_message: in the trace only
    (never,) = data.run_step_ids(data.add_run("plain"))
    data.withhold_trace(late)  # null until released
    data.withhold_trace(never)  # null for good
    started = time.monotonic()
    with running_daemon(bridge_env, tmp_path / "daemon.log", LETTA_OTEL_ENRICH_GRACE="6s") as d:
        wait_until(lambda: {late, never} <= set(exported_steps(receiver)), 10, "both steps", d)
        sent = time.monotonic() - started
        assert not _llm_spans(receiver, late) and not _llm_spans(receiver, never)
        wait_until(lambda: letta.count(f"^/v1/steps/{late}/trace$") >= 2, 10, "a 2nd look", d)
        data.release_trace(late)
        released = time.monotonic() - started
        wait_until(lambda: _llm_spans(receiver, late), 15, "the late LLM span", d)
        wait_until(lambda: _llm_spans(receiver, never), 20, "the trace-less LLM span", d)
        wait_cycles(letta, 10, d)  # more cycles: a second copy or another look would show
        assert d.stop() == 0, d.tail()
    assert sent < 6.0, "the steps waited for their traces"
    assert released < 6.0, "the trace was released after the grace had run out"
    # Each step's metrics once; its trace at the step and then backing off (2 s, 4 s, 6 s
    # after it was terminal, the grace), not once per 0.2 s cycle.
    assert letta.count(f"^/v1/steps/{late}/metrics$") == 1
    assert letta.count(f"^/v1/steps/{never}/trace$") <= 5

    result = measure(f"null-then-present-trace[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
    (late_llm,) = _llm_spans(receiver, late)
    (never_llm,) = _llm_spans(receiver, never)
    late_span, never_span = _step_span(receiver, late), _step_span(receiver, never)
    # The step spans left before any trace was written, and say so.
    assert late_span.attributes["letta.provider_trace.missing"] is True
    assert never_span.attributes["letta.provider_trace.missing"] is True
    # The late one's LLM span came after it, as the trace tells it, with the ids and the
    # parent it would have had in the same unit.
    assert late_llm.received_at > late_span.received_at
    assert late_llm.span_id == ids.format_span_id(ids.span_id("llm", late))
    assert (late_llm.trace_id, late_llm.parent_span_id) == (late_span.trace_id, late_span.span_id)
    assert late_llm.attributes["letta.provider_trace.id"] == data.trace(late)["id"]
    assert "gen_ai.response.id" in late_llm.attributes
    assert "letta.provider_trace.missing" not in late_llm.attributes
    # ... and the tool call only the provider response names came with it.
    (tool,) = [
        s
        for s in receiver.spans
        if s.name == "execute_tool send_message" and s.attributes["letta.step.id"] == late
    ]
    assert (tool.parent_span_id, tool.received_at) == (late_span.span_id, late_llm.received_at)
    # The other one only with what the step itself says, marked, once the grace was over.
    assert never_llm.attributes["letta.provider_trace.missing"] is True
    assert "letta.provider_trace.id" not in never_llm.attributes
    assert never_llm.parent_span_id == never_span.span_id
    assert never_llm.received_at - started >= 6.0, "the LLM span gave up before the grace"


# ---------------------------------------------------------------------------------------
# 5. a storm of transient Letta faults
# ---------------------------------------------------------------------------------------

_STEP_ITEM = r"^/v1/steps/step-[0-9a-f-]+"
_RUN_ITEM = r"^/v1/runs/run-[0-9a-f-]+"
_Fault = tuple[str, str, int, dict[str, object]]


def _storm_phases(letta: FakeLettaServer) -> list[list[_Fault]]:
    """Every transient fault kind, on the listing and on every enrichment route.

    In phases, each served within one poll cycle, so one request never meets more than
    two back-off faults in a row (the client's jittered back-off grows to seconds). The
    first phase gives the listing more 429s than the client's 5 attempts: a failed cycle,
    retried by the daemon.
    """
    listing = listing_path(letta)
    trace, metrics, messages = (rf"{_STEP_ITEM}/{p}$" for p in ("trace", "metrics", "messages"))
    # Runs come from listings: the newest runs page on the steps route, the runs listing
    # (with each run's steps) on the runs fallback.
    run_route = r"^/v1/runs/$" if letta.steps_route == "ok" else rf"{_RUN_ITEM}/steps$"
    return [
        [(listing, "429", 6, {"retry_after": 0.2})],
        [
            (listing, "502html", 1, {}),
            (listing, "malformed", 1, {}),
            (trace, "429", 6, {"retry_after": 0.1, "reset_ms": 100}),
            (metrics, "500", 2, {}),
            (messages, "reset", 2, {}),
            (run_route, "429", 3, {"retry_after": 0.1}),
        ],
        [
            (listing, "truncated", 1, {}),
            (listing, "reset", 1, {}),
            (trace, "truncated", 2, {"declare_full": True}),
            (metrics, "503", 2, {}),
            (messages, "malformed", 2, {}),
            (run_route, "502html", 2, {}),
        ],
        [
            (listing, "truncated", 1, {"declare_full": True}),
            (listing, "timeout", 1, {"seconds": 1.5}),
            (trace, "timeout", 2, {"seconds": 1.5}),
            (metrics, "502html", 1, {}),
            (messages, "truncated", 2, {}),
            (run_route, "truncated", 1, {}),
        ],
        [(listing, "503", 1, {})],
    ]


def _all_served(rules: list[FaultRule]) -> Callable[[], bool]:
    return lambda: all(r.remaining == 0 for r in rules)


def _one_more_cycle(daemon: Daemon) -> Callable[[], bool]:
    ended = daemon.log().count(" cycle via ")
    return lambda: daemon.log().count(" cycle via ") > ended


def test_storm_of_transient_letta_faults_loses_and_doubles_nothing(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    rules: list[FaultRule] = []
    with running_daemon(
        bridge_env, tmp_path / "daemon.log", LETTA_OTEL_LETTA_TIMEOUT="1"
    ) as daemon:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", daemon)
        started = time.monotonic()
        scenarios = iter(SCENARIO_NAMES * 2)
        tools = iter(["tool_two_steps", "memgpt_tool", "stream_tool"] * 3)
        for number, phase in enumerate(_storm_phases(letta)):
            added = [letta.faults.add(path, kind, n, **opts) for path, kind, n, opts in phase]
            rules += added
            add_run_in_order(data, next(scenarios))  # new work arrives during the storm
            # ... with a tool call each time: only such steps need /messages
            add_run_in_order(data, next(tools))
            wait_until(_all_served(added), 20, f"storm phase {number} to be served", daemon)
            # ... and the cycle that met it to end, before the next phase begins
            wait_until(_one_more_cycle(daemon), 20, f"the end of phase {number}'s cycle", daemon)
        wait_until(lambda: delivered(receiver, data), 30, "every new run", daemon)
        took = time.monotonic() - started
        wait_cycles(letta, 3, daemon)
        assert daemon.alive
        assert daemon.stop() == 0, daemon.tail()
    log = daemon.log()
    print(f"storm: {sum(r.hits for r in rules)} faults served, all delivered in {took:.1f}s")
    result = measure(f"letta-fault-storm[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
    assert "Traceback" not in log
    assert "letta_errors=1" in log  # a cycle failed for good, and the next one recovered
    assert "HTTP 429; retrying in 0.20s" in log  # Retry-After honoured
    assert "an HTML error page" in log
    assert set(state_rows(bridge_env.state_path).values()) == {"exported"}  # none skipped


# ---------------------------------------------------------------------------------------
# 6. credentials rejected at run time
# ---------------------------------------------------------------------------------------


def test_rejected_credentials_at_run_time_are_reported_not_hammered_and_recover(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    letta.api_key = "sk-let-key-one"
    with running_daemon(
        bridge_env, tmp_path / "daemon.log", LETTA_API_KEY="sk-let-key-one"
    ) as daemon:
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", daemon)

        # 401 on everything: the key was revoked (start-up had succeeded).
        letta.api_key = "sk-let-key-two"
        add_run_in_order(data, "plain")
        time.sleep(2)
        rejected_401 = letta.count(status=401)
        letta.api_key = "sk-let-key-one"  # fixed
        wait_until(lambda: delivered(receiver, data), 15, "recovery from the 401s", daemon)

        # 403 on one enrichment route only: that step waits, the daemon backs off.
        rule = letta.faults.add(r"/trace$", "403", -1)
        add_run_in_order(data, "tool_two_steps")
        time.sleep(2)
        letta.faults.clear()
        wait_until(lambda: delivered(receiver, data), 15, "recovery from the 403s", daemon)
        wait_cycles(letta, 3, daemon)
        assert daemon.stop() == 0, daemon.tail()

    log = daemon.log()
    print(f"auth: {rejected_401} requests answered 401, {rule.hits} answered 403, in 2 s each")
    result = measure(f"auth-rejected-at-run-time[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
    # Reported clearly, every time: each rejected request is one warning naming the fix.
    assert log.count("HTTP 401 — Letta rejected the credentials; check LETTA_API_KEY") == (
        rejected_401
    )
    assert log.count("HTTP 403 — Letta rejected the credentials") >= 1
    assert "sk-let-key" not in log and "Traceback" not in log
    # Not hammered: polling every 0.2 s unchecked would be ~10 rejected requests in 2 s
    # (20 for the 403: two trace requests per cycle); the daemon backs off (0.4 s, 0.8 s,
    # 1.6 s, ...) and never retries a 401/403 inside a cycle.
    assert 2 <= rejected_401 <= 5
    assert 2 <= rule.hits <= 10


# ---------------------------------------------------------------------------------------
# 7. the OTLP backend goes away for longer than the SDK retries
# ---------------------------------------------------------------------------------------


def _assert_state_only_holds_accepted(bridge_env: BridgeEnv, receiver: OtlpReceiver) -> None:
    in_state = exported_in_state(bridge_env.state_path)  # first: the receiver only grows
    accepted = set(exported_steps(receiver))
    assert in_state <= accepted, f"marked exported, never accepted: {in_state - accepted}"


def _after_next_failed_cycle(daemon: Daemon, timeout: float = 15) -> None:
    """Wait until the daemon ends a cycle with a failed export: it then sleeps >= 0.3 s.

    The backend comes back only then, so the SDK's last in-export retry (sent with what is
    left of the OTLP timeout, possibly a few ms) does not meet the recovery: that would be
    the timed-out-but-accepted export of ``test_batch_accepted_after_the_timeout...``.
    """
    failed = "failed_batches=1"
    seen = daemon.log().count(failed)
    wait_until(lambda: daemon.log().count(failed) > seen, timeout, "a failed export", daemon)


def _between_cycles(daemon: Daemon) -> None:
    """Wait until the daemon's last word is a cycle summary: it is sleeping, not exporting."""
    wait_until(
        lambda: " cycle via " in daemon.log().rstrip().rsplit("\n", 1)[-1],
        5,
        "the daemon to sleep between cycles",
        daemon,
    )


@pytest.mark.parametrize(
    ("steps_route", "protocol"),
    [("ok", "grpc"), ("legacy400", "http/protobuf")],
    ids=["steps-route-grpc", "runs-fallback-http"],
)
def test_otlp_outage_longer_than_the_sdk_retries_loses_and_doubles_nothing(
    bridge_env: BridgeEnv,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    tmp_path: Path,
    protocol: str,
) -> None:
    bridge_env.protocol = protocol
    data = letta.data
    scenarios = iter(SCENARIO_NAMES)
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:  # OTLP timeout 1 s
        wait_until(lambda: delivered(receiver, data), 20, "the sample runs", daemon)
        outage = time.monotonic()
        receiver.pause()  # connection refused on the same ports
        try:
            for _ in range(10):  # ~10 s of outage while new runs keep coming
                add_run_in_order(data, next(scenarios))
                time.sleep(1)
                _assert_state_only_holds_accepted(bridge_env, receiver)
            # Back while the daemon sleeps off a failure, so the SDK's last in-export retry
            # (sent with what is left of the 1 s timeout, maybe a few ms) cannot meet the
            # recovery: that is the timed-out-but-accepted case of
            # test_batch_accepted_after_the_timeout_is_not_sent_twice.
            _between_cycles(daemon)
        finally:
            receiver.resume()
        resumed = time.monotonic()
        wait_until(lambda: delivered(receiver, data), 30, "the backlog after the outage", daemon)
        recovered = time.monotonic() - resumed
        wait_cycles(letta, 3, daemon)
        assert daemon.stop() == 0, daemon.tail()

    log = daemon.log()
    print(
        f"outage: {resumed - outage:.1f}s, {log.count('failed_batches=1')} failed cycles; "
        f"backlog delivered {recovered:.1f}s after the backend came back"
    )
    result = measure(f"otlp-outage-10s[{_path(letta)},{protocol}]", receiver, data)
    assert_exactly_once(result)
    assert exported_in_state(bridge_env.state_path) == set(exported_steps(receiver))
    assert "nothing was committed, retrying next cycle" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("steps_route", ["legacy400"], ids=["runs-fallback"])
def test_otlp_backend_rejecting_everything_loses_and_doubles_nothing(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    receiver.set_failing(True)  # UNAVAILABLE for every export, from the first one on
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
        for scenario in ("plain", "tool_two_steps", "memgpt_tool"):
            time.sleep(1)
            add_run_in_order(data, scenario)
            _assert_state_only_holds_accepted(bridge_env, receiver)
        _after_next_failed_cycle(daemon)
        receiver.set_failing(False)
        wait_until(lambda: delivered(receiver, data), 30, "everything after recovery", daemon)
        wait_cycles(letta, 3, daemon)
        assert daemon.stop() == 0, daemon.tail()

    rejected = [r for r in receiver.requests if not r.accepted]
    print(f"rejecting backend: {len(rejected)} export requests rejected")
    result = measure(f"otlp-rejecting[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
    assert len(rejected) >= 3
    assert exported_in_state(bridge_env.state_path) == set(exported_steps(receiver))


# OTLP cannot tell whether a request that timed out was taken. A backend that accepts a
# batch but confirms it only after OTEL_EXPORTER_OTLP_TIMEOUT therefore gets that batch
# again, once, with identical ids (the documented at-least-once edge; README "Delivery").
# What must hold: nothing is lost, and the repeats are exactly the batches whose answer
# came late, never anything else.


@pytest.mark.parametrize("steps_route", ["ok"], ids=["steps-route"])
def test_batch_confirmed_after_the_timeout_is_resent_once_with_the_same_ids(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    with SlowAnswers(receiver.http_port, delay=1.5) as proxy:  # OTLP timeout: 1 s
        bridge_env.protocol = "http/protobuf"
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": proxy.endpoint}
        with running_daemon(bridge_env, tmp_path / "daemon.log", **env) as daemon:
            _after_next_failed_cycle(daemon)
            late = {s.span_id for s in receiver.spans}
            proxy.delay = 0  # the backend answers in time again
            wait_until(lambda: delivered(receiver, data), 20, "everything", daemon)
            wait_cycles(letta, 3, daemon)
            assert daemon.stop() == 0, daemon.tail()

    print(f"slow answers: {len(late)} spans accepted while the answers were late")
    assert late  # the backend did take the batch the daemon gave up on
    result = measure(f"accepted-after-timeout[{_path(letta)},http]", receiver, data)
    by_id: dict[str, set[tuple[str, str | None]]] = {}
    counts: dict[str, int] = {}
    for span in receiver.spans:
        by_id.setdefault(span.span_id, set()).add((span.trace_id, span.parent_span_id))
        counts[span.span_id] = counts.get(span.span_id, 0) + 1
    assert all(len(v) == 1 for v in by_id.values())  # any repeat carries identical ids
    repeated = {span_id for span_id, n in counts.items() if n > 1}
    assert repeated <= late  # only what was confirmed late came twice
    assert max(counts.values()) <= 2  # and only once more
    assert not result.missing and not result.runs_missing


# ---------------------------------------------------------------------------------------
# 8. a backend that refuses requests larger than it accepts
# ---------------------------------------------------------------------------------------

_SIZE_LIMIT = 100_000  # bytes; the default batch (512 spans, 3 MB) of these runs is ~300 kB


@pytest.mark.parametrize(
    ("steps_route", "protocol"),
    [("ok", "grpc"), ("legacy400", "http/protobuf")],
    ids=["steps-route-grpc", "runs-fallback-http"],
)
def test_backend_request_size_limit_splits_batches_and_delivers_once(
    receiver: OtlpReceiver, steps_route: str, protocol: str, tmp_path: Path
) -> None:
    data = FakeLettaData.generate(60)
    receiver.set_max_request_bytes(_SIZE_LIMIT)
    with FakeLettaServer(data, steps_route=steps_route) as letta:  # type: ignore[arg-type]
        bridge_env = BridgeEnv(letta, receiver, tmp_path / "state.db", protocol=protocol)
        with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
            wait_until(lambda: delivered(receiver, data), 30, "every run, in pieces", daemon)
            wait_cycles(letta, 3, daemon)
            assert daemon.stop() == 0, daemon.tail()
        result = measure(f"request-size-limit[{_path(letta)},{protocol}]", receiver, data)
    assert_exactly_once(result)
    rejected = [r for r in receiver.requests if not r.accepted]
    accepted = [r for r in receiver.requests if r.accepted]
    print(
        f"size limit: {len(rejected)} requests refused ({[r.n_spans for r in rejected]} spans),"
        f" {len(accepted)} accepted (at most {max(r.n_spans for r in accepted)} spans)"
    )
    assert rejected, "the default batch should have been too large"
    assert {r.status for r in rejected} == {"RESOURCE_EXHAUSTED" if protocol == "grpc" else "413"}
    assert all(r.uncompressed_bytes <= _SIZE_LIMIT for r in accepted)
    assert exported_in_state(tmp_path / "state.db") == set(exported_steps(receiver))


# ---------------------------------------------------------------------------------------
# 9. kill -9 in the middle of it all, restart on the same state file
# ---------------------------------------------------------------------------------------


def _wait_for_request(receiver: OtlpReceiver, n: int, done: Callable[[], bool]) -> None:
    """Return the moment the receiver records its ``n``-th request (woken by the receiver
    itself, not by polling), or once everything was delivered, whichever comes first."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            receiver.wait_for_requests(n, timeout=0.5)
        except AssertionError:
            if done():
                return
        else:
            return
    raise AssertionError(f"no request {n} within 30 s")


def _owed_rows(state_path: Path) -> set[str]:
    if not state_path.exists():
        return set()
    db = sqlite3.connect(state_path, timeout=10)
    try:
        return {str(row[0]) for row in db.execute("SELECT step_id FROM owed_llm")}
    except sqlite3.OperationalError:  # the daemon is creating the file
        return set()
    finally:
        db.close()


def test_kill_9_mid_export_repeats_at_most_the_batch_in_flight(  # noqa: PLR0915 - one scenario
    receiver: OtlpReceiver, steps_route: str, tmp_path: Path
) -> None:
    rng = random.Random(f"kill-9/{steps_route}")
    data = FakeLettaData.generate(150)  # ~645 spans: ~26 batches of at most 25
    # Some steps' traces are written late: they go out without their LLM span, which is
    # owed across the kills and sent once the trace is released (before the 3rd start).
    late = rng.sample([s for s in data.step_ids() if data.trace(s) is not None], 12)
    for step_id in late:
        data.withhold_trace(step_id)
    state_path = tmp_path / "state.db"

    def llm_spans_out() -> bool:
        chats = {
            s.attributes.get("letta.step.id") for s in receiver.spans if s.name.startswith("chat ")
        }
        return set(late) <= chats and not _owed_rows(state_path) & set(late)

    with FakeLettaServer(data, steps_route=steps_route) as letta:  # type: ignore[arg-type]
        bridge_env = BridgeEnv(letta, receiver, state_path)
        kills: list[int] = []  # accepted batches when each killed daemon was dead
        owed_at_kill: list[int] = []  # owed LLM spans in the state file at each kill
        released: list[int] = []  # the start before which the late traces were written

        def release() -> None:
            # Only once every late step span is committed, so that a batch re-sent after
            # a kill never meets changed data; the owed LLM spans then go out across the
            # remaining kills.
            if not released and set(late) <= exported_in_state(state_path):
                released.append(attempt)
                for step_id in late:
                    data.release_trace(step_id)

        for attempt in range(5):
            release()
            with running_daemon(
                bridge_env,
                tmp_path / "daemon.log",
                LETTA_OTEL_MAX_BATCH_SPANS="25",
                LETTA_OTEL_ENRICH_GRACE="60s",
            ) as daemon:
                if attempt == 0:
                    # somewhere in discovery or enrichment
                    time.sleep(rng.uniform(0.6, 1.4))
                elif attempt < 4:
                    # right as the backend accepts a batch, before the daemon can commit it
                    # (nothing more is coming once every step is out, until the release)
                    _wait_for_request(
                        receiver,
                        len(receiver.requests) + rng.randint(1, 5),
                        lambda: delivered(receiver, data) and (not released or llm_spans_out()),
                    )
                else:  # the last one runs to the end
                    wait_until(lambda: delivered(receiver, data), 60, "everything", daemon)
                    wait_until(
                        lambda: set(late) <= exported_in_state(state_path), 10, "commits", daemon
                    )
                    release()
                    wait_until(llm_spans_out, 30, "the owed LLM spans", daemon)
                    wait_cycles(letta, 3, daemon)
                    assert daemon.stop() == 0, daemon.tail()
                    break
                daemon.kill()
            kills.append(len(accepted_batches(receiver)))
            owed_at_kill.append(len(_owed_rows(state_path) & set(late)))
        result = measure(f"kill-9-x{len(kills)}[{_path(letta)}]", receiver, data)

    assert not result.missing and not result.runs_missing
    assert not result.unexpected and not result.runs_unexpected
    assert not result.tree_errors, result.tree_errors
    batches = accepted_batches(receiver)
    # The batch in flight at each kill is the last one the backend accepted before it.
    in_flight = {n - 1 for i, n in enumerate(kills) if n > (kills[i - 1] if i else 0)}
    seen: dict[str, tuple[int, ReceivedSpan]] = {}
    repeated_from: Counter[int] = Counter()
    for index, (_, spans) in enumerate(batches):
        for span in spans:
            if span.span_id in seen:
                first_batch, first = seen[span.span_id]
                assert first_batch in in_flight, (
                    f"{span.name} {span.span_id} repeated from batch {first_batch}, which was "
                    f"not in flight at a kill (those were {sorted(in_flight)})"
                )
                assert (span.trace_id, span.parent_span_id, span.name, span.attributes) == (
                    first.trace_id,
                    first.parent_span_id,
                    first.name,
                    first.attributes,
                )
                repeated_from[first_batch] += 1
            seen[span.span_id] = (index, span)
    step_copies = sum(exported_steps(receiver).values()) - len(exported_steps(receiver))
    print(
        f"kill -9: {len(kills)} kills at accepted batches {kills}; spans repeated per "
        f"in-flight batch {dict(repeated_from)}; {step_copies} step spans repeated; "
        f"owed LLM spans in the state at each kill {owed_at_kill} (traces written before "
        f"start {released})"
    )
    assert exported_in_state(tmp_path / "state.db") == set(exported_steps(receiver))
    _assert_late_llm_spans(receiver, data, late, state_path)


def _assert_late_llm_spans(
    receiver: OtlpReceiver, data: FakeLettaData, late: list[str], state_path: Path
) -> None:
    """Every late trace arrived as its step's one LLM span (any repeat is a copy from a
    batch in flight at a kill, checked by the caller), under its step, carrying it."""
    steps_by_id = {str(s.attributes["letta.step.id"]): s for s in step_spans(receiver.spans)}
    for step_id in late:
        chats = {s.span_id: s for s in receiver.spans if s.name.startswith("chat ")
                 and s.attributes.get("letta.step.id") == step_id}  # fmt: skip
        (chat,) = chats.values()
        assert chat.parent_span_id == steps_by_id[step_id].span_id
        assert chat.attributes["letta.provider_trace.id"] == data.trace(step_id)["id"]
    assert not _owed_rows(state_path) & set(late)


# ---------------------------------------------------------------------------------------
# 10. one invalid record in a listing page
# ---------------------------------------------------------------------------------------


def test_invalid_record_is_logged_counted_and_the_rest_goes_out_once(
    bridge_env: BridgeEnv,
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    capfd: pytest.CaptureFixture[str],
) -> None:
    data = letta.data
    ordered = data.step_ids()
    bad = ordered[len(ordered) // 2]  # in the middle of the page: valid steps on both sides
    data.patch_step(bad, status={"not": "a string"})
    assert run_once() == 0
    assert run_once() == 0  # and again: still not sent, nothing doubled
    _, err = capfd.readouterr()

    result = measure(f"invalid-record[{_path(letta)}]", receiver, data, exclude=[bad])
    assert_exactly_once(result)
    assert f"skipping invalid step {bad} from Letta: status" in err
    assert "skipped=1" in err
    assert state_rows(bridge_env.state_path)[bad] == "skipped"
    behind = ordered[ordered.index(bad) + 1 :]
    assert set(behind) <= set(exported_steps(receiver))
