"""The runs a slice of steps needs, from a few listing pages instead of a GET per run.

Steps are listed oldest first, so the runs of one cycle's steps were created within a
short stretch of time, and ``GET /v1/runs/?order=asc`` (100 per page) holds them side
by side. Starting from the run of the cycle's first step, the listing is paged towards
newer runs until every wanted run was seen, a page brings none, or a budget of
``wanted / 100 + 3`` pages is spent; runs are handed out as their page arrives, so the
oldest steps (enriched first) get theirs first. Runs not found this way (a long run
created well before its steps, one older than the starting point) are fetched one by
one as before: the result is the same, with about one request per 100 runs instead of
one per run. Which cursor parameter pages forward is detected on the first use
(Letta 0.16.8 answers ``before`` where its docs say ``after``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from letta_otel.letta.client import LettaClient, LettaError
from letta_otel.letta.discovery import RUNS_PAGE, PageParam
from letta_otel.letta.models import Run

log = logging.getLogger(__name__)

SLACK_PAGES = 3


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
