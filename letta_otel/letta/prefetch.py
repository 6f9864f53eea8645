"""The runs a cycle needs, from a few listing pages instead of a GET per run.

Two listings, tried in this order by :class:`letta_otel.letta.enrich.Enricher`:

* :class:`RecentRuns` — ``GET /v1/runs/`` newest first (100 per page), shared by every
  lookup of one cycle: a live daemon's open runs are the newest ones, so one page
  usually holds every run the cycle asks for, with its current status. A page is listed
  only while the one before brought a run still asked for (and within a budget): past
  the runs being waited for, paging on would cost more than it finds.
* :class:`RunPrefetcher` — behind a backlog the steps are old and so are their runs.
  Steps are listed oldest first, so the runs of one cycle's steps were created within a
  short stretch of time, and ``GET /v1/runs/?order=asc`` holds them side by side.
  Starting from the run of the cycle's first step, the listing is paged towards newer
  runs until every wanted run was seen, a page brings none, or a budget of
  ``wanted / 100 + 3`` pages is spent; runs are handed out as their page arrives, so the
  oldest steps (enriched first) get theirs first.

A run neither brings (a long run created well before its steps, an old open run) is
fetched by id: the result is the same, with about one request per 100 runs instead of
one per run. Which cursor parameter pages on is detected on first use (Letta 0.16.8
answers ``before`` where its docs say ``after``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection, Iterable
from typing import Any

from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.letta.discovery import RUNS_PAGE, PageParam, RunPager
from letta_otel.letta.models import Run

log = logging.getLogger(__name__)

SLACK_PAGES = 3
# Newest-first pages one cycle may list: 1,000 runs, far more than a live daemon waits
# for at once (it stops at the first page that brings none of them anyway).
RECENT_MAX_PAGES = 10


class RecentRuns:
    """The newest runs at one moment, listed a page at a time as lookups need them."""

    def __init__(self, pager: RunPager, max_pages: int = RECENT_MAX_PAGES) -> None:
        self._pager = pager
        self._max_pages = max_pages
        self._lock = asyncio.Lock()
        self._runs: dict[str, Run] = {}
        self._last: Run | None = None
        self._pages = 0
        self._done = max_pages <= 0

    @property
    def pages(self) -> int:
        return self._pages

    async def find(self, run_ids: Collection[str]) -> dict[str, Run]:
        """Those of ``run_ids`` found among the newest runs. The next page is listed
        while some are still missing, if the page before brought one of them; a page
        that failed or was given up on ends the listing for this cycle (the callers
        read by id)."""
        async with self._lock:
            while not self._done:
                missing = {r for r in run_ids if r not in self._runs}
                if not missing:
                    break
                try:
                    page = await self._pager.page(self._last, set(self._runs))
                except LettaError as exc:
                    log.debug("listing the newest runs failed (%s); reading them by id", exc)
                    self._done = True
                    break
                except asyncio.CancelledError:
                    self._done = True  # too slow for its waiter: the cycle reads by id
                    raise
                self._pages += 1
                fresh = [r for r in page if r.id not in self._runs]
                self._runs.update((r.id, r) for r in fresh)
                hit = any(r.id in missing for r in fresh)
                if not hit or len(page) < RUNS_PAGE or self._pages >= self._max_pages:
                    self._done = True
                else:
                    self._last = fresh[-1]
            return {r: self._runs[r] for r in run_ids if r in self._runs}


def _is_newer_page(runs: list[Run], last: Run, seen: set[str]) -> bool:
    """A next page of an oldest-first listing: nothing seen, nothing older than ``last``."""
    if any(r.id in seen for r in runs):
        return False
    if last.created_at is None:
        return True
    return all(r.created_at is None or r.created_at >= last.created_at for r in runs)


class RunPrefetcher:
    def __init__(self, client: LettaClient) -> None:
        self._client = client
        self._next_param: PageParam | None = None

    async def runs(self, wanted: set[str], first: str) -> AsyncIterator[Run]:
        """Yield runs of ``wanted``, paging newer from run ``first`` (one of them)."""
        if not wanted:
            return
        try:
            top = await self._client.get_run(first)
            if top is None:
                return
            found = 0
            if top.id in wanted:
                found += 1
                yield top
            seen, last = {top.id}, top
            for _ in range(len(wanted) // RUNS_PAGE + SLACK_PAGES):
                if found >= len(wanted):
                    return
                page = await self._page(last, seen)
                fresh = [r for r in page if r.id not in seen]
                hits = [r for r in fresh if r.id in wanted]
                for run in hits:
                    found += 1
                    yield run
                if not fresh or (not hits and found) or len(page) < RUNS_PAGE:
                    return
                seen.update(r.id for r in fresh)
                last = fresh[-1]
        except LettaError as exc:
            log.debug("prefetching runs failed (%s); fetching the rest one by one", exc)

    async def _page(self, last: Run, seen: set[str]) -> list[Run]:
        params: dict[str, Any] = {"order": "asc", "limit": RUNS_PAGE}
        candidates: Iterable[PageParam] = (
            (self._next_param,) if self._next_param else ("after", "before")
        )
        for param in candidates:
            runs = (await self._client.list_runs({**params, param: last.id}))[0]
            # An empty page proves nothing about the parameter: try the other one too.
            if runs and _is_newer_page(runs, last, seen):
                if self._next_param is None:
                    log.debug("GET /v1/runs/?order=asc pages newer runs with %r", param)
                    self._next_param = param
                return runs
        return []
