"""Deterministic, versioned trace and span ids (scheme ``v1``).

Re-exporting the same Letta objects must give byte-identical ids, so a backend
de-duplicates a re-sent batch instead of showing two trees. The rules:

* trace id of a run: the 128 bits of the run's UUID (``run-d74da3da-b028-...`` →
  ``d74da3dab02844c48ac766b9ccabfbe7``), so anyone can compute it by hand. A step
  without a run uses its own UUID the same way. Ids that are not ``<prefix>-<uuid>``
  fall back to the first 16 bytes of ``sha256("letta-otel/v1/trace/" + id)``.
* span ids: the first 8 bytes of ``sha256("letta-otel/v1/<kind>/<key>")`` with kind
  ``run`` (key run id), ``step`` (step id), ``llm`` (step id) or ``tool``
  (``<step id>/<tool call id>``).
* with ``adopt_letta_trace_id`` the trace id is Letta's own ``step.trace_id`` (32 hex),
  so these spans join the server's native traces.

Changing any rule changes ``ID_SCHEME``; it is exported as a resource attribute.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Literal

ID_SCHEME = "v1"

SpanKindKey = Literal["run", "step", "llm", "tool"]

_UUID_ID = re.compile(
    r"^[a-z_]+-([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$"
)
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _digest(label: str) -> bytes:
    return hashlib.sha256(f"letta-otel/{ID_SCHEME}/{label}".encode()).digest()


def _nonzero(value: int, label: str) -> int:
    # An all-zero id is invalid in OTLP; sha256 never yields it in practice, but be total.
    return value or int.from_bytes(_digest(label + "/nz")[:8], "big") or 1


@lru_cache(maxsize=4096)  # pure; every step of a run and the run itself ask for it
def trace_id_from_letta_id(letta_id: str) -> int:
    """The trace id of a run (or of a run-less step)."""
    match = _UUID_ID.match(letta_id.lower())
    if match:
        value = int("".join(match.groups()), 16)
        if value:
            return value
    return _nonzero(int.from_bytes(_digest(f"trace/{letta_id}")[:16], "big"), letta_id)


_PREFIX = f"letta-otel/{ID_SCHEME}/"
_sha256 = hashlib.sha256


def span_id(kind: SpanKindKey, key: str) -> int:
    # _digest inlined, _nonzero only when needed: three or more ids per step.
    value = int.from_bytes(_sha256(f"{_PREFIX}{kind}/{key}".encode()).digest()[:8], "big")
    return value or _nonzero(value, f"{kind}/{key}")


def parse_letta_trace_id(value: str | None) -> int | None:
    """Letta's own OTel trace id, when it is a valid non-zero 32-hex id."""
    if not value:
        return None
    text = value.strip().lower()
    if not _HEX32.match(text):
        return None
    return int(text, 16) or None


def format_trace_id(value: int) -> str:
    return f"{value:032x}"


def format_span_id(value: int) -> str:
    return f"{value:016x}"
