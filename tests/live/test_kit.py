"""What the live kit promises: loopback only, postgres not as root, the 0.16.8 bug intact."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests import listening
from tests.live.conftest import KIT_TIMEOUT, LettaKit
from tests.plain_http import Http

pytestmark = [pytest.mark.live, KIT_TIMEOUT]


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


@pytest.mark.skipif(not listening.supported(), reason="reads /proc/<pid>/net/tcp: Linux only")
def test_every_kit_process_listens_on_loopback_only(letta_kit: LettaKit) -> None:
    letta_kit.fixed_base_url()  # both Letta instances up
    state = letta_kit.kit.load()
    assert state is not None
    assert set(state.pids) >= {"postgres", "fake_llm", "letta", "letta_fixed"}
    for name, pid in state.pids.items():
        addresses = listening.listening_addresses(pid)
        assert state.ports[name] in {port for _, port in addresses}, (name, addresses)
        exposed = [a for a in addresses if not listening.is_loopback(a[0])]
        assert not exposed, f"{name} listens beyond loopback: {exposed}"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could run postgres as root")
def test_postgres_runs_unprivileged(letta_kit: LettaKit) -> None:
    state = letta_kit.kit.load()
    assert state is not None and state.pg_account in {"postgres", "nobody"}
    assert uid_of(state.pids["postgres"]) != 0


def test_stock_server_keeps_the_list_steps_bug_and_the_fixed_one_does_not(
    letta_kit: LettaKit,
) -> None:
    stock = letta_kit.http.get("/v1/steps/", params={"limit": 1})
    assert stock.status_code == 400
    assert "Argument order does not match type" in stock.json()["detail"]
    fixed = Http(letta_kit.fixed_base_url())
    newest = fixed.get("/v1/steps/", params={"limit": 3})
    assert newest.status_code == 200 and len(newest.json()) == 3
    oldest = fixed.get("/v1/steps/", params={"limit": 3, "order": "asc"}).json()
    assert oldest[0]["id"] != newest.json()[0]["id"]  # order reaches the query


def test_seeded_steps_carry_letta_trace_ids(letta_kit: LettaKit) -> None:
    state = letta_kit.kit.load()
    if state is None or not state.with_otel:
        pytest.skip("kit runs without its OTLP sink (LETTA_KIT_OTEL=0)")
    runs = letta_kit.http.get("/v1/runs/", params={"limit": 5}).json()
    steps = letta_kit.http.get(f"/v1/runs/{runs[0]['id']}/steps").json()
    assert steps and all(re.fullmatch(r"[0-9a-f]{32}", s["trace_id"] or "") for s in steps)
