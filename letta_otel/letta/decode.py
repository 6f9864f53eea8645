"""Decoding Letta's answers into models, fast: list pages item by item only when an item
is bad, provider traces without the prompt when nothing reads it.

* :func:`list_decoder` / :func:`parse_list`: a list page straight into models when every
  item fits (the common case), else item by item, so a bad record is reported with its
  id and skipped while the rest of the page is used;
* :func:`lean_trace`: a provider trace without the request's long values (the prompt,
  about 10 KB of a 13 KB trace), skipped over rather than turned into Python objects;
  :func:`full_trace` when content capture reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import msgspec
import orjson

from letta_otel.letta.errors import InvalidRecord, LettaError
from letta_otel.letta.models import (
    LettaModel,
    ModelError,
    ProviderTrace,
    convert,
    describe,
    json_decoder,
)

M = TypeVar("M", bound=LettaModel)


# A provider trace's request holds the whole prompt, messages and tool schemas: about
# 10 KB of a 13 KB trace. Only content capture reads them; without it a request value
# longer than this is left undecoded (the sampling parameters are a few bytes each).
LEAN_REQUEST_VALUE_BYTES = 1024


_OBJECT_OF_RAW = msgspec.json.Decoder(dict[str, msgspec.Raw] | None)


_ABSENT = msgspec.Raw(b"")


class _LeanTrace(msgspec.Struct):
    """The fields of a trace document a :class:`ProviderTrace` reads, found in one pass.

    Strings and timestamps are decoded here (msgspec and orjson agree on every string
    both accept, and reject the same ones; a timestamp is read by the same msgspec
    parser the model uses); anything else stays raw for orjson. A value of another type
    fails msgspec's validation and the document takes the general path.
    """

    request_json: dict[str, msgspec.Raw] | None = None
    response_json: msgspec.Raw = _ABSENT
    llm_config: msgspec.Raw = _ABSENT
    latency_ms: msgspec.Raw = _ABSENT
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    step_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    agent_tags: list[str] | None = None
    call_type: str | None = None
    source: str | None = None


_LEAN_TRACE = msgspec.json.Decoder(_LeanTrace)


_LEAN_RAW_FIELDS = _LeanTrace.__struct_fields__[1:4]


_LEAN_DECODED_FIELDS = _LeanTrace.__struct_fields__[4:]


class AllValid(list[M]):
    """A list response whose every item decoded as its model (the common case)."""


@cache  # one per model, like json_decoder's
def list_decoder(model: type[M]) -> Callable[[bytes], AllValid[M] | Any]:
    """Decodes a list response for :func:`parse_list`: straight into ``model`` items
    (:class:`AllValid`) when every item fits, else into plain JSON, which
    :func:`parse_list` then goes through item by item."""
    typed = json_decoder(list[model]).decode  # type: ignore[valid-type]

    def decode(body: bytes) -> AllValid[M] | Any:
        try:
            return AllValid(typed(body))
        except ModelError:  # some item (or the whole) has another shape
            return orjson.loads(body)

    return decode


def parse_list(
    body: Any, model: type[M], kind: str
) -> tuple[list[M], list[str], list[InvalidRecord]]:
    """A list response of ``kind`` records (:func:`list_decoder`'s result, or any
    decoded JSON): the valid ones, every raw id (for cursors) and the invalid ones
    (with their id and why)."""
    if isinstance(body, AllValid):
        valid: list[M] = list(body)
        return valid, [i for item in valid if isinstance(i := getattr(item, "id", None), str)], []
    if not isinstance(body, list):
        raise LettaError(f"expected a JSON list of {kind}s, got {type(body).__name__}")
    ids = [
        raw_id for raw in body if isinstance(raw, dict) and isinstance(raw_id := raw.get("id"), str)
    ]
    # Item by item, so that the rest is kept: a response whose every item fits was
    # already decoded in one call (AllValid), so the whole list is not tried again here.
    items: list[M] = []
    invalid: list[InvalidRecord] = []
    for raw in body:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            items.append(convert(model, raw))
        except ModelError as exc:
            invalid.append(
                InvalidRecord(kind, raw_id if isinstance(raw_id, str) else None, describe(exc))
            )
    return items, ids, invalid


def full_trace(body: bytes) -> ProviderTrace | None:
    """A provider trace document, whole (content capture reads the prompt)."""
    doc = orjson.loads(body)
    return None if doc is None else convert(ProviderTrace, doc)


def lean_trace(body: bytes) -> ProviderTrace | None:
    """A provider trace without the request's long values: :func:`lean_trace_fields`."""
    fields = lean_trace_fields(body)
    if type(fields) is _Typed:
        return ProviderTrace(**fields)  # already what validation would give: no copy
    return None if fields is None else convert(ProviderTrace, fields)


class _Typed(dict[str, Any]):
    """Fields each of which already has its ``ProviderTrace`` type (validation would
    return them unchanged), so the model is built from them directly."""


def lean_trace_fields(body: bytes) -> Any:
    """What ``convert(ProviderTrace, lean_trace_json(body))`` reads, in one scan.

    :func:`lean_trace_json` scans a trace twice (the document, then its request) and
    keeps every top-level key; this finds the model's fields and the request's values
    in one msgspec pass and skips the rest. Each raw value kept is parsed by orjson in
    place (a memoryview: no copy), as in the full parse. A null field is left out, as
    the model reads an absent one the same way. Whatever this pass will not take (a
    null document, a field of another type, malformed JSON) goes to
    :func:`lean_trace_json`. As there, what is skipped unread (other keys, long request
    values) is only checked for JSON syntax: not for UTF-8, nor for numbers orjson
    would refuse (beyond the float range), which then no longer fail the trace.
    """
    try:
        doc = _LEAN_TRACE.decode(body)
    except ValueError:  # msgspec's DecodeError, ValidationError and UnicodeDecodeError
        return lean_trace_json(body)
    loads = orjson.loads
    fields: dict[str, Any] = {}
    for name in _LEAN_RAW_FIELDS:
        if raw := getattr(doc, name):
            fields[name] = loads(memoryview(raw))
    request = doc.request_json
    if request is not None:
        fields["request_json"] = {
            k: loads(memoryview(v))
            for k, v in request.items()
            if len(v) <= LEAN_REQUEST_VALUE_BYTES
        }
    for name in _LEAN_DECODED_FIELDS:
        if (value := getattr(doc, name)) is not None:
            fields[name] = value
    return _Typed(fields) if _typed(fields) else fields


def _typed(fields: dict[str, Any]) -> bool:
    """Whether the values orjson parsed have their model types already (the usual case:
    objects, and a float or a small int latency, made a float here as validation would)."""
    for name in ("response_json", "llm_config"):
        value = fields.get(name)
        if value is not None and type(value) is not dict:
            return False
    latency = fields.get("latency_ms")
    if latency is None or type(latency) is float:
        return True
    if type(latency) is int and -(2**53) <= latency <= 2**53:
        fields["latency_ms"] = float(latency)
        return True
    return False


def lean_trace_json(body: bytes) -> Any:
    """A provider trace document without the request values longer than
    ``LEAN_REQUEST_VALUE_BYTES``, which are skipped over instead of being turned into
    Python objects (most of a trace's parsing cost).

    msgspec only finds where each value lies; the values kept are put back together
    and parsed by orjson, as in the full parse, so each comes out exactly the same.
    Anything msgspec will not split (not an object, say) goes to the full parse,
    which decides as it would have.
    """
    try:
        top = _OBJECT_OF_RAW.decode(body)
        if top is None:
            return None
        fields: dict[str, msgspec.Raw | bytes] = dict(top)
        raw_request = top.get("request_json")
        if raw_request is not None:
            request = _OBJECT_OF_RAW.decode(raw_request)
            if request is not None:
                fields["request_json"] = _object(
                    (k, v) for k, v in request.items() if len(v) <= LEAN_REQUEST_VALUE_BYTES
                )
    except ValueError:  # msgspec's DecodeError (and ValidationError: another shape), or
        # UnicodeDecodeError (a key that is not UTF-8): the full parse reports it
        return orjson.loads(body)
    return orjson.loads(_object(fields.items()))


def _object(items: Iterable[tuple[str, msgspec.Raw | bytes]]) -> bytes:
    """A JSON object of already-encoded values."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + bytes(v) for k, v in items) + b"}"
