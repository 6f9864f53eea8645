"""Late commits are found within seconds, and waiting reads nothing by id that a listing
already gave (issue 23), on both discovery paths.

The real daemon (a subprocess) against the fake Letta API and the real OTLP receiver.
A "late commit" is a step (or run) that becomes visible after newer ones were listed:
the fake hides it, the test reveals it once the daemon has moved past it. The
once-a-minute re-read is not what finds it: each scenario ends well within a minute of
the daemon's first re-read (its second cycle on the steps route, its first on the runs
fallback), and the wait for the late step is far shorter than the next one.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import BridgeEnv
from tests.e2e.faults_helpers import (
    RESULTS,
    add_run_in_order,
    assert_exactly_once,
    delivered,
    exported_runs,
    exported_steps,
    measure,
    running_daemon,
    wait_cycles,
    wait_until,
)
from tests.fakes.letta_api import FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver

# Well below the next once-a-minute re-read (the proof that the recent window, or the
# runs fallback's late re-lists, found the step), with room for a loaded machine.
SOON = 15.0

RUN_BY_ID = r"^/v1/runs/[^/]+$"


def _path(letta: FakeLettaServer) -> str:
    return "steps-route" if letta.steps_route == "ok" else "runs-fallback"


def test_a_late_step_of_a_just_finished_run_is_found_within_seconds(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
        started = time.monotonic()
        wait_until(lambda: delivered(receiver, data), 20, "the finished sample runs", daemon)
        run_id = add_run_in_order(data, "tool_two_steps")
        first, late_step = data.run_step_ids(run_id)
        data.hide(late_step)  # its row commits after the run ended
        wait_until(lambda: run_id in exported_runs(receiver), 10, "the run's root", daemon)
        assert first in exported_steps(receiver)

        data.reveal(late_step)
        revealed = time.monotonic()
        wait_until(lambda: late_step in exported_steps(receiver), SOON, "the late step", daemon)
        assert time.monotonic() - started < 60, "too slow to tell from the minute re-read"
        found_after = time.monotonic() - revealed
        wait_cycles(letta, 3, daemon)  # a few more cycles: a repeat would show now
        assert daemon.stop() == 0, daemon.tail()

    result = measure(f"late-step-within-seconds[{_path(letta)}]", receiver, data)
    RESULTS[-1] += f" found {found_after:.1f}s after it became visible"
    assert_exactly_once(result)


def test_a_late_run_is_found_within_seconds(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
        started = time.monotonic()
        wait_until(lambda: delivered(receiver, data), 20, "the finished sample runs", daemon)
        # Created 10 s ago and committed late: a newer run is listed (and exported) first.
        late_run = data.add_run(
            "plain", created_at=datetime.now(UTC) - timedelta(seconds=10), hidden=True
        )
        newer = add_run_in_order(data, "plain")
        wait_until(lambda: newer in exported_runs(receiver), 10, "the newer run", daemon)
        wait_cycles(letta, 2, daemon)
        assert late_run not in exported_runs(receiver)

        data.reveal_run(late_run)
        for step_id in data.run_step_ids(late_run):
            data.reveal(step_id)
        wait_until(lambda: delivered(receiver, data), SOON, "the late run", daemon)
        assert time.monotonic() - started < 60, "too slow to tell from the minute re-read"
        wait_cycles(letta, 3, daemon)
        assert daemon.stop() == 0, daemon.tail()

    result = measure(f"late-run-within-seconds[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)


def test_waiting_steps_and_runs_are_refreshed_from_listings_not_read_by_id(
    bridge_env: BridgeEnv, receiver: OtlpReceiver, letta: FakeLettaServer, tmp_path: Path
) -> None:
    """A run in progress: its pending steps and its status come from the listings every
    cycle (the recent window of ``/v1/steps/`` and ``/v1/runs/``, or the runs
    fallback's ``/v1/runs/`` and ``/v1/runs/{id}/steps``), never from a GET by id."""
    data = letta.data
    with running_daemon(bridge_env, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: delivered(receiver, data), 20, "the finished sample runs", daemon)
        run_id = data.add_run("tool_two_steps", pending=True)
        first = data.run_step_ids(run_id)[0]
        wait_cycles(letta, 5, daemon)
        assert first not in exported_steps(receiver)
        second = data.advance(run_id)
        assert second is not None
        wait_until(lambda: first in exported_steps(receiver), 10, "step 1 once done", daemon)
        wait_cycles(letta, 5, daemon)
        assert data.advance(run_id) is None
        wait_until(lambda: run_id in exported_runs(receiver), 10, "the run's root", daemon)
        wait_cycles(letta, 3, daemon)
        assert daemon.stop() == 0, daemon.tail()

    for step_id in (first, second):
        assert letta.count(rf"^/v1/steps/{step_id}$") == 0
    assert letta.count(RUN_BY_ID) == 0  # none at all: every run came with a listing
    result = measure(f"refreshed-from-listings[{_path(letta)}]", receiver, data)
    assert_exactly_once(result)
