"""Feedback given to steps after they ran: each (step, value) is counted once.

Letta lets a user mark a step ``positive`` or ``negative`` at any time after it ran.
Two sources feed :class:`FeedbackTracker`:

* every step the bridge reads anyway (discovery listings and re-reads, exported
  steps) — this is all the runs fallback can see, so there feedback is counted only
  if it exists when a step is read (before export, or while its run is re-read);
* on the working steps route, :class:`FeedbackPoller` lists
  ``GET /v1/steps/?has_feedback=true`` for steps created in the last
  :data:`FEEDBACK_WINDOW`, once per :data:`FEEDBACK_EVERY`, newest first and at most
  :data:`FEEDBACK_PAGES` pages. Feedback given later than that window after the step
  ran, or beyond that many steps with feedback per window, is not counted.

Counted pairs live in the state file, so a restart does not count them again; a
step whose feedback changes is counted again under its new value (counters only
grow, so a flip shows as one positive and one negative).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from letta_otel.letta.client import LettaClient
from letta_otel.letta.models import Step
from letta_otel.mapping.metrics import FEEDBACK_VALUES

log = logging.getLogger(__name__)

FEEDBACK_EVERY = timedelta(seconds=60)
FEEDBACK_WINDOW = timedelta(hours=24)
FEEDBACK_PAGE = 200
FEEDBACK_PAGES = 10
# Counted pairs are kept well past the listing window, or a step still inside the
# window (or a long re-read window) would be counted again once forgotten.
KEEP_COUNTED = timedelta(hours=48)
PRUNE_EVERY_NS = 600 * 1_000_000_000


class FeedbackLedger(Protocol):
    """The feedback pairs already counted: the tracker's own narrow door to the state
    file (the program wires the store in; the pipeline's writes are elsewhere)."""

    def record_feedback(
        self, pairs: Iterable[tuple[str, str]], *, now_ns: int
    ) -> list[tuple[str, str]]: ...

    def prune_feedback(self, *, older_than_ns: int) -> int: ...


class FeedbackTracker:
    def __init__(
        self,
        state: FeedbackLedger,
        record: Callable[[Step], None],
        *,
        keep: timedelta = KEEP_COUNTED,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._state = state
        self._record = record
        self._keep_ns = int(keep.total_seconds() * 1e9)
        self._clock_ns = clock_ns
        self._last_prune_ns = 0

    def observe(self, steps: Iterable[Step]) -> int:
        """Count the feedback of ``steps`` not counted before; returns how many."""
        latest = {s.id: s for s in steps if s.feedback in FEEDBACK_VALUES}
        if not latest:
            return 0
        now_ns = self._clock_ns()
        fresh = self._state.record_feedback(
            ((sid, str(s.feedback)) for sid, s in latest.items()), now_ns=now_ns
        )
        for step_id, _ in fresh:
            self._record(latest[step_id])
        if now_ns - self._last_prune_ns >= PRUNE_EVERY_NS:
            self._last_prune_ns = now_ns
            self._state.prune_feedback(older_than_ns=now_ns - self._keep_ns)
        return len(fresh)


class FeedbackPoller:
    """The ``has_feedback=true`` listing; only for the working ``/v1/steps/`` route."""

    def __init__(self, client: LettaClient, tracker: FeedbackTracker) -> None:
        self._client = client
        self._tracker = tracker
        self._last: datetime | None = None
        self._warned_full = False

    async def maybe_poll(self, now: datetime) -> int:
        """List recent steps with feedback if due; returns how many new pairs were counted.

        Raises ``LettaError`` like any Letta request; the caller logs it and carries on.
        """
        if self._last is not None and now - self._last < FEEDBACK_EVERY:
            return 0
        self._last = now
        found: list[Step] = []
        after: str | None = None
        for _ in range(FEEDBACK_PAGES):
            steps, ids = await self._client.list_steps(
                after=after,
                start_date=now - FEEDBACK_WINDOW,
                limit=FEEDBACK_PAGE,
                order="desc",
                extra={"has_feedback": True},
            )
            found.extend(steps)
            if len(ids) < FEEDBACK_PAGE:
                break
            after = ids[-1]
        else:
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "more than %d steps with feedback in the last %s; the oldest are not "
                    "counted in letta.feedback",
                    FEEDBACK_PAGE * FEEDBACK_PAGES,
                    FEEDBACK_WINDOW,
                )
        return self._tracker.observe(found)
