"""Fetch what a step's spans need: trace, metrics, messages, its run and agent.

Requests run concurrently with a bound on how many are in flight. Runs are cached
for one cycle (their status changes) and come from listing pages wherever one has
them (:mod:`.prefetch`): the newest runs first, then, behind a backlog, the runs
created after the cycle's first one; a run no listing brought is read by id. Agents
are cached for ``agent_ttl`` (names rarely do change).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from letta_otel.letta.client import InvalidRecord, LettaClient
from letta_otel.letta.discovery import RunPager
from letta_otel.letta.models import Agent, Message, ProviderTrace, Run, Step, StepMetrics
from letta_otel.letta.prefetch import RecentRuns, RunPrefetcher

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepParts:
    trace: ProviderTrace | None
    metrics: StepMetrics | None
    messages: tuple[Message, ...]

    @property
    def missing(self) -> frozenset[str]:
        gaps = set()
        if self.trace is None:
            gaps.add("trace")
        if self.metrics is None or self.metrics.step_ns is None:
            gaps.add("metrics")
        return frozenset(gaps)


def always(parts: StepParts, step: Step) -> bool:
    """Fetch every step's messages (the default: always correct, never the cheapest)."""
    return True


class Enricher:
    def __init__(
        self,
        client: LettaClient,
        *,
        max_in_flight: int = 8,
        agent_ttl: float = 600.0,
        lean_traces: bool = False,
        needs_messages: Callable[[StepParts, Step], bool] = always,
    ) -> None:
        """``lean_traces``: fetch provider traces without the prompt (content capture
        off: nothing reads it; see ``LettaClient.get_trace``). ``needs_messages``: whether
        a step's messages can change its spans, given its trace, metrics and record (the
        mapping knows: ``letta_otel.mapping.records.needs_messages``); when not, its
        ``/messages`` request is skipped."""
        self._client = client
        self._lean_traces = lean_traces
        self._needs_messages = needs_messages
        self.max_in_flight = max_in_flight
        self._limit = asyncio.Semaphore(max_in_flight)
        self._agent_ttl = agent_ttl
        self._agents: dict[str, tuple[float, asyncio.Future[Agent | None]]] = {}
        self._runs: dict[str, asyncio.Future[Run | None]] = {}
        self._prefetcher = RunPrefetcher(client)
        self._pager = RunPager(client)  # kept: it knows which cursor parameter pages
        self._recent = RecentRuns(self._pager)
        self._prefetch: asyncio.Future[None] | None = None

    async def _limited(self, call: Awaitable[T]) -> T:
        async with self._limit:
            return await call

    def drain_invalid(self) -> list[InvalidRecord]:
        """Records Letta listed in a shape we cannot use, since the last call."""
        found, self._client.invalid_records = self._client.invalid_records, []
        return found

    def prefetch_runs(self, wanted: set[str], first: str) -> None:
        """Start fetching this cycle's runs from listing pages (see ``prefetch``).

        Each wanted run not known yet gets a future at once; :meth:`run` awaits it. The
        newest runs are listed first; if ``first`` (the run of the cycle's first step)
        is not among them, the runs created after it are listed next (a backlog). A run
        neither brings is fetched by id afterwards, so every future resolves.
        """
        loop = asyncio.get_running_loop()
        pending: dict[str, asyncio.Future[Run | None]] = {
            rid: loop.create_future() for rid in wanted if rid not in self._runs
        }
        if not pending:
            return
        self._runs.update(pending)

        for future in pending.values():
            # A run nobody ends up asking for must not log "exception never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())

        def hand_out(run: Run) -> None:
            future = pending.pop(run.id, None)
            if future is not None and not future.done():
                future.set_result(run)

        async def fill() -> None:
            try:
                for run in (await self._recent.find(set(pending))).values():
                    hand_out(run)
                if first in pending:
                    async for run in self._prefetcher.runs(set(pending), first):
                        hand_out(run)
            except asyncio.CancelledError:
                for future in pending.values():
                    future.cancel()
                raise
            except Exception:
                log.exception("prefetching runs failed; fetching them one by one")
            for run_id, future in pending.items():
                self._by_id(run_id, future)

        self._prefetch = asyncio.ensure_future(fill())

    def _by_id(self, run_id: str, future: asyncio.Future[Run | None]) -> None:
        task = asyncio.ensure_future(self._limited(self._client.get_run(run_id)))

        def copy(done: asyncio.Future[Run | None]) -> None:
            if future.done():
                return
            if done.cancelled():
                future.cancel()
            elif (error := done.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result())

        task.add_done_callback(copy)

    def new_cycle(self, known_runs: dict[str, Run] | None = None) -> None:
        """Forget cached runs; seed with runs a listing already returned."""
        if self._prefetch is not None:
            self._prefetch.cancel()
            self._prefetch = None
        self._runs = {}
        self._recent = RecentRuns(self._pager)
        self._seed(known_runs or {})

    def _seed(self, runs: dict[str, Run]) -> None:
        for run_id, run in runs.items():
            done: asyncio.Future[Run | None] = asyncio.get_running_loop().create_future()
            done.set_result(run)
            self._runs[run_id] = done

    async def trace(self, step: Step) -> ProviderTrace | None:
        return await self._limited(self._client.get_trace(step.id, lean=self._lean_traces))

    async def metrics(self, step: Step) -> StepMetrics | None:
        return await self._limited(self._client.get_metrics(step.id))

    async def with_messages(self, step: Step, parts: StepParts) -> StepParts:
        if not self._needs_messages(parts, step):
            return parts
        messages = await self._limited(self._client.get_messages(step.id))
        return StepParts(parts.trace, parts.metrics, tuple(messages))

    async def step(self, step_id: str) -> Step | None:
        return await self._limited(self._client.get_step(step_id))

    async def run(self, run_id: str) -> Run | None:
        """The run as it is this cycle: from a listing page of the cycle when one has
        it, else read by id; at most one read per run per cycle, however many steps ask
        for it concurrently."""
        task = self._runs.get(run_id)
        if task is None:
            task = asyncio.ensure_future(self._lookup(run_id))
            self._runs[run_id] = task
        return await task

    async def _lookup(self, run_id: str) -> Run | None:
        listed = (await self._recent.find((run_id,))).get(run_id)
        if listed is not None:
            return listed
        return await self._limited(self._client.get_run(run_id))

    async def agent(self, agent_id: str | None) -> Agent | None:
        try:
            return await self.lookup_agent(agent_id)
        except Exception:
            return None  # the name is optional

    async def lookup_agent(self, agent_id: str | None) -> Agent | None:
        """The agent (cached ``agent_ttl``), None if it does not exist; a failed lookup
        raises (``LettaError``) and is not cached. For callers that must not guess."""
        if not agent_id:
            return None
        cached = self._agents.get(agent_id)
        if cached is None or time.monotonic() - cached[0] >= self._agent_ttl:
            future = asyncio.ensure_future(self._limited(self._client.get_agent(agent_id)))
            cached = (time.monotonic(), future)
            self._agents[agent_id] = cached
        try:
            return await cached[1]
        except Exception:
            if self._agents.get(agent_id) is cached:
                del self._agents[agent_id]
            raise
