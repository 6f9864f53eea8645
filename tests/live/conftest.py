"""The Letta kit (tests/live/kit) for the live tests: started once per session, or reused.

``letta_kit`` reuses a kit that is already up in ``LETTA_KIT_DIR`` (started by hand with
``python -m tests.live.kit start``, or kept by an earlier session with
``LETTA_KIT_KEEP=1``) and leaves it running. Otherwise it starts one (installing Letta
into /tmp on first use, a few minutes; then about a minute) and stops everything it
started when the session ends, failed tests included; a kit left behind by a session
that was killed is adopted, and so stopped, by the next one. The ``GET /v1/steps/``-fixed
instance starts in the background right away and is waited for only by the tests that
use it. Either way the stock server is seeded with every scenario (failures included)
before the first test. A machine-wide lock keeps two sessions from driving kits at once.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cached_venv import InstallError
from tests.live.kit import Http, Kit, KitError, SeedError, seed
from tests.machine_lock import exclusive_lock

LOCK_PATH = Path(tempfile.gettempdir()) / "letta-otel-live-tests.lock"
LOCK_TIMEOUT = 1200
# The first live test of a session also pays for the kit's setup: on a fresh machine that
# installs Letta (minutes), then starts and seeds it. Every live module uses this marker.
KIT_TIMEOUT = pytest.mark.timeout(1800 + LOCK_TIMEOUT)


@dataclass
class LettaKit:
    kit: Kit
    started_here: bool
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The stock server: GET /v1/steps/ answers 400, as in Letta 0.12.0-0.16.8."""
        return self.kit.url("letta")

    @property
    def http(self) -> Http:
        return Http(self.base_url)

    def fixed_base_url(self) -> str:
        """The instance with GET /v1/steps/ fixed (same database); waits until it is up."""
        try:
            started = time.monotonic()
            self.kit.start_fixed(wait=True)
            self.durations["wait for the fixed instance"] = time.monotonic() - started
        except KitError as exc:
            pytest.fail(f"the fixed Letta instance did not come up: {exc}", pytrace=False)
        return self.kit.url("letta_fixed")

    def seed(self, *only: str) -> None:
        started = time.monotonic()
        try:
            seed(self.base_url, only, log=sys.stdout)
        except (SeedError, OSError) as exc:
            pytest.fail(f"seeding the kit failed: {exc}\n{self.kit.log_tail()}", pytrace=False)
        key = f"seed({' '.join(only) or 'all'})"
        self.durations[key] = self.durations.get(key, 0.0) + time.monotonic() - started

    def log_tail(self) -> str:
        return "\n".join(self.kit.log_tail(name) for name in ("letta", "letta_fixed", "fake_llm"))


@pytest.fixture(scope="session")
def letta_kit() -> Iterator[LettaKit]:
    if not sys.platform.startswith("linux"):
        pytest.skip("the Letta kit runs on Linux only (it tells its processes apart in /proc)")
    kit = Kit()
    with exclusive_lock(
        LOCK_PATH, LOCK_TIMEOUT, held=f"another live-test session holds {LOCK_PATH}"
    ):
        started_here = fixed_here = False
        live = LettaKit(kit, started_here)
        try:
            try:
                live.started_here = started_here = kit.start()
                fixed_here = kit.start_fixed(wait=False)  # warms up during the seed
            except (KitError, InstallError, TimeoutError) as exc:
                pytest.fail(f"the Letta kit did not start: {exc}", pytrace=False)
            live.seed()
            yield live
        finally:
            keep = os.environ.get("LETTA_KIT_KEEP", "").strip() == "1"
            if keep:
                print(f"LETTA_KIT_KEEP=1: leaving the kit in {kit.dir} running")
                kit.release()
            elif started_here:
                kit.stop()
            elif fixed_here:
                kit.stop(("letta_fixed",))
            durations = {**kit.durations, **live.durations}
            print("live kit durations (s):", {k: round(v, 1) for k, v in durations.items()})
