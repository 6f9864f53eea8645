"""Scale-out: ``--shard K/N`` splits the work by agent across N replicas.

Every replica lists the same steps, keeps only those of its own agents, and has its
own state file. Which agent belongs to which replica is the configuration's rule
(:mod:`letta_otel.config.shard`): a hash of the agent id, stable across versions and
machines, so a replica restarted with the same ``K/N`` keeps its agents; changing ``N``
moves agents between replicas (start the new set with fresh state files and an initial
lookback covering the switch-over, or accept duplicates with identical span ids around
it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from letta_otel.config.shard import Shard

T = TypeVar("T")


def keep_own(shard: Shard | None, items: Iterable[T]) -> list[T]:
    """The items (steps or runs, anything with ``agent_id``) this replica handles."""
    if shard is None or shard.count <= 1:
        return list(items)
    return [item for item in items if shard.owns(getattr(item, "agent_id", None))]
