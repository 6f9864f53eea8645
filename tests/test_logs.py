"""Logging set-up: secrets scrubbed, and records go to the stderr of the moment."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from letta_otel.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_records_go_to_the_current_stderr_not_a_closed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command run in-process after another (tests, an embedding program) must not log
    into the stream the first one set up with: it may be closed by now."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO", "text")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("letta_otel.test").warning("after the swap")
    assert "after the swap" in second.getvalue()


def test_secrets_and_bearer_tokens_never_reach_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    setup_logging("INFO", "json", secrets=["sk-let-SECRET-0123"])
    logging.getLogger("letta_otel.test").warning(
        "key %s and Authorization: Bearer abc.def-ghi", "sk-let-SECRET-0123"
    )
    text = out.getvalue()
    assert "SECRET" not in text and "abc.def-ghi" not in text
    assert '"level": "WARNING"' in text and "Bearer ***" in text
