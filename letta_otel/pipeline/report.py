"""What one cycle did: the counts the programs log, the metrics read and the loops act on.

Work outlives the cycle that scheduled it (:mod:`.workers`), so a report holds what
happened since the previous cycle's report was handed out: that cycle's discovery and
whatever the workers and the exporter finished meanwhile. Every piece adds to the
report current at the moment; a failed Letta request or an unexpected error is recorded
here (and logged) where it happens, and the object is tried again at a later cycle.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field, fields

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    discovery: str
    discovered: int = 0
    exported_steps: int = 0
    exported_runs: int = 0
    spans: int = 0
    batches: int = 0
    failed_batches: int = 0
    waiting: int = 0
    skipped: int = 0
    letta_errors: int = 0
    open_steps: int = 0
    open_runs: int = 0
    llm_owed: int = 0  # steps exported whose LLM span is still owed (its trace not written)
    # A span export failed and no export has succeeded since, with work waiting for it.
    export_failing: bool = False
    # Filters and sampling (letta_otel.selection): settled without being exported.
    filtered_steps: int = 0
    filtered_runs: int = 0
    sampled_out_steps: int = 0
    sampled_out_runs: int = 0
    held_steps: int = 0  # finished, waiting for their run's sampling decision
    newest_exported_ns: int | None = None
    more: bool = False  # discovery stopped at its page budget: poll again at once
    errors: list[str] = field(default_factory=list)

    def take(self) -> CycleReport:
        """What was recorded so far, handed out; this report starts again from zero
        (work still in flight goes on adding to it)."""
        taken = copy.copy(self)
        for f in fields(self):
            if f.name != "discovery":
                setattr(self, f.name, [] if f.name == "errors" else f.default)
        return taken

    @property
    def ok(self) -> bool:
        return self.failed_batches == 0 and self.letta_errors == 0 and not self.export_failing

    def letta_error(self, doing: str, exc: Exception) -> None:
        """A Letta request failed for good (a ``LettaError``): counted, logged, retried
        next cycle."""
        self.letta_errors += 1
        self.errors.append(f"{doing}: {exc}")
        log.warning("%s failed: %s", doing, exc)

    def unexpected_error(self, what: str, exc: Exception) -> None:
        """Fetching ``what`` raised something other than a LettaError: a bug met on odd
        data, or a transport error nobody foresaw. Reported here with its traceback (not
        left as a task exception nobody retrieves); the object stays open and is tried
        again next cycle, so nothing is lost if the cause was transient."""
        self.letta_errors += 1
        self.errors.append(f"fetching {what}: {type(exc).__name__}: {exc}")
        log.exception("fetching %s failed unexpectedly; retrying next cycle", what)


def summary_fields(report: CycleReport, seconds: float) -> dict[str, object]:
    """The cycle summary as JSON-log fields (steps seen/exported/pending, lag, errors)."""
    lag = None
    if report.newest_exported_ns:
        lag = round(max(0.0, time.time() - report.newest_exported_ns / 1e9), 3)
    return {
        "event": "cycle",
        "discovery": report.discovery,
        "steps_seen": report.discovered,
        "steps_exported": report.exported_steps,
        "runs_exported": report.exported_runs,
        "spans_exported": report.spans,
        "steps_pending": report.open_steps,
        "runs_pending": report.open_runs,
        "llm_spans_owed": report.llm_owed,
        "steps_waiting": report.waiting,
        "steps_skipped": report.skipped,
        "batches": report.batches,
        "failed_batches": report.failed_batches,
        "letta_errors": report.letta_errors,
        "lag_s": lag,
        "took_s": round(seconds, 3),
        "ok": report.ok,
    }


def summarize(report: CycleReport, seconds: float) -> str:
    lag = ""
    if report.newest_exported_ns:
        lag_s = time.time() - report.newest_exported_ns / 1e9
        lag = f" lag={lag_s:.1f}s"
    return (
        f"cycle via {report.discovery}: discovered={report.discovered} "
        f"exported_steps={report.exported_steps} exported_runs={report.exported_runs} "
        f"spans={report.spans} batches={report.batches} failed_batches={report.failed_batches} "
        f"waiting={report.waiting} open_steps={report.open_steps} open_runs={report.open_runs} "
        f"llm_owed={report.llm_owed} skipped={report.skipped} "
        f"letta_errors={report.letta_errors}{_selected(report)}{lag} "
        f"took={seconds:.2f}s"
    )


def _selected(report: CycleReport) -> str:
    """Filter and sampling counters, when there is anything to say."""
    counts = (
        report.filtered_steps,
        report.filtered_runs,
        report.sampled_out_steps,
        report.sampled_out_runs,
        report.held_steps,
    )
    if not any(counts):
        return ""
    return f" filtered={counts[0]}/{counts[1]} sampled_out={counts[2]}/{counts[3]} held={counts[4]}"
