"""Which steps are new: the ``/v1/steps/`` cursor, or the runs fallback.

Both strategies return what they found plus the cursor values to store. The daemon
stores those in the same transaction that records the found steps as open, so a
cursor never moves past a step the state does not know about.

* ``StepsDiscovery`` pages ``GET /v1/steps/?order=asc&after=<cursor>``; with no
  cursor yet it starts at ``now - initial_lookback``. Once caught up, every cycle lists
  ``start_date=now - recent_window`` instead: one listing that holds both what is new
  and the recent past behind the cursor, so a step committed late (visible seconds
  after steps created after it were listed) is found at the next cycle, and open steps
  get their current view without a read by id (see :meth:`StepsDiscovery.discover`).
* ``RunsDiscovery`` serves servers whose ``/v1/steps/`` is broken (HTTP 400 on
  self-hosted Letta 0.12-0.16.8): it lists runs newest first down to a watermark,
  then reads the steps (``/v1/runs/{id}/steps``) of each new run, of each run still
  running, of each run once when it turned terminal, and of each finished run a few
  times more over the following minutes (late commits; ``LATE_RELISTS``).

Both return the current view of every unsettled step they listed, new or already open:
the pipeline reads by id only the open steps no listing refreshed.
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
# How far behind "now" every cycle lists again once caught up: late commits newer than
# this are found at the next cycle. Letta's are seconds (the Letta-like workload: 3-10 s
# after the step was created); 30 s leaves room for a poll interval and clock skew.
# Anything later is still found, by the once-a-minute re-read of ``reread_window``: this
# changes how soon, never whether, which is why it is not a setting.
RECENT_WINDOW = timedelta(seconds=30)
# Pages the recent window may take per cycle: 5,000 steps, 166 steps/s over 30 s. Past
# that the window shrinks for the next cycles (halved each time it does not fit, grown
# back when it fits twice over), so the listing still reaches the cursor: late commits
# older than the shrunk window wait for the once-a-minute re-read.
RECENT_MAX_PAGES = 25
# Runs are re-listed this far below the newest one seen on every cycle (and the whole
# re-read window below it once per REREAD_EVERY), so runs that commit late are found at
# the next cycle (duplicates are dropped by id): 2 pages a cycle at 1 run/s.
RUNS_RELIST_OVERLAP = timedelta(minutes=2)
# Steps listing: once per REREAD_EVERY the last ``reread_window`` is listed again, for
# steps that became visible after newer ones were read (late commits).
REREAD_EVERY = timedelta(seconds=60)
# Runs fallback: a finished run's steps are listed again until this long after it ended,
# for a step that commits after its run finished. Older runs are not asked again, which
# keeps the cost to a few requests per exported run.
LATE_STEP_HORIZON = timedelta(minutes=5)
# ... at these times after the cycle that first saw the run terminal: late commits of
# seconds (Letta's) are found within seconds, rarer later ones within a minute or two.
# The once-a-minute re-read lists the steps of the runs this process did not see finish
# (exported before a restart) and were exported within LATE_STEP_HORIZON.
LATE_RELISTS = (
    timedelta(seconds=4),
    timedelta(seconds=15),
    timedelta(minutes=1),
    LATE_STEP_HORIZON,
)
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
class _Listing:
    """What one paged read saw."""

    last: str | None = None  # the id of the last step listed (settled or not)
    ended: bool = False  # a short page: nothing more to list
    passed: bool = False  # the listing held the step it was asked to watch for


@dataclass
class StepsDiscovery:
    client: LettaClient
    initial_lookback: timedelta
    max_pages: int | None = 50
    extra_params: dict[str, Any] = field(default_factory=dict)
    reread_window: timedelta = DEFAULT_REREAD_WINDOW
    name: str = "steps"
    recent_window: timedelta = RECENT_WINDOW
    recent_max_pages: int = RECENT_MAX_PAGES
    # In memory (a restart reads forward from the stored cursor first): whether the
    # cursor step is recent enough for the next cycle to list the recent window instead
    # of reading forward, and the window that fits the page budget (None: the default).
    _use_window: bool = False
    _window: timedelta | None = None

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        """New steps, and the current view of the unsettled ones of the recent past.

        Behind (a backlog, a restart, a quiet spell): page forward from the cursor.
        Otherwise list from ``now - recent_window`` to the end, keeping what is not
        settled (late commits, open steps, new steps). When the cursor step is in that
        listing, everything after it is too: the one listing is also the forward read,
        and no step can be passed over. When it is not (no step for longer than the
        window, a window cut short by its page budget, clocks apart), the forward read
        from the cursor follows, and the next cycles read forward only until a new step
        moves the cursor: a step committed late behind a cursor older than the window is
        older than the window too, which the once-a-minute re-read is for.
        """
        found = Discovered()
        cursor = state.get_meta(META_STEPS_CURSOR)
        recent = None
        if cursor is not None and self._use_window and self._cursor_may_be_in_window(state, now):
            recent = await self._recent(found, state, now, cursor)
        if recent is not None and recent.passed:
            last = recent.last  # found.more: the budget ran out after the cursor
        else:
            found.more = False
            last = await self._forward(found, state, now, cursor)
        if last is not None:
            found.meta[META_STEPS_CURSOR] = last
            found.meta[META_STEPS_CURSOR_SEEN] = now.isoformat()
        moved = last is not None and last != cursor
        self._use_window = not found.more and (moved or (recent is not None and recent.passed))
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

    def _cursor_may_be_in_window(self, state: StateView, now: datetime) -> bool:
        """Whether the cursor was recorded within the recent window. When it was not (a poll
        interval or a back-off longer than the window), its step is older than the window
        too: the listing could not reach it, and the forward read that would follow lists
        everything the window holds anyway."""
        seen = _parse_time(state.get_meta(META_STEPS_CURSOR_SEEN))
        return seen is None or now - seen < (self._window or self.recent_window)

    async def _forward(
        self, found: Discovered, state: StateView, now: datetime, cursor: str | None
    ) -> str | None:
        try:
            return (await self._read(found, after=cursor, start=now - self.initial_lookback)).last
        except LettaNotFound:
            if cursor is None:
                raise
            start = _cursor_fallback(state, now)
            log.warning(
                "steps cursor %s no longer exists on the server; re-reading from %s",
                cursor,
                start.isoformat(),
            )
            return (await self._read(found, after=None, start=start)).last

    async def _recent(
        self, found: Discovered, state: StateView, now: datetime, cursor: str
    ) -> _Listing:
        """List ``now - window`` to the end (or the page budget), keeping unsettled steps;
        halve the window for the next cycles when the budget ran out before the cursor,
        grow it back when it fits twice over."""
        window = self._window or self.recent_window
        before = found.pages
        listing = await self._read(
            found,
            after=None,
            start=now - window,
            max_pages=self.recent_max_pages,
            drop=state.settled_step_ids,
            watch=cursor,
        )
        if not listing.ended and not listing.passed:
            self._window = window / 2
            log.warning(
                "more than %d steps in the last %.1f s: each cycle now lists only the last "
                "%.1f s again (steps committed later than that are found by the "
                "once-a-minute re-read)",
                self.recent_max_pages * STEPS_PAGE,
                window.total_seconds(),
                self._window.total_seconds(),
            )
        elif window < self.recent_window and 2 * (found.pages - before) <= self.recent_max_pages:
            self._window = min(2 * window, self.recent_window)
        return listing

    async def _read(
        self,
        found: Discovered,
        *,
        after: str | None,
        start: datetime,
        max_pages: int | None = None,
        drop: Callable[[Iterable[str]], set[str]] | None = None,
        stop_at: str | None = None,
        watch: str | None = None,
    ) -> _Listing:
        """Page forward from ``after`` (or from ``start``).

        ``drop`` names steps not to keep (already settled ones, for the re-reads);
        reading ends after the step ``stop_at``; ``watch``: a step whose presence the
        result tells (``passed``).
        """
        pages = self.max_pages if max_pages is None else max_pages
        budget = None if pages is None else found.pages + pages
        listing = _Listing()
        while budget is None or found.pages < budget:
            steps, ids = await self.client.list_steps(
                after=after,
                start_date=None if after else start,
                limit=STEPS_PAGE,
                extra=self.extra_params,
            )
            found.pages += 1
            if watch is not None and not listing.passed:
                listing.passed = watch in ids
            if drop is not None:
                settled = drop(s.id for s in steps)
                steps = [s for s in steps if s.id not in settled]
            found.steps.extend(steps)
            if ids:
                listing.last = after = ids[-1]
            if len(ids) < STEPS_PAGE:
                listing.ended = True
                break
            if stop_at is not None and stop_at in ids:
                break
        else:
            found.more = True
        return listing


def _cursor_fallback(state: StateView, now: datetime) -> datetime:
    return (_parse_time(state.get_meta(META_STEPS_CURSOR_SEEN)) or now) - CURSOR_LOSS_OVERLAP


PageParam = Literal["before", "after"]


@dataclass
class RunPager:
    """``GET /v1/runs/`` newest first, one page after another.

    Which cursor parameter yields the next (older) page is found out on first use and
    kept: Letta 0.16.8 answers ``before`` where its docs say ``after``.
    """

    client: LettaClient
    params: dict[str, Any] = field(default_factory=dict)
    next_param: PageParam | None = None

    async def page(self, last: Run | None, seen: set[str]) -> list[Run]:
        """The first page (``last`` None), or the one after ``last`` (none of ``seen``)."""
        params: dict[str, Any] = {"order": "desc", "limit": RUNS_PAGE, **self.params}
        if last is None:
            return (await self.client.list_runs(params))[0]
        candidates: Iterable[PageParam] = (
            (self.next_param,) if self.next_param else ("before", "after")
        )
        for param in candidates:
            runs = (await self.client.list_runs({**params, param: last.id}))[0]
            if _is_older_page(runs, last, seen):
                if self.next_param is None:
                    log.debug("GET /v1/runs/ pages older runs with %r", param)
                self.next_param = param
                return runs
        return []


@dataclass(frozen=True)
class _Finished:
    """A run seen terminal: when first, and how many of ``LATE_RELISTS`` were done."""

    seen: datetime
    done: int = 0


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
    relist_overlap: timedelta = RUNS_RELIST_OVERLAP
    late_relists: tuple[timedelta, ...] = LATE_RELISTS
    _pager: RunPager | None = None
    # In memory: the runs seen terminal lately whose steps are listed again (late
    # commits); a restart leaves them to the once-a-minute re-read.
    _finished: dict[str, _Finished] = field(default_factory=dict)

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        """Runs newest first down to the watermark (less ``relist_overlap``; less the
        re-read window once a minute), the whole last page included; then the steps of
        the runs that may have changed (:meth:`_wants_steps`), and of our open runs the
        listing did not bring."""
        found = Discovered()
        reread = _reread_due(state, now)
        floor = self._floor(state, now, self.reread_window if reread else self.relist_overlap)
        if reread:
            found.meta[META_LAST_REREAD] = now.isoformat()
        newest: datetime | None = None
        listed: dict[str, Run] = {}
        below: list[Run] = []
        async for run in self.runs_newest_first(floor, found, below):
            listed[run.id] = run
            if run.created_at and (newest is None or run.created_at > newest):
                newest = run.created_at
        stored = _parse_time(state.get_meta(META_RUNS_WATERMARK))
        if newest is not None and (stored is None or newest > stored):
            found.meta[META_RUNS_WATERMARK] = newest.isoformat()
        elif stored is None:
            found.meta[META_RUNS_WATERMARK] = floor.isoformat()
        # The rest of the last page costs nothing: the status of our open runs on it is
        # as good (runs not recorded yet are older than the floor: not ours to read).
        listed.update({r.id: r for r in below if state.run_state(r.id) == "open"})

        finished = dict(self._finished)
        # Runs seen finishing by this process are re-listed on their own schedule.
        recent = (
            state.runs_exported_since(_ns(now - LATE_STEP_HORIZON)) - finished.keys()
            if reread
            else set[str]()
        )
        to_read: list[str] = []
        for run in listed.values():
            if self.keep_run is not None and not self.keep_run(run):
                continue
            run_state = state.run_state(run.id)
            if run_state in (None, "open"):
                found.runs[run.id] = run  # the pipeline needs no read of it by id
            try:
                wanted = self._wants_steps(run, run_state, now, finished) or run.id in recent
            except Exception:
                # A bug about one run must not stop discovery, nor lose the run: its
                # steps are read as they were before this decision existed.
                log.exception("cannot tell whether run %s changed; reading its steps", run.id)
                wanted = True
            if wanted:
                to_read.append(run.id)
        # Finished runs the listing no longer brings (older than its floor) still get
        # their late re-lists; so do our open runs it did not bring.
        to_read += [
            rid for rid in list(finished) if rid not in listed and self._due(rid, now, finished)
        ]
        to_read += [rid for rid in state.open_run_ids() if rid not in listed and rid not in to_read]
        for run_id in to_read:
            found.steps.extend(await self.run_steps(run_id, found))
        horizon = max(self.late_relists, default=timedelta(0)) + RECENT_WINDOW
        self._finished = {
            k: v
            for k, v in finished.items()
            if v.done < len(self.late_relists) and now - v.seen <= horizon
        }
        return found

    def _wants_steps(
        self, run: Run, run_state: str | None, now: datetime, finished: dict[str, _Finished]
    ) -> bool:
        """Whether the run's steps may have changed since we last listed them: a run we
        have recorded nothing of, one still running, one just seen terminal (its final
        step views), or a finished one whose next late re-list is due (a step committed
        after its run ended)."""
        if not run.is_terminal:
            finished.pop(run.id, None)
            return run_state in (None, "open")
        if run.id not in finished:
            if run_state not in (None, "open"):
                return False  # settled before this process saw it terminal
            finished[run.id] = _Finished(now)
            return True
        due = self._due(run.id, now, finished)
        return due or run_state is None  # None: nothing of it recorded yet (no step yet)

    def _due(self, run_id: str, now: datetime, finished: dict[str, _Finished]) -> bool:
        """Whether the finished run's next late re-list is due (counted as done)."""
        mark = finished[run_id]
        done = mark.done
        # One re-list however many fell due (a long cycle); the next one counts on.
        while done < len(self.late_relists) and now - mark.seen >= self.late_relists[done]:
            done += 1
        finished[run_id] = _Finished(mark.seen, done)
        return done > mark.done

    def _floor(self, state: StateView, now: datetime, overlap: timedelta) -> datetime:
        mark = _parse_time(state.get_meta(META_RUNS_WATERMARK))
        return now - self.initial_lookback if mark is None else mark - overlap

    async def runs_newest_first(
        self, floor: datetime, found: Discovered, below: list[Run] | None = None
    ) -> Any:
        """Yield runs newest first until one is older than ``floor`` (counting pages in
        ``found``; the backfill lists a range with it too). ``below`` receives the runs
        of the last page that were older than ``floor``."""
        last: Run | None = None
        seen: set[str] = set()
        pager = self._runs_pager()
        while self.max_pages is None or found.pages < self.max_pages:
            page = await pager.page(last, seen)
            found.pages += 1
            fresh = [r for r in page if r.id not in seen]
            for i, run in enumerate(fresh):
                seen.add(run.id)
                created = run.created_at or datetime.now(UTC)
                if created < floor:
                    if below is not None:
                        below.extend(fresh[i:])
                    return
                yield run
            if len(page) < RUNS_PAGE or not fresh:
                return
            last = fresh[-1]

    def _runs_pager(self) -> RunPager:
        if self._pager is None:
            self._pager = RunPager(self.client, dict(self.run_filters))
        return self._pager

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
