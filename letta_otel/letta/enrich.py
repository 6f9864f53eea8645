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
from dataclasses import dataclass, field
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


# How long a run lookup waits for the cycle's shared runs listing before it reads the
# run by id: a page answers in well under a second on a healthy Letta, and a hung one
# must not hold back every step of the cycle.
LISTING_WAIT = 2.0
# Past this many cached agents, adding one first drops the expired ones.
AGENT_CACHE_SWEEP = 1024


@dataclass
class _CycleRuns:
    """One cycle's runs: those listings brought (``known``), the lookups under way, the
    newest-runs pages, and the prefetch of the runs the cycle said it wants."""

    recent: RecentRuns
    known: dict[str, Run]
    lookups: dict[str, asyncio.Future[Run | None]] = field(default_factory=dict)
    wanted: set[str] = field(default_factory=set)
    prefetching: asyncio.Future[None] | None = None

    def prefetch(self, wanted: set[str], first: str, prefetcher: RunPrefetcher) -> None:
        todo = {r for r in wanted if r not in self.known and r not in self.lookups}
        if not todo or self.prefetching is not None:
            return
        self.wanted = todo

        async def fill() -> None:
            try:
                self.known.update(await self.recent.find(todo))
                if first in todo and first not in self.known:
                    async for run in prefetcher.runs(todo - self.known.keys(), first):
                        self.known[run.id] = run
            except Exception:
                log.exception("prefetching runs failed; reading them by id")

        self.prefetching = asyncio.ensure_future(fill())

    def give_up(self) -> None:
        if self.prefetching is not None:
            self.prefetching.cancel()


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
        self._prefetcher = RunPrefetcher(client)
        self._pager = RunPager(client)  # kept: it knows which cursor parameter pages
        self._cycle = _CycleRuns(RecentRuns(self._pager), {})

    async def _limited(self, call: Awaitable[T]) -> T:
        async with self._limit:
            return await call

    def drain_invalid(self) -> list[InvalidRecord]:
        """Records Letta listed in a shape we cannot use, since the last call."""
        found, self._client.invalid_records = self._client.invalid_records, []
        return found

    def prefetch_runs(self, wanted: set[str], first: str) -> None:
        """Start listing this cycle's runs (see ``prefetch``): the newest runs first;
        if ``first`` (the run of the cycle's first step) is not among them, the runs
        created after it (a backlog). :meth:`run` uses what they bring, and reads by id
        only a run asked for that they did not bring (never one nobody asks for)."""
        self._cycle.prefetch(wanted, first, self._prefetcher)

    def new_cycle(self, known_runs: dict[str, Run] | None = None) -> None:
        """Forget cached runs; seed with runs a listing already returned. A prefetch
        still under way is given up (a lookup waiting for it reads on by itself)."""
        self._cycle.give_up()
        self._cycle = _CycleRuns(RecentRuns(self._pager), dict(known_runs or {}))

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
        cycle = self._cycle
        task = cycle.lookups.get(run_id)
        if task is None:
            task = asyncio.ensure_future(self._lookup(cycle, run_id))
            # Its awaiters may be cancelled: the exception is then nobody's to retrieve.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            cycle.lookups[run_id] = task
        # Shielded: one awaiter cancelled must not cancel the lookup the others share.
        return await asyncio.shield(task)

    async def _lookup(self, cycle: _CycleRuns, run_id: str) -> Run | None:
        run = cycle.known.get(run_id)
        if run is None and run_id in cycle.wanted and cycle.prefetching is not None:
            # A hung listing delays a step by LISTING_WAIT at most, then it reads by id.
            await asyncio.wait({cycle.prefetching}, timeout=LISTING_WAIT)
            run = cycle.known.get(run_id)
        if run is None:
            try:
                found = await asyncio.wait_for(cycle.recent.find((run_id,)), LISTING_WAIT)
            except TimeoutError:
                found = {}
            run = found.get(run_id)
        if run is None:
            run = await self._limited(self._client.get_run(run_id))
        return run

    async def agent(self, agent_id: str | None) -> Agent | None:
        try:
            return await self.lookup_agent(agent_id)
        except Exception:
            return None  # the name is optional

    def _forget_expired_agents(self, now: float) -> None:
        # A daemon runs for months and fleets create short-lived agents: without this
        # the cache would keep every agent it ever saw. Swept only when it is large, and
        # only of entries a lookup would refresh anyway.
        for agent_id, (fetched, future) in list(self._agents.items()):
            if future.done() and now - fetched >= self._agent_ttl:
                del self._agents[agent_id]

    async def lookup_agent(self, agent_id: str | None) -> Agent | None:
        """The agent (cached ``agent_ttl``), None if it does not exist; a failed lookup
        raises (``LettaError``) and is not cached. For callers that must not guess."""
        if not agent_id:
            return None
        cached = self._agents.get(agent_id)
        now = time.monotonic()
        if cached is None or now - cached[0] >= self._agent_ttl:
            if cached is None and len(self._agents) >= AGENT_CACHE_SWEEP:
                self._forget_expired_agents(now)
            future = asyncio.ensure_future(self._limited(self._client.get_agent(agent_id)))
            cached = (now, future)
            self._agents[agent_id] = cached
        try:
            return await cached[1]
        except Exception:
            if self._agents.get(agent_id) is cached:
                del self._agents[agent_id]
            raise
