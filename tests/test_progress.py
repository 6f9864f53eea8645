"""The backfill progress display: a bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest

from letta_otel.backfill import BackfillRange
from letta_otel.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_bar_with_a_known_total() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("backfill", stream=out, tty=True, clock=clock)
    clock.now += 10
    progress.update(250, total=1000)
    line = out.getvalue()
    assert line.startswith("\rbackfill [#####---------------]  25%  250/1,000 steps  25 steps/s")
    assert "ETA 0:00:30" in line
    progress.finish("done")
    assert out.getvalue().endswith("\n")


def test_estimate_from_the_covered_time_range() -> None:
    clock = Clock()
    progress = Progress("backfill", stream=io.StringIO(), tty=True, clock=clock)
    clock.now += 60
    progress.update(600, fraction=0.5)
    assert "~ 50%" in progress.line() and "600 steps" in progress.line()
    assert "ETA 0:01:00" in progress.line()
    fresh = Progress("backfill", stream=io.StringIO(), tty=True, clock=clock)
    assert "ETA ?" in fresh.line()


def test_log_lines_every_interval_when_not_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("backfill", stream=out, tty=False, interval=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="letta_otel.progress"):
        for _ in range(30):
            clock.now += 1
            progress.update(progress.done + 5)
    assert out.getvalue() == ""  # no carriage returns in a log file
    assert len(caplog.records) == 3
    assert "150 steps" in caplog.records[-1].getMessage()


def test_backfill_estimate_follows_the_density_of_steps() -> None:
    until = datetime(2026, 11, 21, 12, tzinfo=UTC)
    span = BackfillRange(until - timedelta(days=1), until)
    hour = 3600 * 10**9
    end_ns = int(until.timestamp()) * 10**9
    anchor = (end_ns - 4 * hour, 1000)  # after cycle 1: 4 h before the end, 1000 done
    assert span.estimate(None, end_ns - 2 * hour, 1500) is None
    assert span.estimate(anchor, anchor[0], 1500) is None
    # 500 steps over 2 h since the anchor, 2 h left: 500 more expected -> 1500 / 2000
    assert span.estimate(anchor, end_ns - 2 * hour, 1500) == pytest.approx(0.75)
    assert span.estimate(anchor, end_ns, 2000) == 1.0
