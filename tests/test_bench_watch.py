"""The benchmarks stop early, with the bridge's first error, when no step is exported."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench import ProgressWatch, first_error

_LOG = """\
2026-12-06 18:46:40,457 INFO    letta_otel.daemon: discovering steps through /v1/steps/
2026-12-06 18:46:44,347 ERROR   letta_otel.bridge: cannot map step step-01; skipping it
Traceback (most recent call last):
TypeError: frozenset object expected; got set
2026-12-06 18:46:44,560 ERROR   letta_otel.bridge: cannot map step step-02; skipping it
"""


def test_moving_count_never_stops(tmp_path: Path) -> None:
    watch = ProgressWatch(60, tmp_path / "bridge.log")
    for second in range(0, 600, 50):
        watch.check(second, 1000, float(second))  # a step or more every 50 s


def test_standing_count_stops_with_the_first_error(tmp_path: Path) -> None:
    log = tmp_path / "bridge.log"
    log.write_text(_LOG)
    watch = ProgressWatch(60, log)
    watch.check(0, 2000, 100.0)
    watch.check(0, 2000, 160.0)  # exactly the limit: still waiting
    with pytest.raises(SystemExit) as stopped:
        watch.check(0, 2000, 160.5)
    message = str(stopped.value)
    assert "no progress for 60 s (0 of 2000 steps exported)" in message
    assert "cannot map step step-01; skipping it" in message
    assert "step-02" not in message
    assert str(log) in message


def test_progress_restarts_the_clock(tmp_path: Path) -> None:
    watch = ProgressWatch(60, tmp_path / "bridge.log")
    watch.check(5, 10, 0.0)
    watch.check(6, 10, 59.0)
    watch.check(6, 10, 118.0)  # 59 s since the last export
    with pytest.raises(SystemExit, match="6 of 10 steps exported"):
        watch.check(6, 10, 120.0)


def test_no_log_or_no_error_still_reports(tmp_path: Path) -> None:
    assert first_error(tmp_path / "missing.log") is None
    quiet = tmp_path / "quiet.log"
    quiet.write_text("2026-12-06 INFO    letta_otel.daemon: cycle via steps\n")
    assert first_error(quiet) is None
    watch = ProgressWatch(1, quiet)
    watch.check(0, 3, 0.0)
    with pytest.raises(SystemExit, match=r"no progress for 1 s \(0 of 3 steps exported\); see "):
        watch.check(0, 3, 2.0)
