"""SQLite checkpoint: what was discovered, what the backend confirmed.

Invariant that makes restarts lose nothing: a discovery cursor only moves in the
same transaction that records every step it passed as ``open``. A step leaves
``open`` only when the backend accepted its spans. So after any crash the open
steps are fetched again by id, and at most the batch in flight is sent twice
(with the same span ids). A step exported without its LLM span owes it: the
``owed_llm`` row is written in the transaction that marks the step exported and
removed in the one that commits the LLM span, so it too survives any crash.

WAL mode makes each commit atomic and durable; an exclusive ``flock`` on a side
file keeps a second daemon off the same state. The pipeline changes it only through
its narrow interface (:class:`letta_otel.pipeline.checkpoint.Checkpoint`).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from letta_otel.state.rows import OpenRun, OpenStep, OwedLlm, RunSelection, StateError
from letta_otel.state.schema import INDEXES, MIGRATIONS, SCHEMA, SCHEMA_VERSION


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd = self._acquire_lock(path)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._check_schema()
            self._db.executescript(INDEXES)
        except sqlite3.Error as exc:
            self._release_lock()
            raise StateError(f"cannot use state file {path}: {exc}") from None

    @staticmethod
    def _acquire_lock(path: Path) -> int:
        lock_path = path.with_name(path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create lock file {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateError(
                f"state file {path} is in use by another letta-otel process; run one daemon "
                "per state file (set LETTA_OTEL_STATE_PATH to a different file for another)"
            ) from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _check_schema(self) -> None:
        found = self.get_meta("schema_version")
        if found is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(found) > SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} was written by a newer letta-otel "
                f"(schema {found} > {SCHEMA_VERSION}); upgrade letta-otel or use another file"
            )
        elif int(found) in MIGRATIONS:
            with self.transaction() as db:
                for statement in MIGRATIONS[int(found)].split(";"):
                    if statement.strip():
                        db.execute(statement)
                self.set_meta("schema_version", str(SCHEMA_VERSION), db)

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release_lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta ---------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        (db or self._db).execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- steps --------------------------------------------------------------------

    def record_discovered(
        self,
        steps: Iterable[tuple[str, str | None, str | None]],
        *,
        now_ns: int,
        run_ids: Iterable[str] = (),
        meta: dict[str, str] | None = None,
    ) -> None:
        """Remember discovered steps (id, run id, status) as open, and move cursors.

        Already exported steps stay exported; the cursor update rides the same
        transaction, which is what makes a crash right after it harmless.
        """
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO steps (step_id, run_id, state, last_status, first_seen_ns, "
                "updated_ns) VALUES (?, ?, 'open', ?, ?, ?) "
                "ON CONFLICT(step_id) DO UPDATE SET last_status = excluded.last_status, "
                "updated_ns = excluded.updated_ns WHERE steps.state = 'open'",
                [(sid, rid, status, now_ns, now_ns) for sid, rid, status in steps],
            )
            db.executemany(
                "INSERT INTO runs (run_id, state, first_seen_ns, updated_ns) "
                "VALUES (?, 'open', ?, ?) ON CONFLICT(run_id) DO NOTHING",
                [(rid, now_ns, now_ns) for rid in run_ids],
            )
            for key, value in (meta or {}).items():
                self.set_meta(key, value, db)

    def open_steps(self) -> list[OpenStep]:
        rows = self._db.execute(
            "SELECT step_id, run_id, last_status, first_seen_ns FROM steps "
            "WHERE state = 'open' ORDER BY first_seen_ns, step_id"
        ).fetchall()
        return [OpenStep(*row) for row in rows]

    def settled_step_ids(self, step_ids: Iterable[str]) -> set[str]:
        """The ones already exported or skipped: nothing more to do for them."""
        ids = list(step_ids)
        found: set[str] = set()
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._db.execute(
                    f"SELECT step_id FROM steps WHERE state != 'open' AND step_id IN ({marks})",
                    chunk,
                )
            )
        return found

    def runs_with_open_steps(self, run_ids: Iterable[str]) -> set[str]:
        """Those of ``run_ids`` with a step still open."""
        found: set[str] = set()
        for chunk in _chunks(list(run_ids), 500):
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._db.execute(
                    f"SELECT DISTINCT run_id FROM steps WHERE state = 'open' "
                    f"AND run_id IN ({marks})",
                    chunk,
                )
            )
        return found

    def step_state(self, step_id: str) -> str | None:
        row = self._db.execute("SELECT state FROM steps WHERE step_id = ?", (step_id,)).fetchone()
        return None if row is None else str(row[0])

    # --- runs ---------------------------------------------------------------------

    def open_runs(self) -> list[OpenRun]:
        rows = self._db.execute(
            "SELECT run_id, first_seen_ns FROM runs WHERE state = 'open' "
            "ORDER BY first_seen_ns, run_id"
        ).fetchall()
        return [OpenRun(*row) for row in rows]

    def open_run_ids(self) -> list[str]:
        return [r.run_id for r in self.open_runs()]

    def runs_exported_since(self, since_ns: int) -> set[str]:
        """Runs settled (exported, sampled out or filtered) since ``since_ns``."""
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE state != 'open' AND updated_ns >= ?", (since_ns,)
        )
        return {str(row[0]) for row in rows}

    def run_state(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else str(row[0])

    def run_trace_id(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT trace_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def set_run_trace_ids(self, pairs: Iterable[tuple[str, str]], *, now_ns: int) -> None:
        """Pin the trace id chosen for a run so later spans of it join the same trace."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO runs (run_id, state, trace_id, first_seen_ns, updated_ns) "
                "VALUES (?, 'open', ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                "trace_id = COALESCE(runs.trace_id, excluded.trace_id)",
                [(rid, tid, now_ns, now_ns) for rid, tid in pairs],
            )

    # --- commit after export ------------------------------------------------------

    def mark_exported(
        self,
        *,
        step_ids: Iterable[str],
        run_ids: Iterable[str],
        now_ns: int,
        trace_bytes: Mapping[str, int] | None = None,
        owe: Iterable[OwedLlm] = (),
        paid: Iterable[str] = (),
    ) -> None:
        """The backend confirmed these: one transaction, all or nothing.

        ``trace_bytes`` adds the confirmed bytes per trace id (the trace budget); ``owe``
        records the LLM spans the exported steps still owe; ``paid`` names the steps
        whose owed LLM span was among the confirmed spans (their rows go).
        """
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO trace_bytes (trace_id, bytes, updated_ns) VALUES (?, ?, ?) "
                "ON CONFLICT(trace_id) DO UPDATE SET bytes = trace_bytes.bytes + excluded.bytes, "
                "updated_ns = excluded.updated_ns",
                [(tid, n, now_ns) for tid, n in (trace_bytes or {}).items()],
            )
            _set_exported(db, "steps", "step_id", list(step_ids), now_ns)
            _set_exported(db, "runs", "run_id", list(run_ids), now_ns)
            owed = [
                (
                    o.step_id,
                    o.run_id,
                    o.trace_id,
                    o.record,
                    o.terminal_ns,
                    o.next_check_ns,
                    o.checks,
                )
                for o in owe
            ]
            if owed:  # a step sent again (kill -9 before its commit) keeps its first row
                db.executemany(
                    "INSERT INTO owed_llm (step_id, run_id, trace_id, record, terminal_ns, "
                    "next_check_ns, checks) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(step_id) DO NOTHING",
                    owed,
                )
            db.executemany("DELETE FROM owed_llm WHERE step_id = ?", [(s,) for s in paid])

    # --- LLM spans still owed (schema 4) --------------------------------------------

    def owed_llm(self, *, due_by_ns: int | None = None) -> list[OwedLlm]:
        """The owed LLM spans whose next check is due by ``due_by_ns`` (None: all),
        the longest due first."""
        columns = "step_id, run_id, trace_id, record, terminal_ns, next_check_ns, checks"
        if due_by_ns is None:
            rows = self._db.execute(
                f"SELECT {columns} FROM owed_llm ORDER BY next_check_ns, step_id"
            )
        else:
            rows = self._db.execute(
                f"SELECT {columns} FROM owed_llm WHERE next_check_ns <= ? "
                "ORDER BY next_check_ns, step_id",
                (due_by_ns,),
            )
        return [OwedLlm(sid, rid, tid, bytes(rec), t, n, c) for sid, rid, tid, rec, t, n, c in rows]

    def owe_later(self, step_id: str, *, next_check_ns: int, checks: int) -> None:
        """No provider trace yet: look again at ``next_check_ns``."""
        with self.transaction() as db:
            db.execute(
                "UPDATE owed_llm SET next_check_ns = ?, checks = ? WHERE step_id = ?",
                (next_check_ns, checks, step_id),
            )

    def settle_owed(self, step_ids: Iterable[str]) -> None:
        """Owed LLM spans settled without an export: nothing to send (no trace came
        within the grace and Letta timed no LLM call), or a record that cannot be used."""
        with self.transaction() as db:
            db.executemany("DELETE FROM owed_llm WHERE step_id = ?", [(s,) for s in step_ids])

    def forget(self, *, step_ids: Iterable[str] = (), run_ids: Iterable[str] = ()) -> None:
        """Drop open entries whose object vanished from Letta (404)."""
        with self.transaction() as db:
            db.executemany(
                "DELETE FROM steps WHERE step_id = ? AND state = 'open'", [(s,) for s in step_ids]
            )
            db.executemany(
                "DELETE FROM runs WHERE run_id = ? AND state = 'open'", [(r,) for r in run_ids]
            )

    def mark_skipped(self, step_ids: Iterable[str], *, now_ns: int) -> None:
        """Steps Letta served in a shape we cannot use: logged, counted, not retried."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO steps (step_id, run_id, state, first_seen_ns, updated_ns) "
                "VALUES (?, NULL, 'skipped', ?, ?) ON CONFLICT(step_id) DO UPDATE SET "
                "state = 'skipped', updated_ns = excluded.updated_ns WHERE steps.state = 'open'",
                [(s, now_ns, now_ns) for s in step_ids],
            )

    # --- selection (filters and sampling) --------------------------------------------

    def run_selection_info(self, run_ids: Iterable[str]) -> dict[str, RunSelection]:
        """State, SampleRate and counts of exported and skipped steps of known runs."""
        ids = list(dict.fromkeys(run_ids))
        found: dict[str, RunSelection] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT r.run_id, r.state, r.sample_rate, "
                "COALESCE(SUM(s.state = 'exported'), 0), COALESCE(SUM(s.state = 'skipped'), 0) "
                "FROM runs r LEFT JOIN steps s ON s.run_id = r.run_id "
                f"WHERE r.run_id IN ({marks}) GROUP BY r.run_id",
                chunk,
            )
            for run_id, state, rate, exported, skipped in rows:
                found[str(run_id)] = RunSelection(str(state), rate, int(exported), int(skipped))
        return found

    def record_selection(
        self,
        *,
        now_ns: int,
        filtered: Iterable[tuple[str, str | None]] = (),
        sampled: Iterable[tuple[str, str | None]] = (),
        sampled_runs: Iterable[str] = (),
        filtered_runs: Iterable[str] = (),
        kept_runs: Mapping[str, int] | None = None,
        reopened_runs: Iterable[str] = (),
    ) -> None:
        """Settle what filters and sampling decided, in one transaction.

        Steps (id, run id) become ``filtered`` or ``sampled``; runs ``sampled`` or
        ``filtered`` (only while open); ``kept_runs`` pins the SampleRate a kept run's
        spans carry; ``reopened_runs`` go back to ``open`` with their sampled-out steps
        (a late failure arrived: the run is decided again, whole).
        """
        with self.transaction() as db:
            for run_id in reopened_runs:
                db.execute(
                    "UPDATE runs SET state = 'open', updated_ns = ? "
                    "WHERE run_id = ? AND state IN ('sampled', 'filtered')",
                    (now_ns, run_id),
                )
                db.execute(
                    "UPDATE steps SET state = 'open', updated_ns = ? "
                    "WHERE run_id = ? AND state = 'sampled'",
                    (now_ns, run_id),
                )
            for state, steps in (("filtered", filtered), ("sampled", sampled)):
                db.executemany(
                    "INSERT INTO steps (step_id, run_id, state, first_seen_ns, updated_ns) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(step_id) DO UPDATE SET "
                    "state = excluded.state, run_id = COALESCE(steps.run_id, excluded.run_id), "
                    "updated_ns = excluded.updated_ns WHERE steps.state = 'open'",
                    [(sid, rid, state, now_ns, now_ns) for sid, rid in steps],
                )
            for state, runs in (("sampled", sampled_runs), ("filtered", filtered_runs)):
                db.executemany(
                    "INSERT INTO runs (run_id, state, first_seen_ns, updated_ns) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                    "state = excluded.state, updated_ns = excluded.updated_ns "
                    "WHERE runs.state = 'open'",
                    [(rid, state, now_ns, now_ns) for rid in runs],
                )
            db.executemany(
                "INSERT INTO runs (run_id, state, first_seen_ns, updated_ns, sample_rate) "
                "VALUES (?, 'open', ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                "sample_rate = excluded.sample_rate",
                [(rid, now_ns, now_ns, rate) for rid, rate in (kept_runs or {}).items()],
            )

    def prune(self, *, older_than_ns: int) -> int:
        """Forget exported entries last touched before ``older_than_ns``; open ones stay."""
        with self.transaction() as db:
            # Exported steps of a still-open run stay: the runs fallback re-lists them.
            steps = db.execute(
                "DELETE FROM steps WHERE state != 'open' AND updated_ns < ? AND (run_id IS NULL "
                "OR run_id NOT IN (SELECT run_id FROM runs WHERE state = 'open'))",
                (older_than_ns,),
            ).rowcount
            runs = db.execute(
                "DELETE FROM runs WHERE state != 'open' AND updated_ns < ?", (older_than_ns,)
            ).rowcount
            db.execute("DELETE FROM trace_bytes WHERE updated_ns < ?", (older_than_ns,))
            # A safety net only: an owed span is settled within the enrichment grace;
            # one still here a day later (an export failing that long) is given up.
            owed = db.execute(
                "DELETE FROM owed_llm WHERE terminal_ns < ?", (older_than_ns,)
            ).rowcount
        return int(steps) + int(runs) + int(owed)

    # --- feedback counted (metrics) -------------------------------------------------

    def record_feedback(
        self, pairs: Iterable[tuple[str, str]], *, now_ns: int
    ) -> list[tuple[str, str]]:
        """Remember (step id, feedback) pairs; return those not already remembered.

        A step whose feedback changed comes back with its new value; the same value
        seen again (every listing repeats it) does not, also after a restart.
        """
        fresh: list[tuple[str, str]] = []
        with self.transaction() as db:
            for step_id, value in dict(pairs).items():
                row = db.execute(
                    "SELECT feedback FROM feedback WHERE step_id = ?", (step_id,)
                ).fetchone()
                if row is not None and row[0] == value:
                    continue
                db.execute(
                    "INSERT INTO feedback (step_id, feedback, seen_ns) VALUES (?, ?, ?) "
                    "ON CONFLICT(step_id) DO UPDATE SET feedback = excluded.feedback, "
                    "seen_ns = excluded.seen_ns",
                    (step_id, value, now_ns),
                )
                fresh.append((step_id, value))
        return fresh

    def prune_feedback(self, *, older_than_ns: int) -> int:
        with self.transaction() as db:
            removed = db.execute(
                "DELETE FROM feedback WHERE seen_ns < ?", (older_than_ns,)
            ).rowcount
        return int(removed)

    def trace_bytes(self, trace_ids: Iterable[str]) -> dict[str, int]:
        """Bytes already confirmed for each of these traces (absent: none yet)."""
        found: dict[str, int] = {}
        for chunk in _chunks(list(trace_ids), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT trace_id, bytes FROM trace_bytes WHERE trace_id IN ({marks})", chunk
            )
            found.update((str(tid), int(n)) for tid, n in rows)
        return found

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in ("steps", "runs"):
            for state, n in self._db.execute(f"SELECT state, COUNT(*) FROM {table} GROUP BY state"):
                out[f"{table}_{state}"] = int(n)
        (owed,) = self._db.execute("SELECT COUNT(*) FROM owed_llm").fetchone()
        out["llm_owed"] = int(owed)
        return out


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _set_exported(
    db: sqlite3.Connection, table: str, key: str, ids: list[str], now_ns: int
) -> None:
    """Mark rows exported, adding any the store does not have (an UPDATE first: every
    row is there in the daemon, and an upsert per row costs 40% more)."""
    updated = db.executemany(
        f"UPDATE {table} SET state = 'exported', updated_ns = ? WHERE {key} = ?",
        [(now_ns, i) for i in ids],
    ).rowcount
    if updated < len(ids):  # each id updates at most one row: one at least is missing
        db.executemany(  # (a step added here has no run_id: the column's NULL default)
            f"INSERT INTO {table} ({key}, state, first_seen_ns, updated_ns) "
            f"VALUES (?, 'exported', ?, ?) ON CONFLICT({key}) DO UPDATE SET "
            "state = 'exported', updated_ns = excluded.updated_ns",
            [(i, now_ns, now_ns) for i in ids],
        )
