"""The SQLite checkpoint (bottom floor: imports nothing else of letta-otel).

* :mod:`.schema` — the tables and the migrations of older files;
* :mod:`.store` — :class:`StateStore`: the lock, the transactions and every operation;
* :mod:`.rows` — what it hands out (open steps, owed LLM spans, run selections) and
  ``StateError``.
"""

from __future__ import annotations

from letta_otel.state.rows import OpenRun, OpenStep, OwedLlm, RunSelection, StateError
from letta_otel.state.schema import SCHEMA_VERSION
from letta_otel.state.store import StateStore

__all__ = [
    "SCHEMA_VERSION",
    "OpenRun",
    "OpenStep",
    "OwedLlm",
    "RunSelection",
    "StateError",
    "StateStore",
]
