"""The early OTLP metrics push after a failed step (``telemetry.EarlyPush``): at once,
at most one per gap, requests folded together, none after close."""

from __future__ import annotations

import threading
import time

from letta_otel.telemetry import EarlyPush


class Pushes:
    def __init__(self) -> None:
        self.at: list[float] = []
        self.release = threading.Event()
        self.release.set()
        self.changed = threading.Condition()

    def __call__(self) -> None:
        self.release.wait(5)
        with self.changed:
            self.at.append(time.monotonic())
            self.changed.notify_all()

    def wait_for(self, n: int, timeout: float = 5) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.at) >= n, timeout), self.at


def test_a_request_pushes_at_once_and_requests_meanwhile_make_one_more() -> None:
    pushes = Pushes()
    early = EarlyPush(pushes, min_gap=0.5)
    asked = time.monotonic()
    pushes.release.clear()  # the first push is slow
    early.request()
    for _ in range(10):  # failures counted while it is under way
        early.request()
    pushes.release.set()
    pushes.wait_for(2)
    time.sleep(0.7)
    assert len(pushes.at) == 2  # folded into one more push
    assert pushes.at[0] - asked < 0.5
    assert pushes.at[1] - pushes.at[0] >= 0.45  # at most one per gap
    early.close()


def test_nothing_is_pushed_after_close() -> None:
    pushes = Pushes()
    early = EarlyPush(pushes, min_gap=0.3)
    early.request()
    pushes.wait_for(1)
    early.request()  # waits for the gap ...
    early.close()  # ... and is dropped: shutdown makes the last push
    early.request()
    time.sleep(0.5)
    assert len(pushes.at) == 1


def test_a_failing_push_is_logged_not_raised() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("collector down")

    early = EarlyPush(broken, min_gap=0.0)
    early.request()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    early.request()  # still works after a failure
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 2
    early.close()
