"""``letta-otel backfill --since ISO [--until ISO] [--agent ID ...]``: a past range, once.

Design decisions:

* **Same state file as the daemon.** Its ``steps``/``runs`` tables are what makes
  "nothing doubled" hold across the two: a step the daemon exported (within the 24 h
  retention) is not sent again, and open steps a stopped backfill leaves behind are
  finished by the next backfill or by the daemon. The daemon's live cursor is never
  touched: the backfill keeps its own cursors under ``backfill.<range key>.*`` meta
  keys, so it resumes after Ctrl-C or a crash by running the same command again.
  Consequence: the backfill needs the state lock, so stop the daemon meanwhile (or
  give the backfill its own ``--state-path`` and accept that steps both of them
  export are sent twice, with identical span ids).
* **Steps route**: ``GET /v1/steps/?order=asc&start_date=&end_date=`` per agent (the
  date filters are exclusive, so the range is widened by 1 µs on each side), paged
  with the cursor, 10 pages per cycle.
* **Runs fallback**: runs newest first down to ``--since`` (runs have ``created_at``;
  the listing stops at the first older one), those after ``--until`` skipped, then each
  run's steps. Resuming lists the runs again and skips those already exported.
* **Maximum age**: a ``--since`` older than ``LETTA_OTEL_BACKFILL_MAX_AGE`` (default
  7 days) is refused with exit code 2 unless ``--force``: some backends silently drop
  old spans (Dynatrace after 60 min, Sumo Logic after 24 h), which a bridge that
  commits "confirmed" would record as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from letta_otel.assemble import (
    PAGES_PER_CYCLE,
    bridge_over,
    build_client,
    check_otlp_reachable,
    open_state,
    startup_discovery,
)
from letta_otel.config import Settings
from letta_otel.export.sink import SpanSink, build_sink
from letta_otel.letta.client import LettaClient, LettaNotFound
from letta_otel.letta.discovery import (
    STEPS_PAGE,
    Discovered,
    RunsDiscovery,
    StateView,
    StepsDiscovery,
    choose_discovery,
)
from letta_otel.pipeline.cycle import Bridge
from letta_otel.pipeline.report import CycleReport, summarize
from letta_otel.progress import Progress
from letta_otel.retry import cycle_delay
from letta_otel.startup import StartupError
from letta_otel.state import StateStore
from letta_otel.stop import StopSignal

log = logging.getLogger(__name__)

MAX_FAILED_CYCLES = 5
_EDGE = timedelta(microseconds=1)


class BackfillRefused(Exception):
    """The request is invalid or unsafe; the message says why and how to proceed."""


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def parse_time(text: str) -> datetime:
    """ISO-8601; ``Z`` and zone-less (UTC) accepted."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BackfillRange:
    since: datetime
    until: datetime
    agents: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        text = f"{self.since.isoformat()}|{self.until.isoformat()}|{','.join(sorted(self.agents))}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def parts(self) -> tuple[str | None, ...]:
        return tuple(sorted(set(self.agents))) or (None,)

    def meta(self, agent: str | None, name: str) -> str:
        return f"backfill.{self.key}.{agent or '*'}.{name}"

    def estimate(self, anchor: tuple[int, int] | None, newest_ns: int, done: int) -> float | None:
        """Share done, from the steps per second of Letta time seen since ``anchor``.

        ``anchor`` is (time reached, steps done) after the first cycle: the density of
        steps over the time covered since then, times the time left until ``until``,
        estimates what remains. A time-share of the range would be misleading, since
        activity is rarely spread evenly over it.
        """
        if anchor is None or newest_ns <= anchor[0] or done <= anchor[1]:
            return None
        density = (done - anchor[1]) / (newest_ns - anchor[0])
        left = max(_ns(self.until) - newest_ns, 0) * density
        return done / (done + left)


def check_range(
    since: datetime, until: datetime | None, *, now: datetime, max_age: timedelta, force: bool
) -> datetime:
    """The effective ``until``; raises :class:`BackfillRefused` for a bad or too old range."""
    end = until or now
    if since >= end:
        raise BackfillRefused(
            f"--since {since.isoformat()} is not before --until {end.isoformat()}"
        )
    if end > now + timedelta(minutes=5):
        raise BackfillRefused(f"--until {end.isoformat()} is in the future")
    oldest = now - max_age
    if since < oldest:
        message = (
            f"--since {since.isoformat()} is older than LETTA_OTEL_BACKFILL_MAX_AGE "
            f"({max_age}); some backends drop spans that old without saying so (Dynatrace "
            f"after 60 min, Sumo Logic after 24 h)"
        )
        if not force:
            raise BackfillRefused(
                message + "; check your backend's limit, then pass --force or raise the setting"
            )
        log.warning("%s; exporting anyway (--force)", message)
    return end


@dataclass
class StepsBackfill:
    """The steps route over a fixed range, one cursor per agent (or one for all)."""

    client: LettaClient
    range: BackfillRange
    max_pages: int = PAGES_PER_CYCLE
    name: str = "steps"

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        found = Discovered()
        for agent in self.range.parts():
            if state.get_meta(self.range.meta(agent, "done")):
                continue
            cursor = state.get_meta(self.range.meta(agent, "cursor"))
            try:
                last, exhausted = await self._read(found, agent, cursor)
            except LettaNotFound:
                if cursor is None:
                    raise
                log.warning("backfill cursor %s vanished; restarting that part", cursor)
                last, exhausted = await self._read(found, agent, None)
            if last is not None:
                found.meta[self.range.meta(agent, "cursor")] = last
            if not exhausted:
                found.more = True
                return found
            found.meta[self.range.meta(agent, "done")] = now.isoformat()
        return found

    async def _read(
        self, found: Discovered, agent: str | None, cursor: str | None
    ) -> tuple[str | None, bool]:
        extra: dict[str, str] = {"end_date": (self.range.until + _EDGE).isoformat()}
        if agent:
            extra["agent_id"] = agent
        last = cursor
        for _ in range(self.max_pages):
            steps, ids = await self.client.list_steps(
                after=last,
                start_date=None if last else self.range.since - _EDGE,
                limit=STEPS_PAGE,
                extra=extra,
            )
            found.pages += 1
            found.steps.extend(steps)
            if ids:
                last = ids[-1]
            if len(ids) < STEPS_PAGE:
                return last, True
        return last, False


@dataclass
class RunsBackfill:
    """The runs fallback over a fixed range: runs newest first down to ``since``."""

    client: LettaClient
    range: BackfillRange
    name: str = "runs"
    listed: bool = False  # every run of the range was listed (by the first cycle)

    async def discover(self, state: StateView, now: datetime) -> Discovered:
        found = Discovered()
        if self.listed:
            return found  # everything was recorded open by the first cycle
        for agent in self.range.parts():
            lister = RunsDiscovery(
                self.client,
                timedelta(0),
                None,
                run_filters={"agent_id": agent} if agent else {},
            )
            async for run in lister.runs_newest_first(self.range.since, found):
                if run.created_at is not None and run.created_at > self.range.until:
                    continue
                if state.run_state(run.id) == "exported":
                    continue  # done by an earlier (interrupted) backfill or the daemon
                found.runs[run.id] = run
                found.steps.extend(await lister.run_steps(run.id, found))
        self.listed = True
        return found


@dataclass
class BackfillResult:
    ok: bool
    exported_steps: int
    cycles: int


class Backfill:
    def __init__(
        self, settings: Settings, span: BackfillRange, *, progress: Progress | None = None
    ) -> None:
        self._settings = settings
        self._range = span
        self._progress = progress or Progress("backfill")
        self._stop = StopSignal(
            "stop requested; finishing the batch in flight (run the same command to resume)"
        )

    def request_stop(self) -> None:
        self._stop.request()

    async def run(self) -> BackfillResult:
        settings = self._settings
        state = _open_state(settings)
        client = build_client(settings)
        sink = build_sink(settings)
        self._stop.install()
        bridge: Bridge | None = None
        try:
            await check_otlp_reachable(settings)
            bridge = await self._bridge(client, state, sink)
            return await self._loop(bridge, state)
        finally:
            if bridge is not None:  # a stop: the work in flight is given up, resumable
                await bridge.aclose()
            await client.aclose()
            sink.shutdown()
            state.close()

    async def _bridge(self, client: LettaClient, state: StateStore, sink: SpanSink) -> Bridge:
        settings = self._settings
        discovery = await startup_discovery(
            settings,
            choose_discovery(
                client,
                settings.discovery,
                lambda: StepsDiscovery(client, timedelta(0)),
                lambda: RunsDiscovery(client, timedelta(0)),
            ),
        )
        backfill = (
            StepsBackfill(client, self._range)
            if isinstance(discovery, StepsDiscovery)
            else RunsBackfill(client, self._range)
        )
        log.info(
            "backfilling %s .. %s%s through /v1/%s/ (range key %s)",
            self._range.since.isoformat(),
            self._range.until.isoformat(),
            f" for {len(self._range.agents)} agent(s)" if self._range.agents else "",
            backfill.name,
            self._range.key,
        )
        return bridge_over(settings, backfill, client, state, sink)

    async def _loop(self, bridge: Bridge, state: StateStore) -> BackfillResult:
        baseline = state.counts().get("steps_exported", 0)
        ticker = asyncio.create_task(self._tick(state, baseline, bridge))
        cycles = failures = 0
        newest: int | None = None
        anchor: tuple[int, int] | None = None
        try:
            while not self._stop.is_set():
                report = await bridge.cycle(once=True, should_stop=self._stop.is_set)
                cycles += 1
                log.debug("%s", summarize(report, 0.0))
                if report.newest_exported_ns:
                    newest = max(newest or 0, report.newest_exported_ns)
                if bridge.discovery.name == "steps" and newest is not None:
                    done = state.counts().get("steps_exported", 0) - baseline
                    if anchor is None:
                        anchor = (newest, done)
                    self._progress.fraction = self._range.estimate(anchor, newest, done)
                if not report.ok:
                    failures += 1
                    if failures >= MAX_FAILED_CYCLES:
                        return self._result(state, baseline, False, cycles, report)
                    await self._stop.sleep(
                        cycle_delay(min(self._settings.poll_interval, 1.0), failures)
                    )
                    continue
                failures = 0
                if not report.more and (report.open_steps == 0 or report.exported_steps == 0):
                    break
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        # A requested stop (SIGINT/SIGTERM) ends cleanly with exit 0, like the daemon;
        # the last line says how to resume.
        return self._result(state, baseline, True, cycles, None)

    def _result(
        self,
        state: StateStore,
        baseline: int,
        ok: bool,
        cycles: int,
        report: CycleReport | None,
    ) -> BackfillResult:
        done = state.counts().get("steps_exported", 0) - baseline
        self._progress.update(done)
        if self._stop.is_set():
            self._progress.finish(f"stopped after {done} steps; run the same command to resume")
        elif ok:
            self._progress.fraction = 1.0
            self._progress.update(done)
            self._progress.finish(f"done: {done} steps exported in {cycles} cycles")
        else:
            errors = "; ".join(report.errors[:3]) if report else ""
            self._progress.finish(
                f"giving up after {MAX_FAILED_CYCLES} failed cycles ({errors}); "
                f"{done} steps exported; run the same command to resume"
            )
        return BackfillResult(ok, done, cycles)

    async def _tick(self, state: StateStore, baseline: int, bridge: Bridge) -> None:
        interval = 0.5 if self._progress.tty else 1.0
        while True:
            await asyncio.sleep(interval)
            counts = state.counts()
            done = counts.get("steps_exported", 0) - baseline
            total = None
            if isinstance(bridge.discovery, RunsBackfill) and bridge.discovery.listed:
                total = done + counts.get("steps_open", 0)
            self._progress.update(done, total=total)


def _open_state(settings: Settings) -> StateStore:
    try:
        return open_state(settings)
    except StartupError as exc:
        if "in use" in str(exc):
            raise StartupError(
                f"the state file {settings.state_path} is held by a running letta-otel "
                "(probably the daemon). Stop it while the backfill runs: they share the "
                "state so nothing is sent twice, and the daemon continues where it was "
                "afterwards. Or give the backfill its own --state-path; steps both export "
                "are then sent twice, with identical span ids."
            ) from None
        raise


def make_range(
    since: str, until: str | None, agents: Sequence[str], *, settings: Settings, force: bool
) -> BackfillRange:
    try:
        start = parse_time(since)
        end = parse_time(until) if until else None
    except ValueError as exc:
        raise BackfillRefused(f"--since/--until: not an ISO-8601 time ({exc})") from None
    now = datetime.now(UTC)
    end = check_range(start, end, now=now, max_age=settings.backfill_max_age, force=force)
    return BackfillRange(start, end, tuple(agents))
