"""``--shard K/N``: a stable, documented split of agents across replicas."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import pytest

from letta_otel.config.shard import Shard, parse_shard, shard_of
from letta_otel.config.values import InvalidValue
from letta_otel.selection.sharding import keep_own


@dataclass
class Item:
    agent_id: str | None


AGENTS = [f"agent-{i:08x}-0000-4000-8000-000000000000" for i in range(600)]


def test_the_documented_formula() -> None:
    agent = "agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5"
    digest = hashlib.sha256(b"letta-otel/shard/" + agent.encode()).digest()
    assert shard_of(agent, 7) == int.from_bytes(digest[:8], "big") % 7
    assert shard_of(None, 5) == shard_of("", 5)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_every_agent_has_exactly_one_replica(n: int) -> None:
    shards = [Shard(k, n) for k in range(1, n + 1)]
    for agent in AGENTS:
        assert sum(s.owns(agent) for s in shards) == 1
    counts = Counter(shard_of(a, n) for a in AGENTS)
    assert min(counts.values()) > len(AGENTS) / n * 0.7  # roughly even


def test_keep_own_filters_by_agent() -> None:
    items = [Item(a) for a in AGENTS[:50]] + [Item(None)]
    first, second = keep_own(Shard(1, 2), items), keep_own(Shard(2, 2), items)
    assert len(first) + len(second) == len(items)
    assert not {id(i) for i in first} & {id(i) for i in second}
    assert keep_own(None, items) == items


@pytest.mark.parametrize("raw", ["0/3", "4/3", "3", "a/b", "1/0", "1/2000"])
def test_bad_shards_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_shard(raw)


def test_good_shards_parse() -> None:
    assert parse_shard("2/3") == Shard(2, 3)
    assert parse_shard(" 1 / 1 ") == Shard(1, 1)
    assert parse_shard("") is None
