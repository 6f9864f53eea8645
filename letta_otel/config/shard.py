"""The shard value ``K/N`` and the rule that assigns an agent to a shard.

An agent belongs to replica ``K`` (1-based) of ``N`` when::

    h = sha256(b"letta-otel/shard/" + agent_id.encode()).digest()
    int.from_bytes(h[:8], "big") % N == K - 1

Steps without an agent id hash as the empty string. The formula is stable across
versions and machines (see :mod:`letta_otel.selection.sharding` for how replicas use it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from letta_otel.config.values import InvalidValue

__all__ = ["MAX_SHARDS", "Shard", "parse_shard", "shard_of"]

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
