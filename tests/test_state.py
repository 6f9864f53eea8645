"""The SQLite checkpoint: transactional, locked, bounded."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from letta_otel.state import OwedLlm, StateError, StateStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def test_discovered_steps_are_open_until_exported(store: StateStore) -> None:
    store.record_discovered(
        [("step-a", "run-1", "success"), ("step-b", "run-1", "pending")],
        now_ns=1,
        run_ids=["run-1"],
        meta={"steps.cursor": "step-b"},
    )
    assert [o.step_id for o in store.open_steps()] == ["step-a", "step-b"]
    assert store.get_meta("steps.cursor") == "step-b"
    assert store.open_run_ids() == ["run-1"]
    store.mark_exported(step_ids=["step-a"], run_ids=[], now_ns=2)
    assert [o.step_id for o in store.open_steps()] == ["step-b"]
    assert store.settled_step_ids(["step-a", "step-b", "step-x"]) == {"step-a"}
    # Re-discovering an exported step never reopens it.
    store.record_discovered([("step-a", "run-1", "success")], now_ns=3)
    assert store.step_state("step-a") == "exported"


def test_marking_exported_adds_what_the_store_did_not_know(store: StateStore) -> None:
    """Known rows are updated; unknown ones (a duplicate id included) are added."""
    store.record_discovered([("s1", "run-1", "success")], now_ns=1, run_ids=["run-1"])
    store.mark_exported(step_ids=["s1", "s2", "s1"], run_ids=["run-1", "run-2"], now_ns=5)
    assert [store.step_state(s) for s in ("s1", "s2")] == ["exported", "exported"]
    assert [store.run_state(r) for r in ("run-1", "run-2")] == ["exported", "exported"]
    assert store.open_steps() == [] and store.open_run_ids() == []


def test_a_failed_transaction_changes_nothing(store: StateStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO meta VALUES ('x', '1')")
        raise RuntimeError("crash mid-commit")
    assert store.get_meta("x") is None


def test_second_process_is_refused(tmp_path: Path, store: StateStore) -> None:
    with pytest.raises(StateError, match="in use by another letta-otel process"):
        StateStore(store.path)


def test_lock_is_released_on_close(tmp_path: Path) -> None:
    first = StateStore(tmp_path / "s.db")
    first.close()
    StateStore(tmp_path / "s.db").close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="newer letta-otel"):
        StateStore(path)


def test_unreadable_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="cannot use state file"):
        StateStore(path)


def test_prune_keeps_open_entries_and_steps_of_open_runs(store: StateStore) -> None:
    store.record_discovered(
        [("s1", "run-done", "success"), ("s2", "run-open", "success"), ("s3", None, "pending")],
        now_ns=10,
        run_ids=["run-done", "run-open"],
    )
    store.mark_exported(step_ids=["s1", "s2"], run_ids=["run-done"], now_ns=10)
    removed = store.prune(older_than_ns=100)
    assert removed == 2  # s1 and run-done
    assert store.step_state("s1") is None
    assert store.step_state("s2") == "exported"  # its run is still open
    assert store.step_state("s3") == "open"
    assert store.run_state("run-open") == "open"


def test_run_trace_id_pin_is_first_writer_wins(store: StateStore) -> None:
    store.set_run_trace_ids([("run-1", "a" * 32)], now_ns=1)
    store.set_run_trace_ids([("run-1", "b" * 32)], now_ns=2)
    assert store.run_trace_id("run-1") == "a" * 32


# --- filters and sampling (schema 2) ---------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE steps (
    step_id TEXT PRIMARY KEY, run_id TEXT,
    state TEXT NOT NULL CHECK (state IN ('open', 'exported', 'skipped')),
    last_status TEXT, first_seen_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX steps_state ON steps (state, first_seen_ns);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('open', 'exported')),
    trace_id TEXT, first_seen_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX runs_state ON runs (state, first_seen_ns);
INSERT INTO meta VALUES ('schema_version', '1'), ('steps.cursor', 'step-b');
INSERT INTO steps VALUES ('step-a', 'run-1', 'exported', 'success', 1, 2),
                         ('step-b', 'run-1', 'open', 'pending', 3, 3);
INSERT INTO runs VALUES ('run-1', 'open', 'ab', 1, 1), ('run-0', 'exported', NULL, 1, 2);
"""


@contextmanager
def _migrated(path: Path, script: str) -> Iterator[StateStore]:
    """An old file written by ``script``, opened (so migrated): what every migration keeps
    is checked around the caller's own checks, then the file is opened once more."""
    with sqlite3.connect(path) as db:
        db.executescript(script)
    store = StateStore(path)
    try:
        assert store.get_meta("schema_version") == "4"
        assert store.get_meta("steps.cursor") == "step-b"
        assert [o.step_id for o in store.open_steps()] == ["step-b"]
        assert store.owed_llm() == []  # schema 4: the table of owed LLM spans is there
        yield store
        indexes = {row[0] for row in store._db.execute("SELECT name FROM sqlite_master")}
        assert {"steps_state", "steps_run", "runs_state", "owed_llm_due"} <= indexes
    finally:
        store.close()
    StateStore(path).close()  # reopening a migrated file is a no-op


def test_schema_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    with _migrated(tmp_path / "v1.db", _V1_SCHEMA) as store:
        assert store.step_state("step-a") == "exported"
        assert store.run_trace_id("run-1") == "ab"
        assert store.run_state("run-0") == "exported"
        store.record_selection(now_ns=5, filtered=[("step-b", "run-1")], filtered_runs=["run-1"])
        assert (store.step_state("step-b"), store.run_state("run-1")) == ("filtered", "filtered")


_V2_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE steps (
    step_id TEXT PRIMARY KEY, run_id TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('open', 'exported', 'skipped', 'filtered', 'sampled')),
    last_status TEXT, first_seen_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);
CREATE INDEX steps_state ON steps (state, first_seen_ns);
CREATE INDEX steps_run ON steps (run_id);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('open', 'exported', 'filtered', 'sampled')),
    trace_id TEXT, first_seen_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    sample_rate INTEGER);
CREATE INDEX runs_state ON runs (state, first_seen_ns);
CREATE TABLE trace_bytes (trace_id TEXT PRIMARY KEY, bytes INTEGER NOT NULL,
                          updated_ns INTEGER NOT NULL);
INSERT INTO meta VALUES ('schema_version', '2'), ('steps.cursor', 'step-b');
INSERT INTO steps VALUES ('step-a', 'run-1', 'sampled', 'success', 1, 2),
                         ('step-b', 'run-1', 'open', 'pending', 3, 3);
INSERT INTO runs VALUES ('run-1', 'open', 'ab', 1, 1, 10), ('run-0', 'filtered', NULL, 1, 2, NULL);
INSERT INTO trace_bytes VALUES ('ab', 1234, 5);
"""


def test_schema_2_file_is_migrated_in_place(tmp_path: Path) -> None:
    with _migrated(tmp_path / "v2.db", _V2_SCHEMA) as store:
        assert store.step_state("step-a") == "sampled"
        assert store.run_selection_info(["run-1"])["run-1"].sample_rate == 10
        assert store.run_state("run-0") == "filtered"
        assert store.run_trace_id("run-1") == "ab"
        assert store._db.execute("SELECT bytes FROM trace_bytes").fetchall() == [(1234,)]
        tables = dict(store._db.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
        assert " IN (" not in tables["steps"] and " IN (" not in tables["runs"]
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            store._db.execute("UPDATE steps SET state = 'lost' WHERE step_id = 'step-a'")


_V3_SCHEMA = (
    _V2_SCHEMA.replace("'schema_version', '2'", "'schema_version', '3'")
    .replace("CHECK (state IN ('open', 'exported', 'skipped', 'filtered', 'sampled'))", "")
    .replace("CHECK (state IN ('open', 'exported', 'filtered', 'sampled'))", "")
)


def test_schema_3_file_is_migrated_in_place(tmp_path: Path) -> None:
    with _migrated(tmp_path / "v3.db", _V3_SCHEMA) as store:
        assert store.step_state("step-a") == "sampled"
        assert store.run_trace_id("run-1") == "ab"
        store.mark_exported(step_ids=["step-b"], run_ids=[], now_ns=9, owe=[_owed("step-b")])
        assert [o.step_id for o in store.owed_llm()] == ["step-b"]
        assert store.counts()["llm_owed"] == 1


def _owed(step_id: str, *, terminal_ns: int = 100, next_check_ns: int = 200) -> OwedLlm:
    return OwedLlm(
        step_id=step_id,
        run_id="run-1",
        trace_id="ab" * 16,
        record=b'{"step":{"id":"%s"}}' % step_id.encode(),
        terminal_ns=terminal_ns,
        next_check_ns=next_check_ns,
    )


# --- LLM spans still owed (schema 4) -----------------------------------------------


def test_owed_llm_spans_are_written_and_removed_with_the_exports(store: StateStore) -> None:
    store.record_discovered([("s1", "run-1", "failed"), ("s2", "run-1", "success")], now_ns=1)
    store.mark_exported(
        step_ids=["s1", "s2"],
        run_ids=[],
        now_ns=2,
        owe=[_owed("s1", next_check_ns=300), _owed("s2", next_check_ns=200)],
    )
    assert store.open_steps() == []  # the steps are exported; their LLM spans are owed
    assert [o.step_id for o in store.owed_llm()] == ["s2", "s1"]  # the longest due first
    assert [o.step_id for o in store.owed_llm(due_by_ns=250)] == ["s2"]
    assert store.owed_llm(due_by_ns=250)[0] == _owed("s2", next_check_ns=200)

    store.owe_later("s2", next_check_ns=400, checks=1)
    (later,) = [o for o in store.owed_llm() if o.step_id == "s2"]
    assert (later.next_check_ns, later.checks) == (400, 1)
    assert store.owed_llm(due_by_ns=250) == []

    # A step span sent again (kill -9 before its commit) keeps the row it has.
    store.mark_exported(step_ids=["s2"], run_ids=[], now_ns=3, owe=[_owed("s2")])
    assert [o.checks for o in store.owed_llm() if o.step_id == "s2"] == [1]

    store.mark_exported(step_ids=[], run_ids=[], now_ns=4, paid=["s1"])  # its span went out
    store.settle_owed(["s2"])  # nothing to send
    assert store.owed_llm() == []
    assert store.counts()["llm_owed"] == 0


def test_owed_llm_rows_survive_a_restart_and_a_failed_commit(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = StateStore(path)
    store.mark_exported(step_ids=["s1"], run_ids=[], now_ns=1, owe=[_owed("s1")])
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        # A commit that fails halfway changes nothing: the span stays owed.
        db.execute("DELETE FROM owed_llm WHERE step_id = 's1'")
        db.execute("INSERT INTO owed_llm (step_id) VALUES ('s2')")  # NOT NULL columns
    store.close()
    store = StateStore(path)  # a restart
    try:
        assert store.owed_llm() == [_owed("s1")]
    finally:
        store.close()


def test_prune_gives_up_owed_llm_spans_a_day_old(store: StateStore) -> None:
    store.mark_exported(
        step_ids=[],
        run_ids=[],
        now_ns=1,
        owe=[_owed("old", terminal_ns=10), _owed("new", terminal_ns=1000)],
    )
    assert store.prune(older_than_ns=500) == 1
    assert [o.step_id for o in store.owed_llm()] == ["new"]


def test_writes_build_no_temporary_index_per_row(store: StateStore) -> None:
    """What the daemon writes for every step and run: a CHECK written as ``IN (...)``
    made SQLite build a temporary index of the list for each row (a third of the state
    file's CPU per step); the ``OR`` form compares in place."""
    statements = [
        "INSERT INTO steps (step_id, run_id, state, last_status, first_seen_ns, updated_ns) "
        "VALUES (?, ?, 'open', ?, ?, ?) ON CONFLICT(step_id) DO UPDATE SET "
        "last_status = excluded.last_status WHERE steps.state = 'open'",
        "INSERT INTO runs (run_id, state, first_seen_ns, updated_ns) VALUES (?, 'open', ?, ?) "
        "ON CONFLICT(run_id) DO NOTHING",
        "UPDATE steps SET state = 'exported', updated_ns = ? WHERE step_id = ?",
        "UPDATE runs SET state = 'exported', updated_ns = ? WHERE run_id = ?",
    ]
    for sql in statements:
        params = (None,) * sql.count("?")
        ops = {row[1] for row in store._db.execute(f"EXPLAIN {sql}", params)}
        assert "OpenEphemeral" not in ops, sql
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        store._db.execute(
            "INSERT INTO runs (run_id, state, first_seen_ns, updated_ns) VALUES ('r', 'x', 1, 1)"
        )


def test_selection_settles_steps_and_runs(store: StateStore) -> None:
    store.record_discovered(
        [("s1", "run-1", "success"), ("s2", "run-1", "success"), ("s3", "run-2", "failed")],
        now_ns=1,
        run_ids=["run-1", "run-2"],
    )
    store.record_selection(
        now_ns=2,
        sampled=[("s1", "run-1"), ("s2", "run-1")],
        sampled_runs=["run-1"],
        kept_runs={"run-2": 1},
    )
    assert store.open_steps()[0].step_id == "s3"
    assert store.settled_step_ids(["s1", "s2", "s3"]) == {"s1", "s2"}
    assert store.open_run_ids() == ["run-2"]
    store.mark_exported(step_ids=["s3"], run_ids=[], now_ns=3)
    info = store.run_selection_info(["run-1", "run-2", "run-x"])
    assert set(info) == {"run-1", "run-2"}
    assert (info["run-1"].state, info["run-1"].sample_rate, info["run-1"].kept_steps) == (
        "sampled",
        None,
        0,
    )
    assert (info["run-2"].state, info["run-2"].sample_rate, info["run-2"].exported_steps) == (
        "open",
        1,
        1,
    )
    assert store.runs_exported_since(2) == {"run-1"}  # settled runs are re-read for late steps
    counts = store.counts()
    assert (counts["steps_sampled"], counts["runs_sampled"]) == (2, 1)


def test_reopening_a_sampled_run_reopens_its_sampled_steps_only(store: StateStore) -> None:
    store.record_discovered(
        [("s1", "run-1", "success"), ("s2", "run-1", "success"), ("s3", "run-1", "success")],
        now_ns=1,
        run_ids=["run-1"],
    )
    store.record_selection(
        now_ns=2,
        filtered=[("s3", "run-1")],
        sampled=[("s1", "run-1"), ("s2", "run-1")],
        sampled_runs=["run-1"],
    )
    store.record_selection(now_ns=3, reopened_runs=["run-1"])
    assert store.run_state("run-1") == "open"
    assert [o.step_id for o in store.open_steps()] == ["s1", "s2"]
    assert store.step_state("s3") == "filtered"


def test_selection_never_overrides_an_exported_step_or_run(store: StateStore) -> None:
    store.record_discovered([("s1", "run-1", "success")], now_ns=1, run_ids=["run-1"])
    store.mark_exported(step_ids=["s1"], run_ids=["run-1"], now_ns=2)
    store.record_selection(
        now_ns=3, sampled=[("s1", "run-1")], sampled_runs=["run-1"], filtered_runs=["run-1"]
    )
    assert (store.step_state("s1"), store.run_state("run-1")) == ("exported", "exported")


def test_prune_forgets_settled_runs_too(store: StateStore) -> None:
    store.record_discovered([("s1", "run-1", "success")], now_ns=1, run_ids=["run-1"])
    store.record_selection(now_ns=1, sampled=[("s1", "run-1")], sampled_runs=["run-1"])
    assert store.prune(older_than_ns=100) == 2
    assert (store.step_state("s1"), store.run_state("run-1")) == (None, None)
