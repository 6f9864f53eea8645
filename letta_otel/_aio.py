"""A semaphore and a queue for the hot path that never look up the running loop.

On CPython 3.11, ``asyncio.get_running_loop()`` (and everything that calls it:
``asyncio.Semaphore`` and ``asyncio.Queue`` whenever they must wait,
``asyncio.create_task``, ``ensure_future``) checks the process id with a
``getpid()`` system call, every time. The bridge waits on a semaphore or a queue
several times per step; measured with ``py-spy --native`` that made ``getpid`` 7.6%
of the bridge's CPU (system calls are dear on sandboxed hosts). These two classes
look their loop up once and otherwise behave like their asyncio counterparts
(FIFO, cancellation-safe). CPython 3.12 dropped the check.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class Slots:
    """``asyncio.Semaphore``, bound (like it) to the loop it first waits in.

    A release hands the slot straight to the first waiter, so a newcomer never
    overtakes a waiter; a waiter cancelled after being handed the slot passes it on.
    """

    def __init__(self, value: int) -> None:
        if value < 1:
            raise ValueError("Slots needs at least one slot")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = value
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        return self._free

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for it; never waits."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the slot, but nobody will use it now
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Channel(Generic[T]):
    """A bounded FIFO ``asyncio.Queue`` for one consumer, bound to the loop running
    when it is made: ``put`` waits while it is full, ``get`` while it is empty."""

    def __init__(self, maxsize: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: collections.deque[T] = collections.deque()
        self._room = Slots(maxsize)  # one slot per item held
        self._getter: asyncio.Future[None] | None = None

    def full(self) -> bool:
        return self._room.free == 0

    async def put(self, item: T) -> None:
        await self._room.acquire()
        self._append(item)

    def put_nowait(self, item: T) -> None:
        if not self._room.try_acquire():
            raise asyncio.QueueFull
        self._append(item)

    def _append(self, item: T) -> None:
        self._items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> T:
        while not self._items:
            getter = self._getter = self._loop.create_future()
            try:
                await getter
            finally:
                self._getter = None
        item = self._items.popleft()
        self._room.release()
        return item
