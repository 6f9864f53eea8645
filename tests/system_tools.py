"""Skip a test, with a reason saying what to install, when a system tool it runs is missing.

Only Python and the packages from PyPI are guaranteed on a fresh machine (or a slim CI
image); binaries such as ``openssl`` or ``systemd-analyze`` are not, and a test that runs
one must say so instead of failing with ``FileNotFoundError``.
"""

from __future__ import annotations

import shutil

import pytest

# Where each tool comes from on Debian/Ubuntu, for the skip reason.
APT_PACKAGE = {
    "openssl": "openssl",
    "systemd-analyze": "systemd",
    "valgrind": "valgrind",
    "callgrind_annotate": "valgrind",
    "callgrind_control": "valgrind",
}


def missing_reason(*names: str) -> str | None:
    """Why a test needing ``names`` cannot run here, or None when they are all on PATH."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return None
    packages = sorted({APT_PACKAGE.get(name, name) for name in missing})
    return (
        f"{', '.join(missing)} not on PATH (optional system tool; "
        f"Debian/Ubuntu: apt-get install {' '.join(packages)})"
    )


def requires_tool(*names: str) -> pytest.MarkDecorator:
    """A mark for a test that runs ``names``."""
    reason = missing_reason(*names)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def skip_without(*names: str) -> None:
    """For a fixture that runs ``names``: skip the tests using it when one is missing."""
    reason = missing_reason(*names)
    if reason is not None:
        pytest.skip(reason)
