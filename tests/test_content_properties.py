"""Property tests for content capture on mutated real Letta JSON (see test_properties).

Whatever Letta serves, with capture on: ``map_step`` is total, every span still passes
the general span checks (SPAN_ONLY) and encodes with the real OTLP encoder without
losing an attribute, every string respects the attribute byte limit, every span the
span budget, and the content parses and validates against the semconv schemas.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from letta_otel.mapping import semconv as sc
from letta_otel.mapping.capture import CaptureMode, ContentPolicy
from letta_otel.mapping.content import llm_content
from letta_otel.mapping.limits import Limits
from letta_otel.mapping.records import StepRecord
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.mapping.spans import map_step
from tests.mapping.test_content import (
    ANTHROPIC_REQUEST,
    ANTHROPIC_RESPONSE,
    GOOGLE_REQUEST,
    GOOGLE_RESPONSE,
    RESPONSES_REQUEST,
    RESPONSES_RESPONSE,
)
from tests.semconv_schemas import FILES, plain, validate
from tests.strategies import mutated, payloads, step_records
from tests.test_properties import CTX, _trace_id_for, assert_encodes, check_step_spans

MODES = st.sampled_from([CaptureMode.SPAN_ONLY, CaptureMode.EVENT_ONLY, CaptureMode.SPAN_AND_EVENT])
IDS = {sc.LETTA_STEP_ID, sc.LETTA_RUN_ID, sc.LETTA_AGENT_ID, sc.TOOL_CALL_ID}


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    return len(json.dumps(plain(value), ensure_ascii=False, separators=(",", ":")).encode())


@settings(max_examples=200, deadline=None)
@given(record=step_records(), mode=MODES, limit=st.sampled_from([256, 2048, 16384]))
def test_capture_is_total_valid_and_bounded(
    record: StepRecord, mode: CaptureMode, limit: int
) -> None:
    span_budget = 64 * 1024
    policy = ContentPolicy(
        mode, limits=Limits(max_attribute_bytes=limit, max_span_bytes=span_budget)
    )
    trace_id = _trace_id_for(record)
    spans = map_step(record, replace(CTX, content=policy), trace_id)
    if mode is CaptureMode.SPAN_ONLY:  # event values are structured, beyond check_span
        check_step_spans(record, trace_id, spans).assert_clean()
    assert_encodes(spans)
    ids_size = sum(len(str(v).encode()) for k, v in (spans[0].attributes or {}).items() if k in IDS)
    for span in spans:
        attrs = span.attributes or {}
        for key, value in attrs.items():
            if key not in IDS and isinstance(value, str):
                assert len(value.encode()) <= limit, key
        for key in FILES:
            if key in attrs:
                validate(key, json.loads(str(attrs[key])))
        for key in (sc.TOOL_CALL_ARGUMENTS, sc.TOOL_CALL_RESULT):
            if key in attrs:
                assert len(str(attrs[key]).encode()) <= limit
        for event in span.events:
            for key, value in (event.attributes or {}).items():
                assert _size(value) <= limit or key in IDS, (event.name, key)
                if key in FILES:
                    validate(key, plain(value))
        if ids_size < 1024:  # ids are never cut: a giant one can exceed any budget
            assert estimate_span_bytes(span) <= span_budget


# The documented shapes of the other providers, mutated like the real samples.
OTHER_REQUESTS = st.sampled_from([ANTHROPIC_REQUEST, GOOGLE_REQUEST, RESPONSES_REQUEST])
OTHER_RESPONSES = st.sampled_from([ANTHROPIC_RESPONSE, GOOGLE_RESPONSE, RESPONSES_RESPONSE])


@settings(max_examples=300, deadline=None)
@given(
    request=payloads("request_json") | OTHER_REQUESTS.flatmap(mutated),
    response=payloads("response_json") | OTHER_RESPONSES.flatmap(mutated),
)
# Found by CI: a schema part-type key with a non-string value made an invalid part.
@example(
    request={**GOOGLE_REQUEST, "systemInstruction": {"parts": [{"text": []}]}},
    response=GOOGLE_RESPONSE,
)
def test_conversion_is_total_and_schema_valid(request: Any, response: Any) -> None:
    content = llm_content(request, response)
    for key, value in (
        (sc.SYSTEM_INSTRUCTIONS, content.system_instructions),
        (sc.INPUT_MESSAGES, content.input_messages),
        (sc.OUTPUT_MESSAGES, content.output_messages),
        (sc.TOOL_DEFINITIONS, content.tool_definitions),
    ):
        if value is not None:
            json.dumps(value)  # plain JSON data
            validate(key, value)
