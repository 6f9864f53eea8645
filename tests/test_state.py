"""The SQLite checkpoint: transactional, locked, bounded."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from letta_otel.state import StateError, StateStore


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
