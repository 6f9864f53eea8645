"""Progress of a long job (``letta-otel backfill``): a bar on a terminal, log lines otherwise.

On a TTY one line is rewritten in place::

    backfill [##########----------]  48%  9,312 steps  412 steps/s  ETA 0:00:23

Elsewhere (a pod's log, a CI job) a log line every ``interval`` seconds says the same.
``fraction`` is exact when the total is known and an estimate otherwise (from the
density of steps over the Letta time covered so far); the ETA follows from it and the
rate.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)

BAR_WIDTH = 20


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    seconds = int(seconds)
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self._stream = stream or sys.stderr
        self.tty = self._stream.isatty() if tty is None else tty
        self._interval = interval
        self._clock = clock
        self._start = clock()
        self._last_log = self._start
        self.done = 0
        self.fraction: float | None = None
        self.total: int | None = None

    def line(self) -> str:
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.done / elapsed
        fraction = self.fraction
        if self.total:
            fraction = min(self.done / self.total, 1.0)
        eta = None
        if fraction is not None and 0 < fraction < 1:
            eta = elapsed * (1 - fraction) / fraction
        elif fraction is not None and fraction >= 1:
            eta = 0.0
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "") + " steps"
        if fraction is None:
            return f"{self.label} {count}  {rate:,.0f} steps/s  {_eta(None)}"
        filled = int(BAR_WIDTH * min(fraction, 1.0))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        estimate = "" if self.total else "~"
        return (
            f"{self.label} [{bar}] {estimate}{fraction:4.0%}  {count}  {rate:,.0f} steps/s  "
            f"{_eta(eta)}"
        )

    def update(self, done: int, *, fraction: float | None = None, total: int | None = None) -> None:
        self.done = done
        if fraction is not None:
            self.fraction = max(0.0, min(fraction, 1.0))
        if total is not None:
            self.total = total
        if self.tty:
            self._stream.write("\r" + self.line() + "\x1b[K")
            self._stream.flush()
        elif self._clock() - self._last_log >= self._interval:
            self._last_log = self._clock()
            log.info("%s", self.line())

    def finish(self, message: str) -> None:
        if self.tty:
            self._stream.write("\r" + self.line() + "\x1b[K\n")
            self._stream.flush()
        log.info("%s: %s", self.label, message)
