"""Discovery against the fake Letta API on a real socket, cycle by cycle.

Each test plays the bridge's part between cycles: what a cycle found and did not settle
is recorded open with the cursors it returns (``StateStore.record_discovered``, as the
pipeline does), and what the test says was exported is settled. ``now`` is passed
explicitly, so the once-a-minute re-read and the late re-lists fall where a test wants
them; the fake's request log tells what each cycle asked Letta.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from letta_otel.letta.client import LettaClient
from letta_otel.letta.discovery import (
    META_LAST_REREAD,
    RECENT_WINDOW,
    STEPS_PAGE,
    Discovered,
    Discovery,
    RunsDiscovery,
    StepsDiscovery,
)
from letta_otel.state.store import StateStore
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer, RecordedRequest, parse_ts

STEP_BY_ID = r"^/v1/steps/[^/]+$"
RUN_BY_ID = r"^/v1/runs/[^/]+$"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "state.db")
    yield store
    store.close()


class Cycles:
    """Runs one discovery cycle at a time on its own event loop, as the bridge would."""

    def __init__(self, server: FakeLettaServer, state: StateStore, make: type[Discovery]) -> None:
        self.server = server
        self.state = state
        self.loop = asyncio.new_event_loop()
        self.client = LettaClient(server.base_url, timeout=5)
        self.discovery: StepsDiscovery | RunsDiscovery = (
            StepsDiscovery(self.client, timedelta(hours=1), 10)
            if make is StepsDiscovery
            else RunsDiscovery(self.client, timedelta(hours=1), None)
        )
        self.requests: list[RecordedRequest] = []  # the last cycle's

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

    def run(self, now: datetime) -> Discovered:
        before = len(self.server.requests)
        found = self.loop.run_until_complete(self.discovery.discover(self.state, now))
        self.requests = self.server.requests[before:]
        settled = self.state.settled_step_ids(s.id for s in found.steps)
        fresh = {s.id: s for s in found.steps if s.id not in settled}
        self.state.record_discovered(
            [(s.id, s.run_id, s.status) for s in fresh.values()],
            now_ns=_ns(now),
            run_ids=sorted({s.run_id for s in fresh.values() if s.run_id}),
            meta=found.meta,
        )
        return found

    def export_all(self, now: datetime, *, keep: frozenset[str] = frozenset()) -> None:
        """Settle every open step and run but those in ``keep`` (and the runs of the
        steps kept): what an export of all of them would do."""
        steps = [o for o in self.state.open_steps() if o.step_id not in keep]
        busy = {o.run_id for o in self.state.open_steps() if o.step_id in keep} | keep
        self.state.mark_exported(
            step_ids=[o.step_id for o in steps],
            run_ids=[r for r in self.state.open_run_ids() if r not in busy],
            now_ns=_ns(now),
        )

    def count(self, path_regex: str, **query: str) -> int:
        """The last cycle's requests to ``path_regex`` whose query has ``query``'s keys
        (with these values, unless the value given is ``"*"``)."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for r in self.requests
            if pattern.search(r.path)
            and all(
                key in r.query and (value == "*" or value in r.query[key])
                for key, value in query.items()
            )
        )


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _cycles(server: FakeLettaServer, state: StateStore, make: type[Discovery]) -> Cycles:
    return Cycles(server, state, make)


@pytest.fixture
def steps_cycles(state: StateStore) -> Iterator[tuple[FakeLettaData, Cycles]]:
    data = FakeLettaData.from_samples()
    with FakeLettaServer(data) as server:
        cycles = _cycles(server, state, StepsDiscovery)
        yield data, cycles
        cycles.close()


@pytest.fixture
def runs_cycles(state: StateStore) -> Iterator[tuple[FakeLettaData, Cycles]]:
    data = FakeLettaData.from_samples()
    with FakeLettaServer(data, steps_route="legacy400") as server:
        cycles = _cycles(server, state, RunsDiscovery)
        yield data, cycles
        cycles.close()


def _ids(found: Discovered) -> list[str]:
    return [s.id for s in found.steps]


# ---------------------------------------------------------------------------------------
# the steps route
# ---------------------------------------------------------------------------------------


def test_a_late_commit_behind_the_cursor_is_found_at_the_next_cycle(
    steps_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    data, cycles = steps_cycles
    t0 = datetime.now(UTC)
    # Created 10 s ago, committed late: newer steps are listed (and the cursor passes
    # its created_at) before it becomes visible.
    late_run = data.add_run("plain", created_at=t0 - timedelta(seconds=10), hidden=True)
    (late_step,) = data.run_step_ids(late_run)
    newest = data.add_run("plain")
    assert late_step not in _ids(cycles.run(t0))
    assert data.run_step_ids(newest)[0] in _ids(cycles.run(t0))
    cycles.export_all(t0)
    cycles.run(t0 + timedelta(seconds=1))  # the first re-read of a fresh state, too
    assert late_step not in _ids(cycles.run(t0 + timedelta(seconds=2)))

    data.reveal(late_step)
    found = cycles.run(t0 + timedelta(seconds=3))
    assert _ids(found) == [late_step]
    # One listing, from 30 s back to the end: it is also the forward read.
    assert cycles.count(r"^/v1/steps/$") == 1
    assert cycles.count(r"^/v1/steps/$", start_date="*") == 1
    (listing,) = cycles.requests
    start = parse_ts(listing.query["start_date"][0])
    assert start == t0 + timedelta(seconds=3) - RECENT_WINDOW
    cycles.export_all(t0)
    assert _ids(cycles.run(t0 + timedelta(seconds=4))) == []  # settled: not listed again


def test_open_steps_get_their_current_view_from_the_listing_not_by_id(
    steps_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    data, cycles = steps_cycles
    t0 = datetime.now(UTC)
    run_id = data.add_run("tool_two_steps", pending=True)
    first = data.run_step_ids(run_id)[0]
    found = cycles.run(t0)
    assert {s.id: s.status for s in found.steps}[first] == "pending"
    cycles.export_all(t0, keep=frozenset({first}))  # the finished samples went out

    views = []
    second = None
    for i in range(1, 6):
        if i == 3:
            second = data.advance(run_id)  # the first step done, the second one pending
        found = cycles.run(t0 + timedelta(seconds=i))
        views.append({s.id: s.status for s in found.steps})
        assert cycles.count(STEP_BY_ID) == 0
    assert views[0] == {first: "pending"}  # cycle 1 read forward: listed again since
    assert views[2][first] == "success"
    assert second is not None and views[2][second] == "pending"
    assert views[4] == {first: "success", second: "pending"}  # open: still listed


def test_a_quiet_spell_reads_forward_only_and_a_new_step_brings_the_window_back(
    steps_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    data, cycles = steps_cycles  # the samples ended a minute ago: older than the window
    t0 = datetime.now(UTC)
    assert len(_ids(cycles.run(t0))) == 14
    cycles.export_all(t0)
    cycles.run(t0 + timedelta(seconds=1))  # the window holds no step: forward read too
    assert cycles.count(r"^/v1/steps/$", start_date="*") >= 1
    assert cycles.count(r"^/v1/steps/$", after="*") >= 1

    cycles.run(t0 + timedelta(seconds=2))
    assert cycles.count(r"^/v1/steps/$") == 1  # forward only, from the cursor
    assert cycles.count(r"^/v1/steps/$", after="*") == 1

    run_id = data.add_run("plain")
    assert _ids(cycles.run(t0 + timedelta(seconds=3))) == data.run_step_ids(run_id)
    cycles.export_all(t0)
    assert _ids(cycles.run(t0 + timedelta(seconds=4))) == []
    assert cycles.count(r"^/v1/steps/$") == 1  # the window again, holding the cursor
    assert cycles.count(r"^/v1/steps/$", start_date="*") == 1


def test_cycles_further_apart_than_the_window_read_forward_only(
    steps_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    # A poll interval (or a back-off) longer than the window: the cursor is older than
    # the window at every cycle, so listing the window could not reach it and the forward
    # read lists all it holds anyway. One listing a cycle, not two.
    data, cycles = steps_cycles
    t0 = datetime.now(UTC)
    cycles.run(t0)
    cycles.export_all(t0)
    first = data.add_run("plain")
    assert set(_ids(cycles.run(t0 + timedelta(seconds=1)))) == set(data.run_step_ids(first))
    cycles.export_all(t0)
    later = t0 + RECENT_WINDOW + timedelta(seconds=15)  # before the minute re-read
    second = data.add_run("plain")
    assert _ids(cycles.run(later)) == data.run_step_ids(second)
    assert cycles.count(r"^/v1/steps/$", start_date="*") == 0
    assert cycles.count(r"^/v1/steps/$", after="*") == 1


def test_a_window_denser_than_its_page_budget_shrinks_and_passes_nothing_over(
    state: StateStore,
) -> None:
    now = datetime.now(UTC)
    # About 1.4 steps per run: some 600 steps in the last 13 s, 200 in the last 4.5 s.
    data = FakeLettaData.generate(600, end=now, spacing=timedelta(milliseconds=30))
    with FakeLettaServer(data) as server:
        cycles = _cycles(server, state, StepsDiscovery)
        try:
            assert isinstance(cycles.discovery, StepsDiscovery)
            cycles.discovery.recent_max_pages = 2  # 400 steps
            state.set_meta(META_LAST_REREAD, now.isoformat())  # no re-read in the way
            assert set(_ids(cycles.run(now))) == set(data.step_ids())
            cycles.export_all(now)
            late = data.add_run("plain", created_at=now - timedelta(seconds=2), hidden=True)

            def window_starts() -> list[datetime]:
                return [
                    parse_ts(r.query["start_date"][0])
                    for r in cycles.requests
                    if "start_date" in r.query
                ]

            for i, window in ((1, RECENT_WINDOW), (2, RECENT_WINDOW / 2)):
                newer = data.add_run("plain", created_at=now + timedelta(seconds=i - 1))
                # The window does not reach the cursor within its budget: it is halved
                # for the next cycle, and the forward read from the cursor follows, so
                # nothing new is passed over.
                found = cycles.run(now + timedelta(seconds=i))
                assert window_starts() == [now + timedelta(seconds=i) - window]
                assert cycles.count(r"^/v1/steps/$") == 3  # 2 pages of window, 1 forward
                assert set(_ids(found)) == set(data.run_step_ids(newer))
                cycles.export_all(now)

            (late_step,) = data.run_step_ids(late)
            data.reveal(late_step)
            found = cycles.run(now + timedelta(seconds=3))
            assert window_starts() == [now + timedelta(seconds=3) - RECENT_WINDOW / 4]
            assert _ids(found) == [late_step]  # 2 s old: inside the window that fits
            assert cycles.count(r"^/v1/steps/$") <= 2  # it reached the cursor: no forward
        finally:
            cycles.close()
    assert STEPS_PAGE == 200


# ---------------------------------------------------------------------------------------
# the runs fallback
# ---------------------------------------------------------------------------------------


def test_runs_fallback_lists_a_finished_runs_steps_once_then_again_for_late_commits(
    runs_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    data, cycles = runs_cycles
    t0 = datetime.now(UTC)
    run_id = data.add_run("tool_two_steps")  # finished just now
    first, late_step = data.run_step_ids(run_id)
    data.hide(late_step)  # its row commits after the run ended
    assert first in _ids(cycles.run(t0))
    cycles.export_all(t0)  # its visible step and the run itself went out

    # Terminal and read once since: not read again until the first late re-list.
    assert _ids(cycles.run(t0 + timedelta(seconds=1))) == []
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 0
    assert cycles.count(r"^/v1/runs/[^/]+/steps$") == 0

    data.reveal(late_step)
    found = cycles.run(t0 + timedelta(seconds=5))  # 4 s after it was seen terminal
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 1
    assert late_step in _ids(found)
    cycles.export_all(t0)
    cycles.run(t0 + timedelta(seconds=6))
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 0
    cycles.run(t0 + timedelta(seconds=16))  # the second re-list
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 1
    cycles.run(t0 + timedelta(seconds=40))
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 0
    cycles.run(t0 + timedelta(seconds=61))  # then after 1 and 5 min
    assert cycles.count(rf"^/v1/runs/{run_id}/steps$") == 1
    # ... the once-a-minute re-read does not list it once more: it is on its schedule
    assert cycles.count(r"^/v1/runs/$") >= 1


def test_runs_fallback_reads_a_running_runs_steps_every_cycle_and_a_late_run_next_cycle(
    runs_cycles: tuple[FakeLettaData, Cycles],
) -> None:
    data, cycles = runs_cycles
    t0 = datetime.now(UTC)
    running = data.add_run("tool_two_steps", pending=True)
    cycles.run(t0)
    cycles.export_all(t0, keep=frozenset(data.run_step_ids(running)))
    late_run = data.add_run("plain", created_at=t0 - timedelta(seconds=30), hidden=True)
    for i in (1, 2):
        found = cycles.run(t0 + timedelta(seconds=i))
        assert cycles.count(rf"^/v1/runs/{running}/steps$") == 1
        assert found.runs[running].status == "running"  # for the pipeline: no GET by id
        assert cycles.count(RUN_BY_ID) == 0
    data.reveal_run(late_run)
    for step_id in data.run_step_ids(late_run):
        data.reveal(step_id)
    found = cycles.run(t0 + timedelta(seconds=3))
    assert set(data.run_step_ids(late_run)) <= set(_ids(found))
