"""Hypothesis strategies built from the real Letta 0.16.8 samples.

Everything starts from an object Letta actually served (``tests/fixtures/letta-samples``)
and is then mutated: keys dropped, set to null, retyped, replaced by arbitrary JSON or
edge values, timestamps rewritten (zone-less, offsets, garbage), unknown keys added.
Field shapes that the samples do not have only appear as deliberate garbage.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from msgspec.structs import replace

from letta_otel.letta.models import (
    Agent,
    LettaModel,
    Message,
    ModelError,
    ProviderTrace,
    Run,
    Step,
    StepMetrics,
    convert,
)
from letta_otel.mapping.records import RunRecord, StepRecord
from tests.samples import MEMGPT_AGENT_ID, SAMPLES, read_json

M = TypeVar("M", bound=LettaModel)
Json = Any
JsonPath = tuple[str | int, ...]

SCENARIO_DIR = SAMPLES / "scenarios"
TIMESTAMP_KEYS = ("created_at", "updated_at", "completed_at", "date")
NS = 1_000_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# --- the samples -------------------------------------------------------------------


@dataclass(frozen=True)
class StepBundle:
    """One sampled step with everything Letta returned for it, as raw JSON."""

    scenario: str
    step: dict[str, Any]
    trace: dict[str, Any] | None
    metrics: dict[str, Any]
    messages: list[Any]
    run: dict[str, Any]


def _companion(step_file: Path, suffix: str) -> Any:
    return read_json(step_file.with_name(f"{step_file.stem}_{suffix}.json"))


def _load_bundles() -> tuple[StepBundle, ...]:
    bundles = []
    for folder in sorted(p for p in SCENARIO_DIR.iterdir() if p.is_dir()):
        run_file = next(p for p in folder.glob("run_run-*.json") if p.stem.count("_") == 1)
        for step_file in sorted(folder.glob("step*_step-*.json")):
            if step_file.stem.count("_") != 1:
                continue
            bundles.append(
                StepBundle(
                    scenario=folder.name,
                    step=read_json(step_file),
                    trace=_companion(step_file, "trace"),
                    metrics=_companion(step_file, "metrics"),
                    messages=_companion(step_file, "messages"),
                    run=read_json(run_file),
                )
            )
    return tuple(bundles)


BUNDLES = _load_bundles()
AGENT_SAMPLES: tuple[dict[str, Any], ...] = (
    read_json(SAMPLES / "agent_v1.json"),
    # tests/samples.py builds the memgpt agent by hand: no agent file was captured.
    {"id": MEMGPT_AGENT_ID, "name": "otel-demo-memgpt", "agent_type": "memgpt_v2_agent"},
)


def _extra_list_items(pattern: str) -> list[Any]:
    items: list[Any] = []
    for path in sorted(SAMPLES.glob(pattern)):
        body = read_json(path)
        items.extend(body if isinstance(body, list) else [])
    return items


STEP_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    [b.step for b in BUNDLES]
    + _extra_list_items("scenarios/*/run_run-*_steps.json")
    + _extra_list_items("list_steps_patched/steps_list_*all.json")
)
RUN_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    {b.run["id"]: b.run for b in BUNDLES}.values()
) + tuple(_extra_list_items("runs_list.json"))
TRACE_SAMPLES: tuple[dict[str, Any], ...] = tuple(b.trace for b in BUNDLES if b.trace)
METRICS_SAMPLES: tuple[dict[str, Any], ...] = tuple(b.metrics for b in BUNDLES)
MESSAGE_SAMPLES: tuple[dict[str, Any], ...] = tuple(
    [m for b in BUNDLES for m in b.messages]
    + _extra_list_items("scenarios/*/run_run-*_messages.json")
)

# Every sample object by the model that reads it: property 1 mutates all of them.
MODEL_SAMPLES: dict[type[LettaModel], tuple[dict[str, Any], ...]] = {
    Step: STEP_SAMPLES,
    ProviderTrace: TRACE_SAMPLES,
    StepMetrics: METRICS_SAMPLES,
    Message: MESSAGE_SAMPLES,
    Run: RUN_SAMPLES,
    Agent: AGENT_SAMPLES,
}


def _walk_keys(value: Json) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from _walk_keys(child)
    elif isinstance(value, list):
        for child in value:
            yield from _walk_keys(child)


# Keys the provider readers look for. Only the OpenAI chat, Letta stream and error
# shapes were sampled; the others (Responses, Anthropic, Google) come from the
# documented readers and are used as *garbage* keys so arbitrary JSON reaches them.
_READER_KEYS = (
    "error", "error_type", "choices", "object", "output", "type", "content", "candidates",
    "id", "responseId", "model", "modelVersion", "finish_reason", "stop_reason",
    "finishReason", "status", "message", "tool_calls", "function", "name", "call_id",
    "tool_call", "parts", "functionCall", "generationConfig", "generation_config", "stop",
    "stop_sequences", "stopSequences", "max_completion_tokens", "max_tokens",
    "max_output_tokens", "maxOutputTokens", "n", "stream", "temperature", "top_p", "topP",
    "top_k", "topK", "frequency_penalty", "presence_penalty", "seed", "usage",
    "usageMetadata", "prompt_tokens_details", "input_tokens_details",
    "completion_tokens_details", "output_tokens_details", "prompt_tokens", "input_tokens",
    "promptTokenCount", "completion_tokens", "output_tokens", "candidatesTokenCount",
    "cached_tokens", "cache_read_input_tokens", "cachedContentTokenCount",
    "cache_creation_input_tokens", "reasoning_tokens", "thoughtsTokenCount",
    "model_endpoint_type", "model_endpoint", "handle",
)  # fmt: skip
_READER_STRINGS = (
    "message", "response", "function_call", "tool_use", "error", "stop", "tool_calls",
    "end_turn", "completed", "openai", "anthropic", "google_ai", "chat.completion",
)  # fmt: skip
PROVIDER_KEYS: tuple[str, ...] = tuple(
    sorted(
        set(_READER_KEYS)
        | {k for t in TRACE_SAMPLES for k in _walk_keys(t.get("response_json"))}
        | {k for t in TRACE_SAMPLES for k in _walk_keys(t.get("llm_config"))}
        | set(next(iter(TRACE_SAMPLES))["request_json"])
    )
)

# --- JSON values ---------------------------------------------------------------------

# Surrogate-free text: the models accept it and the OTLP encoder can serialise it.
weird_text = st.text(st.characters(codec="utf-8"), max_size=24)
_LONG_UNIT = st.sampled_from(["a", "é", "€", "🦙", "\u0301", "\u202e", "\x00", "\n", "ﷺ"])
long_text = st.builds(lambda unit, n: unit * n, _LONG_UNIT, st.integers(1000, 12_000))
WEIRD_STRINGS: tuple[str, ...] = (
    "", " ", "\x00", "\t\n", "null", "None", "NaN", "nan", "inf", "-inf", "Infinity",
    "1e400", "0", "-1", "1.5", "true", "false", "[]", "{}", '{"id": 1}', "run-", "step-",
    "run-00000000-0000-0000-0000-000000000000", "RUN-D74DA3DA-B028-44C4-8AC7-66B9CCABFBE7",
    "step-7703d0ed-f6b9-4fc8-add2-e7497cd9b052", "🦙" * 5, "\u202eevil", "z\u0301\u0301",
    "http://", "http://[::1", "https://host:99999/v1", "//:0", "ftp://h:1/x", "a:b@c:d",
    "0" * 32, "f" * 32, "Z", "T", "2026-11-21T22:55:37.174971Z",
)  # fmt: skip
# JSON *text* nested deeper than the C decoder's recursion limit (built lazily: short repr).
deeply_nested_text = st.builds(lambda opener, n: opener * n, st.sampled_from("[{"), st.just(5000))
text_values = st.one_of(weird_text, st.sampled_from(WEIRD_STRINGS), long_text, deeply_nested_text)

EDGE_INTS: tuple[int, ...] = (
    0, 1, -1, 2**31, -(2**31), 2**53 + 1, INT64_MAX, INT64_MIN, 2**63, INT64_MIN - 1,
    2**64 - 1, 2**64, 10**30, -(10**30), 10**400, -(10**400),
)  # fmt: skip
int_values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from(EDGE_INTS),
    st.integers(),
)
float_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 0.5, -1.5, 1e-300, 1e300, -1e300, 1.7976931348623157e308]),
)
json_scalars = st.one_of(st.none(), st.booleans(), int_values, float_values, text_values)
json_values: st.SearchStrategy[Json] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(weird_text, inner, max_size=4),
    max_leaves=12,
)

# --- timestamps --------------------------------------------------------------------------

_OFFSETS = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 330, -480, 840, -720, 345, 1, -1439, 1439)
)
_REALISTIC = st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31))
_ANY_DATE = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))
GARBAGE_TIMESTAMPS: tuple[Json, ...] = (
    "", " ", "yesterday", "2026-13-45T99:99:99", "2026-11-21", "22:55:37", "2026-11-21 22:55:37",
    "2026-11-21T22:55:37.174971ZZ", "2026-11-21T22:55:37+25:00", "2026-11-21T22:55:37z",
    "0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999",
    "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z",
    "2026-11-21T22:55:37.1749712345Z", "2026-W47-6T22:55", "20261121T225537Z",
    0, -1, 1_795_301_736, 1_795_301_736_848, 1_795_301_736_848_586_240, 1.5e9, 10**30, True,
)  # fmt: skip


@st.composite
def timestamps(draw: st.DrawFn) -> Json:
    """Letta-style ISO timestamps in every zone form, plus garbage."""
    moment = draw(st.one_of(_REALISTIC, _REALISTIC, _ANY_DATE))
    form = draw(st.sampled_from(["zoneless", "Z", "z", "offset", "space", "garbage"]))
    if form == "garbage":
        return draw(st.sampled_from(GARBAGE_TIMESTAMPS))
    spec = draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]))
    if form == "offset":
        return moment.replace(tzinfo=draw(st.sampled_from(_OFFSETS))).isoformat(timespec=spec)
    text = moment.isoformat(sep=" " if form == "space" else "T", timespec=spec)
    return text + {"Z": "Z", "z": "z"}.get(form, "")


edge_values = st.one_of(st.sampled_from(EDGE_INTS), text_values, float_values, timestamps())

# --- mutation --------------------------------------------------------------------------

_DROP = object()


def _apply(node: Json, path: JsonPath, op: Callable[[Json], Json]) -> Json:
    """``node`` with ``op`` applied at ``path``; containers on the path are copied."""
    if not path:
        return op(node)
    head, rest = path[0], path[1:]
    copy: dict[Any, Any] | list[Any] = dict(node) if isinstance(node, dict) else list(node)
    new = _apply(copy[head], rest, op)  # type: ignore[index]
    if new is _DROP:
        del copy[head]  # type: ignore[arg-type]
    else:
        copy[head] = new  # type: ignore[index]
    return copy


@st.composite
def _target(draw: st.DrawFn, root: Json) -> JsonPath:
    """A random walk from the root: shallow fields are hit most, deep ones sometimes."""
    path: list[str | int] = []
    node = root
    while isinstance(node, dict | list) and node:
        if path and not draw(st.booleans()):
            break
        if isinstance(node, dict):
            key = draw(st.sampled_from(list(node)))
            path.append(key)
            node = node[key]
        else:
            index = draw(st.integers(0, len(node) - 1))
            path.append(index)
            node = node[index]
    return tuple(path)


def _retype(value: Json) -> st.SearchStrategy[Json]:
    """The same value as another JSON type: "20" for 20, [x], {"value": x}, 20.0..."""
    options: list[Json] = [[value], {"value": value}, json.dumps(value, default=str)]
    if isinstance(value, bool):
        options += [int(value), str(value).lower()]
    elif isinstance(value, int):
        options += [str(value), float(value) if abs(value) < 2**1000 else 1e308, value != 0]
    elif isinstance(value, float):
        options += [str(value), int(value), value + 0.5]
    elif isinstance(value, str):
        options += [value.upper(), f" {value} ", len(value)]
    return st.sampled_from(options)


@st.composite
def _mutate_once(draw: st.DrawFn, root: Json) -> Json:
    op = draw(st.sampled_from(["drop", "null", "json", "edge", "retype", "unknown_key", "retime"]))
    if op == "retime":
        keys = [k for k in TIMESTAMP_KEYS if isinstance(root, dict) and k in root]
        if keys:
            key = draw(st.sampled_from(keys))
            return _apply(root, (key,), lambda _: draw(timestamps()))
        op = "edge"
    path = draw(_target(root))
    if op == "drop":
        return _apply(root, path, lambda _: _DROP) if path else root
    if op == "null":
        return _apply(root, path, lambda _: None) if path else root
    if op == "unknown_key":
        key = draw(st.one_of(weird_text, st.sampled_from(["id_", "tid", "x-new-field", "__v"])))
        value = draw(json_values)
        return _apply(
            root, path, lambda node: {**node, key: value} if isinstance(node, dict) else value
        )
    if not path:
        return root
    if op == "retype":
        return _apply(root, path, lambda node: draw(_retype(node)))
    return _apply(root, path, lambda _: draw(json_values if op == "json" else edge_values))


@st.composite
def mutated(draw: st.DrawFn, sample: Json, max_mutations: int = 6) -> Json:
    """``sample`` after 0..max_mutations random mutations (0 is the real object)."""
    value = sample
    for _ in range(draw(st.integers(0, max_mutations))):
        value = draw(_mutate_once(value))
    return value


# --- validation that keeps what it can ------------------------------------------------


def _prune(data: Json, loc: tuple[str | int, ...]) -> Json:
    """Remove the deepest existing key or list item on ``loc`` (see :func:`error_path`)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            break
        path.append(part)
        node = node[part]
    return _apply(data, tuple(path), lambda _: _DROP) if path else None


def error_path(exc: ModelError) -> tuple[str | int, ...]:
    """Where a validation error is (msgspec says it as "... - at `$.a[0].b`"); a
    dict's key (``[...]``) is not named: the path stops at the dict."""
    found = re.search(r" - at `\$(.*)`$", str(exc))
    path: list[str | int] = []
    for name, index, key in re.findall(
        r"\.(\w+)|\[(\d+)\]|\[(\.\.\.)\]", found[1] if found else ""
    ):
        if key:
            break
        path.append(name if name else int(index))
    return tuple(path)


def validate_lenient(model: type[M], raw: Json, required_id: str | None = None) -> M | None:
    """``model`` from ``raw``, dropping only the parts that fail validation.

    A required ``id`` that fails is replaced by ``required_id``. Returns None when the
    value is not an object at all.
    """
    data = raw
    for _ in range(30):
        if not isinstance(data, dict):
            return None
        if required_id is not None and not isinstance(data.get("id"), str):
            data = {**data, "id": required_id}
        try:
            return convert(model, data)
        except ModelError as exc:
            data = _prune(data, error_path(exc))
            if data is None:
                return None
    return None


# --- provider payloads -------------------------------------------------------------------

_provider_scalars = st.one_of(
    st.none(),
    st.booleans(),
    int_values,
    float_values,
    st.sampled_from(_READER_STRINGS),
    text_values,
)
_provider_keys = st.one_of(st.sampled_from(PROVIDER_KEYS), weird_text)
provider_json: st.SearchStrategy[Json] = st.recursive(
    _provider_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_provider_keys, inner, max_size=5),
    max_leaves=25,
)
provider_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    _provider_keys, provider_json, max_size=6
)


_ids = st.one_of(
    st.sampled_from(["call_1", "toolu_01", "fc_1", "call_ad4f92a213e54c22b18ef269"]), text_values
)
_names = st.one_of(
    st.sampled_from(["send_message", "conversation_search", "web_search"]), text_values
)
_reasons = st.one_of(st.sampled_from(_READER_STRINGS), text_values, st.none())


def _maybe(**fields: st.SearchStrategy[Json]) -> st.SearchStrategy[dict[str, Json]]:
    """A dict holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


_function = _maybe(name=_names | provider_json, arguments=text_values | provider_json)
_call_like = _maybe(
    id=_ids | provider_json,
    call_id=_ids,
    type=st.sampled_from(["function", "function_call", "tool_use", "text"]) | provider_json,
    name=_names | provider_json,
    function=_function | provider_json,
    functionCall=_maybe(id=_ids, name=_names) | provider_json,
)
_calls = st.lists(_call_like | provider_json, max_size=3)
_usage = _maybe(
    prompt_tokens=int_values | provider_json,
    completion_tokens=int_values,
    input_tokens=int_values,
    output_tokens=int_values,
    promptTokenCount=int_values,
    candidatesTokenCount=int_values,
    cache_read_input_tokens=int_values,
    cache_creation_input_tokens=int_values,
    thoughtsTokenCount=int_values,
    prompt_tokens_details=_maybe(cached_tokens=int_values) | provider_json,
    completion_tokens_details=_maybe(reasoning_tokens=int_values) | provider_json,
)
# The response shapes provider.py documents. Only OpenAI chat, the Letta stream object
# and the error object were sampled; the others are deliberate garbage with the
# discriminating keys in place so every reader branch runs.
_SHAPES: tuple[st.SearchStrategy[dict[str, Json]], ...] = (
    st.fixed_dictionaries(
        {"choices": st.lists(
            _maybe(finish_reason=_reasons, message=_maybe(tool_calls=_calls) | provider_json)
            | provider_json,
            max_size=3,
        )},
        optional={"usage": _usage, "error": provider_json},
    ),
    st.fixed_dictionaries(
        {"object": st.just("response") | provider_json, "output": _calls | provider_json},
        optional={"status": _reasons, "usage": _usage},
    ),
    st.fixed_dictionaries(
        {"type": st.just("message"), "content": _maybe(
            tool_call=st.one_of(st.builds(json.dumps, _call_like), _call_like, text_values,
                                provider_json),
            content=provider_json,
        )},
        optional={"usage": _usage, "id": _ids, "model": _names},
    ),
    st.fixed_dictionaries(
        {"type": st.just("message"), "content": _calls},
        optional={"stop_reason": _reasons, "usage": _usage},
    ),
    st.fixed_dictionaries(
        {"candidates": st.lists(
            _maybe(
                finishReason=_reasons,
                content=_maybe(parts=st.lists(_maybe(functionCall=_call_like), max_size=3)),
            )
            | provider_json,
            max_size=3,
        )},
        optional={"usageMetadata": _usage, "responseId": _ids, "modelVersion": _names},
    ),
    st.fixed_dictionaries(
        {"error": provider_json}, optional={"error_type": _reasons, "choices": provider_json}
    ),
)  # fmt: skip
shaped_responses: st.SearchStrategy[dict[str, Json]] = st.one_of(
    *(
        st.tuples(shape, provider_objects).map(lambda pair: {**pair[1], **pair[0]})
        for shape in _SHAPES
    )
)


def _sample_payloads(field: str) -> st.SearchStrategy[Json]:
    samples = [t[field] for t in TRACE_SAMPLES if t.get(field) is not None]
    return st.sampled_from(samples).flatmap(mutated)


def payloads(field: str) -> st.SearchStrategy[Json]:
    """A ``response_json``/``request_json``/``llm_config``: mutated sample or arbitrary."""
    shaped = [shaped_responses] if field == "response_json" else []
    return st.one_of(_sample_payloads(field), *shaped, provider_objects, provider_json, st.none())


# --- records ------------------------------------------------------------------------------

realistic_ns = st.integers(1_700_000_000 * NS, 1_900_000_000 * NS)
duration_ns = st.one_of(
    st.integers(0, 10 * NS),
    st.integers(-10 * NS, -1),
    st.sampled_from([0, INT64_MAX, 2**63, 2**64, 10**30, INT64_MIN]),
)
start_ns = st.one_of(realistic_ns, realistic_ns, st.just(0), st.sampled_from(EDGE_INTS[:12]))
direct_metrics = st.builds(
    StepMetrics,
    id=st.none() | st.sampled_from([b.step["id"] for b in BUNDLES]),
    step_start_ns=st.none() | start_ns,
    llm_request_start_ns=st.none() | start_ns,
    llm_request_ns=st.none() | duration_ns,
    tool_execution_ns=st.none() | duration_ns,
    step_ns=st.none() | duration_ns,
)
observed_ns = st.one_of(st.just(0), realistic_ns, st.integers(0, INT64_MAX))


# Failure details shaped like the failed samples (stream_fail), with any text in them:
# long ones exercise the status and stacktrace truncation.
_error_text = st.one_of(st.none(), text_values, long_text)
step_errors = st.fixed_dictionaries(
    {
        "error_type": st.none() | text_values,
        "stop_reason": st.none() | st.sampled_from(["llm_api_error", "error", "end_turn"]),
        "error_data": st.none()
        | st.fixed_dictionaries(
            {"message": _error_text, "traceback": _error_text, "details": json_values}
        ),
    }
)
run_errors = st.one_of(
    _error_text,
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "message_type": st.just("error_message"),
            "error_type": st.none() | text_values,
            "message": _error_text,
            "detail": _error_text,
        },
    ),
)


@st.composite
def traces(draw: st.DrawFn) -> ProviderTrace | None:
    raw = draw(mutated(draw(st.sampled_from(TRACE_SAMPLES))))
    if isinstance(raw, dict):
        for field in ("response_json", "request_json", "llm_config"):
            if draw(st.integers(0, 3)) == 0:
                raw = {**raw, field: draw(payloads(field))}
        if draw(st.integers(0, 3)) == 0:
            # Odd floats as a decoded document may hold them (inf, nan) and as strings.
            odd = st.sampled_from([math.inf, -math.inf, math.nan, "1e400", "NaN", 1e300, -1.0])
            raw = {**raw, "latency_ms": draw(st.one_of(float_values, int_values, st.none(), odd))}
    return validate_lenient(ProviderTrace, raw)


@st.composite
def agents(draw: st.DrawFn) -> Agent | None:
    sample = draw(st.sampled_from(AGENT_SAMPLES))
    return validate_lenient(Agent, draw(mutated(sample)), required_id=sample["id"])


@st.composite
def runs(draw: st.DrawFn) -> Run:
    sample = draw(st.sampled_from(RUN_SAMPLES))
    raw = draw(mutated(sample))
    if isinstance(raw, dict) and draw(st.integers(0, 3)) == 0:
        raw = {**raw, "status": "failed", "metadata": {"error": draw(run_errors)}}
    run = validate_lenient(Run, raw, required_id=sample["id"])
    run = run or Run(id=sample["id"])
    if draw(st.integers(0, 3)) == 0:
        run = replace(
            run,
            ttft_ns=draw(st.none() | duration_ns),
            total_duration_ns=draw(st.none() | duration_ns),
        )
    return run


@st.composite
def step_records(draw: st.DrawFn) -> StepRecord:
    """A StepRecord from mutated samples, each enrichment present or not."""
    bundle = draw(st.sampled_from(BUNDLES))
    raw_step = draw(mutated(bundle.step))
    if isinstance(raw_step, dict) and draw(st.integers(0, 3)) == 0:
        raw_step = {**raw_step, "status": "failed", **draw(step_errors)}
    step = validate_lenient(Step, raw_step, required_id=bundle.step["id"])
    step = step or Step(id=bundle.step["id"])
    if draw(st.booleans()):
        # Step ids of every form: the span ids and the trace id derive from them.
        step = replace(step, id=draw(st.one_of(text_values, weird_text)))
    trace = draw(st.none() | traces())
    metrics = draw(
        st.none()
        | direct_metrics
        | st.sampled_from(METRICS_SAMPLES)
        .flatmap(mutated)
        .map(lambda raw: validate_lenient(StepMetrics, raw))
    )
    raw_messages = draw(
        st.lists(st.sampled_from(MESSAGE_SAMPLES).flatmap(mutated), max_size=5)
        | st.just(bundle.messages).flatmap(lambda ms: st.tuples(*(mutated(m) for m in ms)))
    )
    messages = tuple(m for m in (validate_lenient(Message, r) for r in raw_messages) if m)
    return StepRecord(
        step=step,
        trace=trace,
        metrics=metrics,
        messages=messages,
        run=draw(st.none() | runs()),
        agent=draw(st.none() | agents()),
        observed_ns=draw(observed_ns),
        incomplete=draw(st.booleans()),
        missing=draw(st.frozensets(st.sampled_from(["trace", "metrics", "messages"]))),
    )


@st.composite
def run_records(draw: st.DrawFn) -> RunRecord:
    return RunRecord(
        run=draw(runs()), agent=draw(st.none() | agents()), observed_ns=draw(observed_ns)
    )


junk_items: st.SearchStrategy[Json] = st.one_of(
    int_values,
    text_values,
    st.none(),
    st.booleans(),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(weird_text.filter(lambda k: k != "id"), json_scalars, max_size=4),
    st.fixed_dictionaries({"id": st.one_of(int_values, st.none(), st.lists(st.integers()))}),
)
