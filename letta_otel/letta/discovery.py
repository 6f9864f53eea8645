"""Which steps are new: the ``/v1/steps/`` cursor, or the runs fallback.

Both strategies return what they found plus the cursor values to store. The daemon
stores those in the same transaction that records the found steps as open, so a
cursor never moves past a step the state does not know about.

* ``StepsDiscovery`` pages ``GET /v1/steps/?order=asc&after=<cursor>``; with no
  cursor yet it starts at ``now - initial_lookback``.
* ``RunsDiscovery`` serves servers whose ``/v1/steps/`` is broken (HTTP 400 on
  self-hosted Letta 0.12-0.16.8): it lists runs newest first down to a watermark,
  then reads each new or unfinished run's steps from ``/v1/runs/{id}/steps``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from letta_otel.letta.client import LettaClient, LettaNotFound, StepsRouteBroken
from letta_otel.letta.models import Run, Step

log = logging.getLogger(__name__)

STEPS_PAGE = 200
RUNS_PAGE = 100
RUN_STEPS_PAGE = 100
# Runs are re-listed this far below the newest one seen on every cycle, and the
# whole re-read window below it once per REREAD_EVERY, so runs that commit late or
# finish out of order are still found (duplicates are dropped by id).
RUNS_RELIST_OVERLAP = timedelta(minutes=2)
# Steps listing: once per REREAD_EVERY the last ``reread_window`` is listed again, for
# steps that became visible after newer ones were read (late commits).
REREAD_EVERY = timedelta(seconds=60)
# Runs fallback: the re-read also lists the steps of runs exported this recently, for
# a step that commits after its run finished. Older runs are not asked again, which
# keeps the cost to a few requests per exported run.
LATE_STEP_HORIZON = timedelta(minutes=5)
DEFAULT_REREAD_WINDOW = timedelta(minutes=15)
# The re-read sweeps the whole window (keeping only unsettled steps), up to this many
# pages: 100,000 steps per window, a fleet doing 110 steps/s with the default 15 min.
REREAD_MAX_PAGES = 500
# When the steps cursor vanished (its step was deleted), restart this far before it.
CURSOR_LOSS_OVERLAP = timedelta(minutes=10)

META_STEPS_CURSOR = "steps.cursor"
META_STEPS_CURSOR_SEEN = "steps.cursor_seen_at"
META_RUNS_WATERMARK = "runs.watermark"
META_LAST_REREAD = "reread.last"


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        log.warning("ignoring unreadable time %r in the state file", text)
        return None


def _reread_due(state: StateView, now: datetime) -> bool:
    last = _parse_time(state.get_meta(META_LAST_REREAD))
    return last is None or now - last >= REREAD_EVERY


@dataclass
class Discovered:
    steps: list[Step] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    # The cursor listing stopped at its page budget with full pages: there is more.
    more: bool = False
    pages: int = 0


class StateView(Protocol):
    def get_meta(self, key: str) -> str | None: ...
    def run_state(self, run_id: str) -> str | None: ...
    def open_run_ids(self) -> list[str]: ...
    def runs_exported_since(self, since_ns: int) -> set[str]: ...
    def settled_step_ids(self, step_ids: Iterable[str]) -> set[str]: ...


class Discovery(Protocol):
    name: str

    async def discover(self, state: StateView, now: datetime) -> Discovered: ...


@dataclass
class StepsDiscovery:
    client: LettaClient
    initial_lookback: timedelta
    max_pages: int | None = 50
    extra_params: dict[str, Any] = field(default_factory=dict)
    reread_window: timedelta = DEFAULT_REREAD_WINDOW
    name: str = "steps"

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        found = Discovered()
        cursor = state.get_meta(META_STEPS_CURSOR)
        try:
            last = await self._read(found, after=cursor, start=now - self.initial_lookback)
        except LettaNotFound:
            if cursor is None:
                raise
            start = _cursor_fallback(state, now)
            log.warning(
                "steps cursor %s no longer exists on the server; re-reading from %s",
                cursor,
                start.isoformat(),
            )
            last = await self._read(found, after=None, start=start)
        if last is not None:
            found.meta[META_STEPS_CURSOR] = last
            found.meta[META_STEPS_CURSOR_SEEN] = now.isoformat()
        if cursor is not None and not found.more and _reread_due(state, now):
            # Caught up: sweep the window up to where the cursor now stands, keeping
            # only unsettled steps page by page (late commits), so it costs listing
            # requests but no memory. While a backlog is read it waits (found.more).
            await self._read(
                found,
                after=None,
                start=now - self.reread_window,
                max_pages=REREAD_MAX_PAGES,
                drop=state.settled_step_ids,
                stop_at=last or cursor,
            )
            found.meta[META_LAST_REREAD] = now.isoformat()
            found.more = False
        return found

    async def _read(
        self,
        found: Discovered,
        *,
        after: str | None,
        start: datetime,
        max_pages: int | None = None,
        drop: Callable[[Iterable[str]], set[str]] | None = None,
        stop_at: str | None = None,
    ) -> str | None:
        """Page forward from ``after`` (or from ``start``); the id of the last step read.

        ``drop`` names steps not to keep (already settled ones, for the re-read);
        reading ends after the step ``stop_at``.
        """
        pages = self.max_pages if max_pages is None else max_pages
        budget = None if pages is None else found.pages + pages
        last = None
        while budget is None or found.pages < budget:
            steps, ids = await self.client.list_steps(
                after=after,
                start_date=None if after else start,
                limit=STEPS_PAGE,
                extra=self.extra_params,
            )
            found.pages += 1
            if drop is not None:
                settled = drop(s.id for s in steps)
                steps = [s for s in steps if s.id not in settled]
            found.steps.extend(steps)
            if ids:
                last = after = ids[-1]
            if len(ids) < STEPS_PAGE or (stop_at is not None and stop_at in ids):
                break
        else:
            found.more = True
        return last


def _cursor_fallback(state: StateView, now: datetime) -> datetime:
    return (_parse_time(state.get_meta(META_STEPS_CURSOR_SEEN)) or now) - CURSOR_LOSS_OVERLAP


PageParam = Literal["before", "after"]


@dataclass
class RunsDiscovery:
    client: LettaClient
    initial_lookback: timedelta
    max_pages: int | None = 50
    run_filters: dict[str, Any] = field(default_factory=dict)
    reread_window: timedelta = DEFAULT_REREAD_WINDOW
    name: str = "runs"
    # Client-side filter on listed runs (e.g. several agent ids): others' steps are not read.
    keep_run: Callable[[Run], bool] | None = None
    # Which cursor parameter yields the next (older) page of a newest-first listing.
    # Letta 0.16.8 answers ``before`` where its docs say ``after``; we find out.
    _next_param: PageParam | None = None

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        found = Discovered()
        reread = _reread_due(state, now)
        floor = self._floor(state, now, self.reread_window if reread else RUNS_RELIST_OVERLAP)
        if reread:
            found.meta[META_LAST_REREAD] = now.isoformat()
        newest: datetime | None = None
        listed: dict[str, Run] = {}
        async for run in self.runs_newest_first(floor, found):
            listed[run.id] = run
            if run.created_at and (newest is None or run.created_at > newest):
                newest = run.created_at
        stored = _parse_time(state.get_meta(META_RUNS_WATERMARK))
        if newest is not None and (stored is None or newest > stored):
            found.meta[META_RUNS_WATERMARK] = newest.isoformat()
        elif stored is None:
            found.meta[META_RUNS_WATERMARK] = floor.isoformat()

        recent = state.runs_exported_since(_ns(now - LATE_STEP_HORIZON)) if reread else set[str]()
        to_read = [
            r
            for r in listed.values()
            if (r.id in recent or state.run_state(r.id) in (None, "open"))
            and (self.keep_run is None or self.keep_run(r))
        ]
        open_ids = [rid for rid in state.open_run_ids() if rid not in listed]
        found.runs.update({r.id: r for r in to_read})
        for run_id in [r.id for r in to_read] + open_ids:
            found.steps.extend(await self.run_steps(run_id, found))
        return found

    def _floor(self, state: StateView, now: datetime, overlap: timedelta) -> datetime:
        mark = _parse_time(state.get_meta(META_RUNS_WATERMARK))
        return now - self.initial_lookback if mark is None else mark - overlap

    async def runs_newest_first(self, floor: datetime, found: Discovered) -> Any:
        """Yield runs newest first until one is older than ``floor`` (counting pages in
        ``found``; the backfill lists a range with it too)."""
        last: Run | None = None
        seen: set[str] = set()
        while self.max_pages is None or found.pages < self.max_pages:
            page = await self._page(last, seen)
            found.pages += 1
            fresh = [r for r in page if r.id not in seen]
            for run in fresh:
                seen.add(run.id)
                created = run.created_at or datetime.now(UTC)
                if created < floor:
                    return
                yield run
            if len(page) < RUNS_PAGE or not fresh:
                return
            last = fresh[-1]

    async def _page(self, last: Run | None, seen: set[str]) -> list[Run]:
        params: dict[str, Any] = {"order": "desc", "limit": RUNS_PAGE, **self.run_filters}
        if last is None:
            return (await self.client.list_runs(params))[0]
        candidates: Iterable[PageParam] = (
            (self._next_param,) if self._next_param else ("before", "after")
        )
        for param in candidates:
            runs = (await self.client.list_runs({**params, param: last.id}))[0]
            if _is_older_page(runs, last, seen):
                if self._next_param is None:
                    log.debug("GET /v1/runs/ pages older runs with %r", param)
                self._next_param = param
                return runs
        return []

    async def run_steps(self, run_id: str, found: Discovered) -> list[Step]:
        """Every step of the run, page by page (counted in ``found``)."""
        steps: list[Step] = []
        after: str | None = None
        while True:
            page, ids = await self.client.list_run_steps(run_id, after=after, limit=RUN_STEPS_PAGE)
            found.pages += 1
            steps.extend(page)
            if len(ids) < RUN_STEPS_PAGE:
                return steps
            after = ids[-1]


def _is_older_page(runs: list[Run], last: Run, seen: set[str]) -> bool:
    """A next page of a newest-first listing: nothing seen, nothing newer than ``last``."""
    if not runs:
        return True
    if any(r.id in seen for r in runs):
        return False
    if last.created_at is None:
        return True
    return all(r.created_at is None or r.created_at <= last.created_at for r in runs)


async def choose_discovery(
    client: LettaClient,
    mode: Literal["auto", "steps", "runs"],
    make_steps: Callable[[], StepsDiscovery],
    make_runs: Callable[[], RunsDiscovery],
    probe: Callable[[], Awaitable[object]] | None = None,
) -> Discovery:
    """``auto`` probes ``GET /v1/steps/`` once and falls back to runs when it is broken."""
    if mode == "steps":
        return make_steps()
    if mode == "runs":
        return make_runs()
    try:
        await (probe() if probe else client.list_steps(limit=1))
    except StepsRouteBroken:
        log.info(
            "GET /v1/steps/ is broken on this server (HTTP 400, a known bug of self-hosted "
            "Letta 0.12-0.16.8); discovering steps through /v1/runs/ instead"
        )
        return make_runs()
    except LettaNotFound:
        log.info("GET /v1/steps/ does not exist on this server; discovering through /v1/runs/")
        return make_runs()
    return make_steps()
