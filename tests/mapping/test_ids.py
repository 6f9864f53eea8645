"""The id scheme is a public contract: these values must never change within v1."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from letta_otel import cli
from letta_otel.mapping import ids


def test_run_trace_id_is_the_run_uuid() -> None:
    run_id = "run-d74da3da-b028-44c4-8ac7-66b9ccabfbe7"
    assert ids.format_trace_id(ids.trace_id_from_letta_id(run_id)) == (
        "d74da3dab02844c48ac766b9ccabfbe7"
    )


def test_non_uuid_ids_hash_with_a_versioned_label() -> None:
    expected = hashlib.sha256(b"letta-otel/v1/trace/run-custom").digest()[:16]
    assert ids.trace_id_from_letta_id("run-custom") == int.from_bytes(expected, "big")


def test_span_ids_are_versioned_hashes_per_kind() -> None:
    step = "step-471766e9-dd3a-4a59-b76b-644b37344378"
    expected = hashlib.sha256(f"letta-otel/v1/step/{step}".encode()).digest()[:8]
    assert ids.span_id("step", step) == int.from_bytes(expected, "big")
    assert len({ids.span_id(k, step) for k in ("run", "step", "llm", "tool")}) == 4
    assert ids.format_span_id(ids.span_id("step", step)) == "06ee1a1ce3073d54"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("96757f51c1143d7865af3898afb8b50b", 0x96757F51C1143D7865AF3898AFB8B50B),
        ("96757F51C1143D7865AF3898AFB8B50B", 0x96757F51C1143D7865AF3898AFB8B50B),
        ("0" * 32, None),
        ("xyz", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_letta_trace_id(value: str | None, expected: int | None) -> None:
    assert ids.parse_letta_trace_id(value) == expected


@given(st.text(min_size=1, max_size=80))
def test_ids_are_valid_for_any_input(letta_id: str) -> None:
    trace = ids.trace_id_from_letta_id(letta_id)
    span = ids.span_id("step", letta_id)
    assert 0 < trace < 2**128
    assert 0 < span < 2**64
    assert trace == ids.trace_id_from_letta_id(letta_id)


def test_cli_prints_the_trace_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["trace-id", "run-d74da3da-b028-44c4-8ac7-66b9ccabfbe7"]) == 0
    assert capsys.readouterr().out.split() == [
        "run-d74da3da-b028-44c4-8ac7-66b9ccabfbe7",
        "d74da3dab02844c48ac766b9ccabfbe7",
    ]
