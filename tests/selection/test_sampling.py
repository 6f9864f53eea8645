"""Sampling: deterministic per run, failures always kept whole, the ratio holds."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from letta_otel.mapping.span_copy import SAMPLE_RATE_ATTRIBUTE, with_sample_rate
from letta_otel.selection.sampling import (
    FAILED_RUN_STATUSES,
    Sampler,
    StepView,
    decide,
    sample_hash,
)
from tests.fakes.letta_api import FakeLettaData

run_ids = st.uuids(version=4).map(lambda u: f"run-{u}")
step_views = st.builds(
    StepView,
    st.sampled_from(("success", "failed", "cancelled", "pending", None)),
    st.booleans(),
)
one_ins = st.integers(min_value=1, max_value=1000)


def test_hash_is_the_documented_formula() -> None:
    run_id = "run-d74da3da-b028-44c4-8ac7-66b9ccabfbe7"
    digest = hashlib.sha256(b"letta-otel/v1/sample/" + run_id.encode()).digest()
    assert sample_hash(run_id) == int.from_bytes(digest[:8], "big")
    # Pinned: changing the formula changes which runs replicas keep (a new id scheme).
    assert sample_hash(run_id) == 0x6BC613925CE5B5FE
    assert Sampler(0.5).keeps(run_id)  # h / 2**64 = 0.42 < 1/2
    assert not Sampler(0.25).keeps(run_id)


def test_sampler_bounds() -> None:
    assert not Sampler(1.0).active
    assert Sampler(1.0).keeps("run-x")
    assert Sampler(0.0).active
    assert Sampler(0.0).one_in is None
    assert not Sampler(0.0).keeps("run-x")
    assert Sampler(0.1).one_in == 10
    assert Sampler(1 / 3).one_in == 3
    with pytest.raises(ValueError, match="within"):
        Sampler(1.5)


@given(run_ids, one_ins)
def test_keeping_is_deterministic_and_nested(run_id: str, n: int) -> None:
    sampler = Sampler(1 / n)
    assert sampler.keeps(run_id) is Sampler(1 / n).keeps(run_id)
    if sampler.keeps(run_id):  # kept at 1/n: also kept at every larger ratio
        assert Sampler(1 / max(n // 2, 1)).keeps(run_id)
        assert Sampler(1.0).keeps(run_id)


@given(
    run_ids,
    one_ins,
    st.lists(step_views, max_size=6),
    st.sampled_from([*sorted(FAILED_RUN_STATUSES), "completed", None]),
)
def test_failures_are_always_kept_at_rate_one(
    run_id: str, n: int, steps: list[StepView], run_status: str | None
) -> None:
    for ratio in (0.0, 1 / n):
        verdict = decide(run_id, Sampler(ratio), steps, run_status=run_status)
        failure = run_status in FAILED_RUN_STATUSES or any(
            s.incomplete or s.status in ("failed", "cancelled") for s in steps
        )
        if failure:
            assert verdict.keep
            assert verdict.sample_rate == 1
            assert verdict.reason == "failure"
        else:
            assert verdict.keep is Sampler(ratio).keeps(run_id)
            assert verdict.sample_rate == (n if verdict.keep else 0)


@given(run_ids, st.lists(step_views, min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_decision_does_not_depend_on_step_order(
    run_id: str, steps: list[StepView], rnd: random.Random
) -> None:
    shuffled = list(steps)
    rnd.shuffle(shuffled)
    assert decide(run_id, Sampler(0.25), steps) == decide(run_id, Sampler(0.25), shuffled)


def test_forced_keep_when_part_of_the_run_is_out() -> None:
    dropped = next(f"run-{i}" for i in range(1000) if not Sampler(0.1).keeps(f"run-{i}"))
    assert not decide(dropped, Sampler(0.1), [StepView("success")]).keep
    forced = decide(dropped, Sampler(0.1), [StepView("success")], force_keep=True)
    assert (forced.keep, forced.sample_rate, forced.reason) == (True, 1, "forced")


def _kept_share(ids: Sequence[str], sampler: Sampler) -> float:
    return sum(sampler.keeps(i) for i in ids) / len(ids)


@pytest.mark.parametrize("n", [2, 4, 10, 100])
def test_kept_ratio_is_within_tolerance(n: int) -> None:
    rnd = random.Random(8)
    ids = [f"run-{uuid.UUID(int=rnd.getrandbits(128), version=4)}" for _ in range(40_000)]
    share = _kept_share(ids, Sampler(1 / n))
    sd = ((1 / n) * (1 - 1 / n) / len(ids)) ** 0.5
    assert abs(share - 1 / n) < 4 * sd, (share, 1 / n)


def test_generated_runs_keep_every_failure_whole_and_the_ratio() -> None:
    """2000 runs in the fake's random mix: every run with a failure kept, ~1/4 of the rest."""
    data = FakeLettaData.generate(2000, mix="random", seed=8)
    sampler = Sampler(0.25)
    kept_ok = total_ok = failures = 0
    for run in data.runs():
        views = [StepView(data.step(s)["status"]) for s in data.run_step_ids(run["id"])]
        verdict = decide(run["id"], sampler, views, run_status=run["status"])
        if run["status"] == "failed" or any(v.status == "failed" for v in views):
            failures += 1
            assert (verdict.keep, verdict.sample_rate) == (True, 1)
        else:
            total_ok += 1
            kept_ok += verdict.keep
            assert verdict.sample_rate == (4 if verdict.keep else 0)
    assert failures > 300
    sd = (0.25 * 0.75 / total_ok) ** 0.5
    assert abs(kept_ok / total_ok - 0.25) < 4 * sd, kept_ok / total_ok


def _span(attrs: dict[str, object]) -> ReadableSpan:
    return ReadableSpan(
        name="agent_step",
        context=SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED)),
        parent=SpanContext(1, 3, False, TraceFlags(TraceFlags.SAMPLED)),
        attributes=attrs,  # type: ignore[arg-type]
        kind=SpanKind.INTERNAL,
        start_time=10,
        end_time=20,
    )


def test_with_sample_rate_keeps_everything_else() -> None:
    original = _span({"letta.step.id": "step-1"})
    (tagged,) = with_sample_rate([original], 4)
    assert dict(tagged.attributes or {}) == {"letta.step.id": "step-1", SAMPLE_RATE_ATTRIBUTE: 4}
    assert tagged.context == original.context
    assert tagged.parent == original.parent
    assert (tagged.start_time, tagged.end_time, tagged.kind) == (10, 20, SpanKind.INTERNAL)
    assert SAMPLE_RATE_ATTRIBUTE not in (original.attributes or {})
