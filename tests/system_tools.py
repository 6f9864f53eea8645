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


def requires_tool(*names: str) -> pytest.MarkDecorator:
    missing = [name for name in names if shutil.which(name) is None]
    packages = sorted({APT_PACKAGE.get(name, name) for name in missing})
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)} not on PATH (optional system tool; "
        f"Debian/Ubuntu: apt-get install {' '.join(packages)})",
    )
