"""Stopping a long-running command cleanly: SIGINT/SIGTERM finish the batch in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

log = logging.getLogger(__name__)


class StopSignal:
    """SIGINT/SIGTERM, or :meth:`request`, ask a loop to stop after the batch in flight."""

    def __init__(self, message: str) -> None:
        self._event = asyncio.Event()
        self._message = message

    def request(self) -> None:
        if not self._event.is_set():
            log.info("%s", self._message)
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not available off the main thread (embedded use, tests).
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=seconds)

    async def wait(self) -> None:
        """Until a stop is requested."""
        await self._event.wait()
