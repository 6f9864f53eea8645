"""A machine-wide lock for test parts that share one installation or server."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout: float, *, held: str) -> Iterator[None]:
    """``flock`` on ``path``, waiting up to ``timeout`` s; else fail with ``held``."""
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(held, pytrace=False)
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
