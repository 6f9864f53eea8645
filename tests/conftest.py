"""Root test configuration: local opt-outs for tests against heavy real components.

Tests marked ``live`` drive the repository's real Letta 0.16.8 kit (``tests/live/kit``,
installed from PyPI into the temp dir on first use); skip them with ``pytest --no-live``
or ``LETTA_OTEL_SKIP_LIVE=1``. Tests marked ``phoenix`` export to a real Arize Phoenix
(also installed into the temp dir on first use); skip them with ``--no-phoenix`` or
``LETTA_OTEL_SKIP_PHOENIX=1`` — ``--no-live`` skips them too. Both only save time: from a
lone clone they run (a kit that cannot start fails them). Under ``CI=true`` every opt-out
is ignored, so CI cannot silently pass without the contract tests.
"""

from __future__ import annotations

import os

import pytest

_TRUTHY = {"1", "true", "yes", "on"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in _TRUTHY


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-live",
        action="store_true",
        default=False,
        help="skip tests marked 'live' (the real Letta kit in tests/live/kit); also "
        "LETTA_OTEL_SKIP_LIVE=1. "
        "Ignored when CI=true.",
    )
    parser.addoption(
        "--no-phoenix",
        action="store_true",
        default=False,
        help="skip tests marked 'phoenix' (real Arize Phoenix backend); also "
        "LETTA_OTEL_SKIP_PHOENIX=1 or --no-live. Ignored when CI=true.",
    )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUTHY


def _skip_reasons(config: pytest.Config) -> dict[str, str]:
    """marker -> why it is skipped in this session."""
    reasons: dict[str, str] = {}
    if config.getoption("--no-live"):
        reasons["live"] = reasons["phoenix"] = "(--no-live)"
    elif _env_flag("LETTA_OTEL_SKIP_LIVE"):
        reasons["live"] = reasons["phoenix"] = "(LETTA_OTEL_SKIP_LIVE=1)"
    if config.getoption("--no-phoenix"):
        reasons["phoenix"] = "(--no-phoenix)"
    elif _env_flag("LETTA_OTEL_SKIP_PHOENIX"):
        reasons["phoenix"] = "(LETTA_OTEL_SKIP_PHOENIX=1)"
    return reasons


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_ci():
        return
    reasons = _skip_reasons(config)
    for item in items:
        for marker, why in reasons.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=f"{marker} tests skipped {why}"))
                break
