"""The event loop the commands run on: uvloop where it is installed, else asyncio's.

uvloop implements the loop, its timers and socket transports in C. The bridge makes
2-3 small HTTP requests per step, each a handful of loop callbacks, so the loop's own
cost is a large share of the bridge's CPU (see docs/performance.md). The
code only uses the asyncio API, so both loops behave the same; the test suite runs on
both.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 - optional: not on every platform
    except ImportError:
        return None
    return uvloop.new_event_loop


# Allocations (net of frees) between young-generation collections. CPython's 700 made
# the collector about 10% of the bridge's CPU under load: every step allocates
# thousands of short-lived objects, and each collection walks all still-young ones.
# Most die by reference counting before 50,000 accumulate; peak RSS did not change.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Set up the collector for a long-running command, once its code is imported.

    Objects alive now (modules, classes, settings) live as long as the process:
    ``gc.freeze`` keeps full collections from walking them again and again (those
    were a third of the collector's time). Garbage is collected first, so nothing
    unreachable is frozen.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
