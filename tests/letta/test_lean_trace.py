"""Lean provider traces: the prompt is skipped when no content is captured, and no span
may change for it (on every real sample trace and on odd documents)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from letta_otel.letta.decode import (
    LEAN_REQUEST_VALUE_BYTES,
    _LeanTrace,
    _Typed,
    lean_trace,
    lean_trace_fields,
    lean_trace_json,
)
from letta_otel.letta.models import ModelError, ProviderTrace, convert
from letta_otel.mapping import ids
from letta_otel.mapping.spans import map_step
from tests.mapping.test_spans import CTX, span_dict
from tests.samples import SAMPLES, SCENARIOS, load_scenario
from tests.strategies import TRACE_SAMPLES, mutated

TRACE_FILES = sorted((SAMPLES / "scenarios").glob("*/step*_trace.json"))


def _bodies() -> list[tuple[Path, bytes]]:
    # As served: the sample files are pretty-printed; the server's answers are compact.
    return [(path, orjson.dumps(orjson.loads(path.read_bytes()))) for path in TRACE_FILES]


@pytest.mark.parametrize(
    ("path", "body"), _bodies(), ids=lambda v: v.parent.name if isinstance(v, Path) else ""
)
def test_lean_is_the_full_document_minus_the_long_request_values(path: Path, body: bytes) -> None:
    full, lean = orjson.loads(body), lean_trace_json(body)
    if full is None:
        assert lean is None
        return
    assert {k: v for k, v in lean.items() if k != "request_json"} == {
        k: v for k, v in full.items() if k != "request_json"
    }
    request = full.get("request_json")
    if not isinstance(request, dict):
        assert lean.get("request_json") == request
        return
    kept = {k: v for k, v in request.items() if len(orjson.dumps(v)) <= LEAN_REQUEST_VALUE_BYTES}
    assert lean["request_json"] == kept
    assert "messages" in request and "messages" not in lean["request_json"]  # the prompt


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_span_changes_when_the_trace_is_lean(name: str) -> None:
    for record in load_scenario(name).steps:
        if record.trace is None:
            continue
        lean_trace = convert(
            ProviderTrace, lean_trace_json(orjson.dumps(msgspec.to_builtins(record.trace)))
        )
        lean = dataclasses.replace(record, trace=lean_trace, memo={})
        trace_id = ids.trace_id_from_letta_id(record.step.run_id or record.step.id)
        assert [span_dict(s) for s in map_step(lean, CTX, trace_id)] == [
            span_dict(s) for s in map_step(record, CTX, trace_id)
        ]


ODD_DOCUMENTS = [
    b"null",
    b"[1, 2]",  # not an object: the full parse hands it on, validation rejects it
    b'{"request_json": null, "id": "x"}',
    b'{"request_json": "text", "id": "x"}',
    b'{"id": "x", "latency_ms": 1e400}',  # out of float range for one parser
    b'{"id": "x", "request_json": {"seed": 123456789012345678901234567890}}',
    b'{"id": "x", "request_json": {"model": "m", "messages": ["' + b"a" * 5000 + b'"]}}',
]


@pytest.mark.parametrize("body", ODD_DOCUMENTS)
def test_odd_documents_decode_as_the_full_parse_would(body: bytes) -> None:
    try:
        full = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            lean_trace_json(body)
        return
    lean = lean_trace_json(body)
    if isinstance(full, dict) and isinstance(full.get("request_json"), dict):
        full["request_json"] = {
            k: v
            for k, v in full["request_json"].items()
            if len(orjson.dumps(v)) <= LEAN_REQUEST_VALUE_BYTES
        }
    assert lean == full


def test_malformed_json_is_reported_as_the_full_parse_reports_it() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        lean_trace_json(b'{"id": "x", "request_json": {"model": ')


def test_a_key_that_is_not_utf8_is_reported_as_the_full_parse_reports_it() -> None:
    # msgspec raises UnicodeDecodeError for it, which the client would not catch.
    for body in (b'{"\xff": 1}', b'{"request_json": {"\xff": 1}}'):
        with pytest.raises(orjson.JSONDecodeError):
            lean_trace_json(body)
    with pytest.raises(orjson.JSONDecodeError):
        lean_trace_fields(b'{"request_json": {"\xff": 1}}')


# --- lean_trace_fields: the daemon's one-pass form of the lean parse -----------------------


def _outcome(decode: Any, body: bytes) -> Any:
    """The ProviderTrace (or None) a decoder's output validates to, or how it fails."""
    try:
        doc = decode(body)
    except orjson.JSONDecodeError:
        return "JSONDecodeError"
    if doc is None:
        return None
    try:
        return convert(ProviderTrace, doc)
    except ModelError:
        return "ModelError"  # which field msgspec names first depends on the key order


def _built(body: bytes) -> Any:
    """What ``lean_trace`` itself gives (it builds the model directly when it can)."""
    try:
        return lean_trace(body)
    except orjson.JSONDecodeError:
        return "JSONDecodeError"
    except ModelError:
        return "ModelError"


def test_the_one_pass_struct_covers_every_model_field() -> None:
    assert set(_LeanTrace.__struct_fields__) == set(ProviderTrace.__struct_fields__)


@pytest.mark.parametrize(
    ("path", "body"), _bodies(), ids=lambda v: v.parent.name if isinstance(v, Path) else ""
)
def test_fields_give_the_same_trace_on_every_sample(path: Path, body: bytes) -> None:
    assert _outcome(lean_trace_fields, body) == _outcome(lean_trace_json, body)
    assert _built(body) == _outcome(lean_trace_json, body)
    if body != b"null":  # (a step whose trace was never written)
        assert type(lean_trace_fields(body)) is _Typed  # the direct build is what ran


@pytest.mark.parametrize(
    ("body", "typed"),
    [
        (b'{"id": "x", "latency_ms": 12}', True),
        (b'{"id": "x", "latency_ms": 12.5, "response_json": null}', True),
        (b'{"id": "x", "latency_ms": 9007199254740993}', False),
        (b'{"id": "x", "latency_ms": true}', False),
        (b'{"id": "x", "latency_ms": "12.5"}', False),
        (b'{"id": "x", "llm_config": [1]}', False),
        (b'{"created_at": "2026-11-21T22:55:37", "updated_at": "2026-11-21T22:55:37+02:00"}', True),
    ],
)
def test_the_direct_build_gives_what_validation_gives(body: bytes, typed: bool) -> None:
    assert (type(lean_trace_fields(body)) is _Typed) is typed
    built = _built(body)
    assert built == _outcome(lean_trace_json, body)
    if isinstance(built, ProviderTrace):
        assert built.latency_ms is None or type(built.latency_ms) is float
        assert built.created_at is None or built.created_at.tzinfo is not None


@pytest.mark.parametrize(
    "body",
    [
        *ODD_DOCUMENTS,
        b'{"id": 5}',
        b'{"id": "x", "id": null}',
        b'{"i\\u0064": "x", "agent_tags": null, "source": null}',
        b'{"request_json": {"a": 1}, "request_json": "text"}',
        b'{"request_json": "text", "request_json": {"a": 1}}',
        b'{"agent_tags": ["a", 1]}',
        b'{"latency_ms": "12.5", "created_at": "2026-11-21T22:55:37z"}',
        b'{"created_at": "yesterday", "response_json": [1]}',
        b'{"id": "x", "response_json": {"n": 123456789012345678901234567890}}',
        b'{"id": "\\ud800"}',
        b'{"id": "x", "llm_config": {"a": 1e400}}',
        b'{"id": "x", "request_json": {"a": 1e400}}',
        b'{"id": "x"',
        b"",
    ],
)
def test_fields_give_the_same_trace_on_odd_documents(body: bytes) -> None:
    assert _outcome(lean_trace_fields, body) == _outcome(lean_trace_json, body)
    assert _built(body) == _outcome(lean_trace_json, body)


@settings(max_examples=300, deadline=None)
@given(raw=st.sampled_from(TRACE_SAMPLES).flatmap(lambda sample: mutated(sample, 6)))
def test_fields_give_the_same_trace_on_mutated_samples(raw: Any) -> None:
    body = json.dumps(raw).encode()  # orjson.dumps refuses integers beyond 64 bits
    found, lean = _outcome(lean_trace_fields, body), _outcome(lean_trace_json, body)
    assert _built(body) == found
    if lean != "JSONDecodeError":
        assert found == lean
    else:
        # Keys the model does not read are skipped unparsed (unless the document takes
        # the general path): a value there that orjson rejects (a number beyond the
        # float range, say) need not sink the trace.
        read = {k: v for k, v in raw.items() if k in ProviderTrace.__struct_fields__}
        assert found in (lean, _outcome(lean_trace_json, json.dumps(read).encode()))
