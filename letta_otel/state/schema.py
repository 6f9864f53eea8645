"""The state file's tables, and the migrations that bring an older file up to date.

``meta.schema_version`` says which version wrote a file; an older file is migrated when
it is opened (:data:`MIGRATIONS`), a newer one is refused (``StateStore``).
"""

from __future__ import annotations

SCHEMA_VERSION = 4

STEP_STATES = ("open", "exported", "skipped", "filtered", "sampled")
RUN_STATES = ("open", "exported", "filtered", "sampled")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK as ``=`` terms joined by OR. SQLite (3.40) codes ``IN (...)`` in a CHECK
    by building a temporary index of the list for every row written; that made up
    about a third of the state file's CPU per step (schema 3 dropped it)."""
    return " OR ".join(f"{column} = '{v}'" for v in values)


# Step and run states. ``filtered`` (the operator's filters drop it) and ``sampled``
# (sampled out, see letta_otel.selection) are settled like ``exported``: never fetched
# again, pruned after the retention. A run is ``filtered`` when none of its steps is kept:
# its root span is not sent.
_STEPS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{name}} (
    step_id TEXT PRIMARY KEY,
    run_id TEXT,
    state TEXT NOT NULL CHECK ({_one_of("state", STEP_STATES)}),
    last_status TEXT,
    first_seen_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
"""
_RUNS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{name}} (
    run_id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK ({_one_of("state", RUN_STATES)}),
    trace_id TEXT,
    first_seen_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL,
    sample_rate INTEGER
);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, first_seen_ns);
-- Bytes confirmed per trace, for LETTA_OTEL_MAX_TRACE_BYTES (a trace spans many cycles).
CREATE TABLE IF NOT EXISTS trace_bytes (
    trace_id TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS steps_state ON steps (state, first_seen_ns);
CREATE INDEX IF NOT EXISTS steps_run ON steps (run_id);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, first_seen_ns);
CREATE TABLE IF NOT EXISTS feedback (
    step_id TEXT PRIMARY KEY,
    feedback TEXT NOT NULL,
    seen_ns INTEGER NOT NULL
);
"""
# Schema 4: LLM spans still owed. A step whose provider trace was not written yet is
# exported at once without its ``chat`` span; this row says that span is owed, with what
# the mapping needs to build it later (``record``: the pipeline's JSON of the step, its
# metrics and run), the trace id its step span joined, when the step was seen terminal
# and when to look for the trace next. The row goes in the commit of the step span and
# leaves in the commit of the LLM span (or when the trace was given up on), so a restart
# neither loses nor doubles the span.
_OWED_TABLE = """
CREATE TABLE IF NOT EXISTS owed_llm (
    step_id TEXT PRIMARY KEY,
    run_id TEXT,
    trace_id TEXT NOT NULL,
    record BLOB NOT NULL,
    terminal_ns INTEGER NOT NULL,
    next_check_ns INTEGER NOT NULL,
    checks INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS owed_llm_due ON owed_llm (next_check_ns);
"""
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    + _STEPS_TABLE.format(name="steps")
    + _RUNS_TABLE.format(name="runs")
    + _OWED_TABLE
)
# Older files get the current CHECK constraints by rebuilding the tables, the only way
# SQLite changes one (they hold at most a day of entries; the indexes are made again
# after). v1 -> v2 added two states and runs.sample_rate; v2 -> v3 only rewrote the CHECKs;
# v3 -> v4 added the owed_llm table (created by SCHEMA on opening, so any older file has it).
_STEP_COLUMNS = "step_id, run_id, state, last_status, first_seen_ns, updated_ns"
_RUN_COLUMNS_V1 = "run_id, state, trace_id, first_seen_ns, updated_ns"


def _rebuild(table: str, create: str, columns: str) -> str:
    """Statements that remake ``table`` from its ``create`` template, keeping ``columns``."""
    return (
        create.format(name=f"{table}_new")
        + f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table};"
        f"DROP TABLE {table}; ALTER TABLE {table}_new RENAME TO {table};"
    )


MIGRATIONS = {
    1: _rebuild("steps", _STEPS_TABLE, _STEP_COLUMNS)
    + _rebuild("runs", _RUNS_TABLE, _RUN_COLUMNS_V1),
    2: _rebuild("steps", _STEPS_TABLE, _STEP_COLUMNS)
    + _rebuild("runs", _RUNS_TABLE, f"{_RUN_COLUMNS_V1}, sample_rate"),
    3: _OWED_TABLE,
}
