"""The event loop the commands run on: uvloop where it is installed, else asyncio's.

uvloop implements the loop, its timers and socket transports in C. The bridge makes
2-3 small HTTP requests per step, each a handful of loop callbacks, so the loop's own
cost is a large share of the bridge's CPU (see the README's performance section). The
code only uses the asyncio API, so both loops behave the same; the test suite runs on
both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 - optional: not on every platform
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
