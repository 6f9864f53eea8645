"""Long-lived fetching workers, so a slow or hung request delays only its own object.

A cycle schedules work (a step to bring up to date and enrich, an owed LLM span to look
for, a run root) and goes on: the work outlives the cycle. A fixed set of worker tasks
takes the next job when done with one (no task per job: creating and finishing one
costs as much as a request), so the number of objects in flight stays bounded however
long a request hangs, and the other workers keep going meanwhile.

Each job has a :data:`~letta_otel.pipeline.units.Key`; a key is *busy* from the moment
its job is scheduled until whoever took its result releases it (the exporter, once the
unit is committed or dropped), or the job ended without handing anything on. A later
cycle never schedules a busy key again, so an object is never worked on twice at once
and its spans are never queued twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from letta_otel.pipeline.units import Key

log = logging.getLogger(__name__)

# A job returns True when it handed its result on: the taker releases the key then.
Job = Callable[[], Awaitable[bool]]


class Workers:
    def __init__(self, size: int, on_error: Callable[[Key, Exception], None]) -> None:
        self._size = size
        self._on_error = on_error
        self._jobs: asyncio.Queue[tuple[Key, Job]] = asyncio.Queue()
        self._busy: set[Key] = set()
        self._running = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: list[asyncio.Future[None]] = []

    # --- scheduling ------------------------------------------------------------------

    def busy(self, key: Key) -> bool:
        return key in self._busy

    def busy_ids(self, kind: str) -> set[str]:
        return {object_id for k, object_id in self._busy if k == kind}

    def submit(self, key: Key, job: Job) -> bool:
        """Schedule ``job`` unless its key is busy (False then)."""
        if key in self._busy:
            return False
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._work()) for _ in range(self._size)]
        self._busy.add(key)
        self._jobs.put_nowait((key, job))
        return True

    def release(self, keys: Iterable[Key]) -> None:
        """The work on these keys is over (its unit committed or dropped)."""
        self._busy.difference_update(keys)
        self._changed()

    @property
    def queued(self) -> int:
        """Jobs scheduled and not started yet."""
        return self._jobs.qsize()

    @property
    def active(self) -> bool:
        """A job is queued or running."""
        return self._running > 0 or not self._jobs.empty()

    async def until(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds, looked at whenever a job starts, ends or is released."""
        loop = asyncio.get_running_loop()
        while not done():
            waiter = loop.create_future()
            self._waiters.append(waiter)
            await waiter

    async def aclose(self) -> None:
        """Cancel every job (a hung request included); the work is left undone, and
        the objects stay open in the state file for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        while not self._jobs.empty():
            self._jobs.get_nowait()
        self._busy.clear()
        self._running = 0
        self._changed()

    # --- the workers -----------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key, job = await self._jobs.get()
            self._running += 1
            self._changed()
            handed = False
            try:
                handed = await job()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                # Not this worker's cancellation: a fetch shared with other work was
                # given up under it (the enricher's cache of a cycle's runs). The
                # object is tried again at the next cycle.
                log.debug("work on %s %s was interrupted; retrying next cycle", *key)
            except Exception as exc:  # a bug met on odd data: reported, retried
                self._on_error(key, exc)
            finally:
                self._running -= 1
                if not handed:
                    self._busy.discard(key)
                self._changed()

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
