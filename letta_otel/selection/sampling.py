"""Run-level sampling that never hides a failure (pure).

A *run* is kept or dropped as a whole, so a trace is never partial:

* a run with a failure is always kept: a step ``failed``, ``cancelled`` or incomplete
  (still pending after ``pending_timeout``), or the run ``failed``, ``cancelled`` or
  ``expired`` — its spans carry ``SampleRate = 1``;
* any other run is kept when ``h(run_id) * N < 2**64`` where ``ratio = 1/N`` and
  ``h(id)`` is the first 8 bytes, big-endian, of ``sha256("letta-otel/v1/sample/" + id)``
  (so ``h / 2**64`` is uniform in [0, 1) and the rule is ``h / 2**64 < ratio``); its spans
  carry ``SampleRate = N``. Reproduce a decision with::

      python -c 'import hashlib,sys; h=int.from_bytes(hashlib.sha256(
          b"letta-otel/v1/sample/"+sys.argv[1].encode()).digest()[:8],"big");
          print(h*int(sys.argv[2]) < 2**64)' run-... 10

The decision depends only on the run id and Letta's data, so replicas and restarts agree,
and a run kept at 1/10 is also kept at 1/5 (lowering the ratio keeps a subset). A step
without a run is decided alone, by its own id. ``ratio = 0`` keeps only runs with a
failure (they carry ``SampleRate = 1``).

``SampleRate`` is Honeycomb's attribute (a whole number N: "this event stands for N");
Honeycomb multiplies counts, sums and percentiles by it. Nothing is added at ratio 1.
The pipeline puts it on the spans (:func:`letta_otel.mapping.span_copy.with_sample_rate`);
this module only decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

HASH_PREFIX = b"letta-otel/v1/sample/"
_HASH_RANGE = 2**64

FAILED_STEP_STATUSES = frozenset({"failed", "cancelled"})
FAILED_RUN_STATUSES = frozenset({"failed", "cancelled", "expired"})


def sample_hash(key: str) -> int:
    """``h(key)``: 64 uniform bits from the id (see the module docstring)."""
    digest = hashlib.sha256(HASH_PREFIX + key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Sampler:
    """Keeps a ``ratio`` (0, 1 or 1/N) of the runs without a failure."""

    ratio: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"sample ratio must be within [0, 1], got {self.ratio}")

    @property
    def active(self) -> bool:
        return self.ratio < 1

    @property
    def one_in(self) -> int | None:
        """N of ``ratio = 1/N``; None at ratio 0 (no successful run is kept)."""
        return round(1 / self.ratio) if self.ratio > 0 else None

    def keeps(self, key: str) -> bool:
        n = self.one_in
        return n is not None and sample_hash(key) * n < _HASH_RANGE


Reason = Literal["failure", "sampled", "dropped", "forced"]


@dataclass(frozen=True)
class Verdict:
    keep: bool
    sample_rate: int  # SampleRate of the kept spans; 1 = stands for itself only
    reason: Reason


@dataclass(frozen=True)
class StepView:
    status: str | None
    incomplete: bool = False

    @property
    def is_failure(self) -> bool:
        return self.incomplete or self.status in FAILED_STEP_STATUSES


def has_failure(
    steps: Iterable[StepView], *, run_status: str | None = None, run_incomplete: bool = False
) -> bool:
    return (
        run_incomplete
        or run_status in FAILED_RUN_STATUSES
        or any(step.is_failure for step in steps)
    )


def decide(
    key: str,
    sampler: Sampler,
    steps: Iterable[StepView],
    *,
    run_status: str | None = None,
    run_incomplete: bool = False,
    force_keep: bool = False,
) -> Verdict:
    """Keep or drop one run (``key`` = run id; a step id for a step without a run).

    ``force_keep``: part of the run already went out (e.g. exported before sampling
    was turned on), so dropping the rest would leave a partial trace.
    """
    if has_failure(steps, run_status=run_status, run_incomplete=run_incomplete):
        return Verdict(True, 1, "failure")
    if sampler.keeps(key):
        return Verdict(True, sampler.one_in or 1, "sampled")
    if force_keep:
        return Verdict(True, 1, "forced")
    return Verdict(False, 0, "dropped")
