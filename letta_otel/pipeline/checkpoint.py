"""The pipeline's one door to the state file: exactly the operations a cycle needs.

The SQLite store (:mod:`letta_otel.state`) can do more (meta keys, transactions); the
pipeline sees it only through :class:`Checkpoint`, and nothing else of letta-otel writes
it (the programs open and close it; ``import-linter`` keeps everyone else from importing
it, see ``pyproject.toml``). The order of the writes is what makes a restart lose
nothing:

1. ``record_discovered``: the found steps become ``open`` in the transaction that moves
   the discovery cursors;
2. ``forget``/``mark_skipped``/``record_selection``: what is settled without export
   (vanished from Letta, unusable, filtered or sampled out);
3. ``set_run_trace_ids``: an adopted trace id is pinned before the first span using it
   leaves, so a crash cannot split a run over two traces;
4. ``mark_exported``: after the backend confirmed a batch, with the bytes it added per
   trace (the trace budget), the LLM spans its steps still owe and the owed ones it
   carried, all in one transaction;
5. ``owe_later``/``settle_owed``: an owed LLM span's next look for its provider trace,
   or the end of the wait without anything to send;
6. ``prune``: settled entries older than the retention go.

The feedback counter (:mod:`letta_otel.feedback`) keeps its own table of feedback seen,
through its own narrower door (``FeedbackLedger``) that the program wires to the same
store; it never touches what the pipeline writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from letta_otel.mapping.timing import to_ns
from letta_otel.state import OpenStep, OwedLlm, RunSelection

log = logging.getLogger(__name__)

STATE_RETENTION = timedelta(hours=24)
PRUNE_EVERY = timedelta(minutes=10)


class Checkpoint(Protocol):
    # --- what discovery reads (letta.discovery.StateView) ---------------------------
    def get_meta(self, key: str) -> str | None: ...
    def run_state(self, run_id: str) -> str | None: ...
    def open_run_ids(self) -> list[str]: ...
    def runs_exported_since(self, since_ns: int) -> set[str]: ...
    def settled_step_ids(self, step_ids: Iterable[str]) -> set[str]: ...

    # --- open work ------------------------------------------------------------------
    def record_discovered(
        self,
        steps: Iterable[tuple[str, str | None, str | None]],
        *,
        now_ns: int,
        run_ids: Iterable[str] = (),
        meta: dict[str, str] | None = None,
    ) -> None: ...
    def open_steps(self) -> list[OpenStep]: ...
    def runs_with_open_steps(self, run_ids: Iterable[str]) -> set[str]: ...
    def counts(self) -> dict[str, int]: ...

    # --- settled without export -----------------------------------------------------
    def forget(self, *, step_ids: Iterable[str] = (), run_ids: Iterable[str] = ()) -> None: ...
    def mark_skipped(self, step_ids: Iterable[str], *, now_ns: int) -> None: ...
    def run_selection_info(self, run_ids: Iterable[str]) -> dict[str, RunSelection]: ...
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
    ) -> None: ...

    # --- export and commit ----------------------------------------------------------
    def run_trace_id(self, run_id: str) -> str | None: ...
    def set_run_trace_ids(self, pairs: Iterable[tuple[str, str]], *, now_ns: int) -> None: ...
    def trace_bytes(self, trace_ids: Iterable[str]) -> dict[str, int]: ...
    def mark_exported(
        self,
        *,
        step_ids: Iterable[str],
        run_ids: Iterable[str],
        now_ns: int,
        trace_bytes: Mapping[str, int] | None = None,
        owe: Iterable[OwedLlm] = (),
        paid: Iterable[str] = (),
    ) -> None: ...

    # --- LLM spans still owed -------------------------------------------------------
    def owed_llm(self, *, due_by_ns: int | None = None) -> list[OwedLlm]: ...
    def owe_later(self, step_id: str, *, next_check_ns: int, checks: int) -> None: ...
    def settle_owed(self, step_ids: Iterable[str]) -> None: ...

    # --- housekeeping ---------------------------------------------------------------
    def prune(self, *, older_than_ns: int) -> int: ...


class Pruner:
    """Forgets settled entries older than ``STATE_RETENTION``, at most once per
    ``PRUNE_EVERY`` (the end of a cycle asks every time)."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._last: datetime | None = None

    def maybe_prune(self, now: datetime) -> None:
        if self._last and now - self._last < PRUNE_EVERY:
            return
        self._last = now
        removed = self._checkpoint.prune(older_than_ns=to_ns(now - STATE_RETENTION))
        if removed:
            log.debug("pruned %d exported entries older than %s", removed, STATE_RETENTION)
