"""What the state store hands out, and the one error it raises."""

from __future__ import annotations

from dataclasses import dataclass


class StateError(Exception):
    """The state file cannot be used (locked by another daemon, unreadable, newer schema)."""


@dataclass(frozen=True)
class OpenStep:
    step_id: str
    run_id: str | None
    last_status: str | None
    first_seen_ns: int


@dataclass(frozen=True)
class OwedLlm:
    """A step exported without its LLM span, which is still owed (schema 4).

    ``record`` is what building the span later needs, as the pipeline wrote it (the
    store does not read it); ``trace_id`` the trace (hex) the step span joined, so the
    LLM span joins it too; ``terminal_ns`` when the step was seen terminal (the grace
    counts from it); ``next_check_ns`` when to look for the provider trace again, after
    ``checks`` looks that found none.
    """

    step_id: str
    run_id: str | None
    trace_id: str
    record: bytes
    terminal_ns: int
    next_check_ns: int
    checks: int = 0


@dataclass(frozen=True)
class OpenRun:
    run_id: str
    first_seen_ns: int


@dataclass(frozen=True)
class RunSelection:
    """What filters and sampling need to know about a run already in the state."""

    state: str
    sample_rate: int | None
    exported_steps: int
    skipped_steps: int

    @property
    def kept_steps(self) -> int:
        """Steps exported or skipped (unusable data): the run's root span is due."""
        return self.exported_steps + self.skipped_steps
