"""Scale-out: ``--shard K/N`` splits the work by agent across N replicas.

Every replica lists the same steps, keeps only those of its own agents, and has its
own state file. An agent belongs to replica ``K`` (1-based) of ``N`` when::

    h = sha256(b"letta-otel/shard/" + agent_id.encode()).digest()
    int.from_bytes(h[:8], "big") % N == K - 1

Steps without an agent id hash as the empty string. The formula is stable across
versions and machines, so a replica restarted with the same ``K/N`` keeps its agents;
changing ``N`` moves agents between replicas (start the new set with fresh state files
and an initial lookback covering the switch-over, or accept duplicates with identical
span ids around it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from letta_otel._config_parsing import InvalidValue

MAX_SHARDS = 1024
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # K, 1-based
    count: int  # N

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, agent_id: str | None) -> bool:
        return self.count <= 1 or shard_of(agent_id, self.count) == self.index - 1


def shard_of(agent_id: str | None, count: int) -> int:
    digest = hashlib.sha256(b"letta-otel/shard/" + (agent_id or "").encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(raw: object) -> Shard | None:
    """``"K/N"`` with 1 <= K <= N <= 1024; empty means no sharding."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, Shard):
        return raw
    match = _SHARD.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise InvalidValue("must be K/N, e.g. 2/3 for the second of three replicas")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count <= MAX_SHARDS:
        raise InvalidValue(f"must be K/N with 1 <= K <= N <= {MAX_SHARDS}")
    return Shard(index, count)


T = TypeVar("T")


def keep_own(shard: Shard | None, items: Iterable[T]) -> list[T]:
    """The items (steps or runs, anything with ``agent_id``) this replica handles."""
    if shard is None or shard.count <= 1:
        return list(items)
    return [item for item in items if shard.owns(getattr(item, "agent_id", None))]
