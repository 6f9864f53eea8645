"""Attribute budgets: what keeps one span within what backends accept.

Applied to every span the mapper builds (:func:`finalize`), in this order:

1. **Error texts are redacted** (status description, ``exception.message``/
   ``stacktrace``): provider errors echo keys and addresses.
2. **Per-attribute byte limit** (``LETTA_OTEL_MAX_ATTRIBUTE_BYTES``) on every string value,
   span and event alike. Plain strings are cut with ``…[N bytes truncated]…`` (a stack
   trace keeps its tail); captured content is fitted *as JSON* (:func:`fit_json`): the
   longest strings inside it are shortened first, then whole messages go (oldest input
   messages first), so the value always parses and still validates against the
   conventions' schemas.
3. **Attribute-count limit** (``LETTA_OTEL_MAX_ATTRIBUTES``, span and each event): content
   goes first, then other non-core attributes, largest first. ``gen_ai.*``/``letta.*``/
   ``letta_otel.*`` and ``error.type`` are never evicted (so they may exceed the limit).
4. **Per-span byte budget** (``LETTA_OTEL_MAX_SPAN_BYTES``, the OTLP size estimate of
   :mod:`.size`): content is refitted at halving sizes, then dropped (event copy
   first), then any remaining long strings are halved.

Whatever acted is recorded on the span: ``letta_otel.truncated`` (a value was shortened),
``letta_otel.dropped_attributes`` (keys removed), ``letta_otel.limits_hit`` (which limits)
and ``letta_otel.redactions`` (how many secrets were replaced). Pure and I/O-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from letta_otel.config.content import (
    DEFAULT_MAX_ATTRIBUTE_BYTES,
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_SPAN_BYTES,
    MIN_ATTRIBUTE_BYTES,
)
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.clean import clean_attrs, cut_text
from letta_otel.mapping.fit_json import Json, dumps, fit_json, json_size
from letta_otel.mapping.redact import Redactor
from letta_otel.mapping.size import estimate_span_bytes
from letta_otel.mapping.span_copy import replace_span

_MIN_CUT = 64  # below this a halving loop stops: ids and names stay whole

TRUNCATED_ATTRIBUTE = "letta_otel.truncated"
DROPPED_ATTRIBUTES = "letta_otel.dropped_attributes"
LIMITS_HIT = "letta_otel.limits_hit"
REDACTIONS = "letta_otel.redactions"
MARKER_ATTRIBUTES = (TRUNCATED_ATTRIBUTE, DROPPED_ATTRIBUTES, LIMITS_HIT, REDACTIONS)

HIT_ATTRIBUTE_BYTES = "max_attribute_bytes"
HIT_ATTRIBUTES = "max_attributes"
HIT_SPAN_BYTES = "max_span_bytes"

# Never cut: a shortened id would no longer find the Letta object or join the spans.
_IDENTIFIERS = frozenset({sc.LETTA_STEP_ID, sc.LETTA_RUN_ID, sc.LETTA_AGENT_ID, sc.TOOL_CALL_ID})
_ERROR_TEXT_KEYS = frozenset({sc.EXCEPTION_MESSAGE, sc.EXCEPTION_STACKTRACE})
_KEEP_TAIL = frozenset({sc.EXCEPTION_STACKTRACE})


@dataclass(frozen=True)
class Limits:
    max_attribute_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES
    max_span_bytes: int = DEFAULT_MAX_SPAN_BYTES
    max_attributes: int = DEFAULT_MAX_ATTRIBUTES


@dataclass(frozen=True)
class ContentValue:
    """One captured content attribute (already redacted), before fitting.

    ``kind`` tells :func:`fit_json` how to shorten a list that is too long:
    ``input`` drops the oldest messages, ``output``/``system``/``tools`` the last items,
    ``value`` (tool arguments/results) becomes a cut string.
    """

    key: str
    value: Json
    kind: str = "value"


@dataclass(frozen=True)
class Captured:
    """Content for one span: attributes for the span itself and/or one event."""

    span: tuple[ContentValue, ...] = ()
    event_name: str | None = None
    event_attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    event_content: tuple[ContentValue, ...] = ()
    redactions: int = 0


def is_core(key: str) -> bool:
    """Attributes no limit may evict: they identify the span and its outcome."""
    if key in sc.CONTENT_ATTRIBUTES:
        return False
    return key.startswith(("gen_ai.", "letta.", "letta_otel.")) or key == sc.ERROR_TYPE


# --- span finalisation ----------------------------------------------------------------


@dataclass
class _Work:
    """Mutable state of one span while limits are applied."""

    attrs: dict[str, AttributeValue]
    events: list[tuple[str, dict[str, Json], int]]
    content: list[ContentValue]
    event_content: list[ContentValue]
    event_index: int | None
    captured: bool = False  # content was captured: the redaction count is always shown
    truncated: bool = False
    dropped: set[str] = field(default_factory=set)
    hit: set[str] = field(default_factory=set)
    redactions: int = 0


def _cut_value(key: str, value: AttributeValue, limit: int) -> tuple[AttributeValue, bool]:
    if isinstance(value, str):
        if len(value) * 4 <= limit:  # cheap: no encoding needed
            return value, False
        cut = cut_text(value, limit, keep_tail=key in _KEEP_TAIL)
        return cut, cut is not value
    if isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
        # The array counts as a whole (as its JSON form): brackets, quotes and commas too.
        share = max((limit - 2 - 3 * len(value)) // len(value), 1)
        items = [_cut_value(key, v, share) for v in value]
        if any(changed for _, changed in items):
            return cast(AttributeValue, tuple(v for v, _ in items)), True
    return value, False


def _cap_strings(attrs: dict[str, Json], limit: int, skip: frozenset[str]) -> bool:
    changed = False
    for key, value in attrs.items():
        if key in skip:
            continue
        new, cut = _cut_value(key, value, limit)
        if cut:
            attrs[key] = new
            changed = True
    return changed


def _content_keys(w: _Work) -> frozenset[str]:
    return frozenset(c.key for c in w.content) | frozenset(c.key for c in w.event_content)


def _place_content(w: _Work, limit: int) -> None:
    """Fit every content value into ``limit`` bytes: JSON text on the span, structured
    on the event (the conventions require structured values on events)."""
    for c in w.content:
        fitted, cut = fit_json(c.value, limit, c.kind)
        w.truncated |= cut
        if fitted is None:
            w.attrs.pop(c.key, None)
            w.dropped.add(c.key)
        else:
            w.attrs[c.key] = fitted if isinstance(fitted, str) else dumps(fitted)
    if w.event_index is not None:
        _, attrs, _ = w.events[w.event_index]
        for c in w.event_content:
            fitted, cut = fit_json(c.value, limit, c.kind)
            w.truncated |= cut
            if fitted is None:
                attrs.pop(c.key, None)
                w.dropped.add(c.key)
            else:
                attrs[c.key] = fitted
    if w.truncated:
        w.hit.add(HIT_ATTRIBUTE_BYTES)


def _evict(attrs: dict[str, Json], limit: int, protected: frozenset[str]) -> list[str]:
    """Remove attributes beyond ``limit``: content, then other non-core, largest first."""
    excess = len(attrs) - limit
    if excess <= 0:
        return []
    content = [k for k in attrs if k in sc.CONTENT_ATTRIBUTES]
    other = [k for k in attrs if not is_core(k) and k not in content and k not in protected]

    def size(key: str) -> int:
        value = attrs[key]
        return len(value) if isinstance(value, str) else json_size(value)

    order = sorted(content, key=size, reverse=True) + sorted(other, key=size, reverse=True)
    removed = order[:excess]
    for key in removed:
        del attrs[key]
    return removed


def _build(span: ReadableSpan, w: _Work) -> ReadableSpan:
    attrs = dict(w.attrs)
    if w.truncated:
        attrs[TRUNCATED_ATTRIBUTE] = True
    if w.dropped:
        attrs[DROPPED_ATTRIBUTES] = tuple(sorted(w.dropped))
    if w.hit:
        attrs[LIMITS_HIT] = tuple(sorted(w.hit))
    if w.redactions or w.captured:
        attrs[REDACTIONS] = w.redactions
    return replace_span(
        span,
        attributes=clean_attrs(attrs),
        events=[Event(name, clean_attrs(cast(Any, a)), ts) for name, a, ts in w.events],
    )


def _redact_errors(span: ReadableSpan, w: _Work, redactor: Redactor) -> ReadableSpan:
    for _, attrs, _ in w.events:
        for key in _ERROR_TEXT_KEYS & attrs.keys():
            value = attrs[key]
            if isinstance(value, str):
                attrs[key], n = redactor.error_text(value)
                w.redactions += n
    description = span.status.description
    if description:
        clean, n = redactor.error_text(description)
        if n:
            w.redactions += n
            return replace_span(span, status=Status(span.status.status_code, clean))
    return span


def _needs_work(span: ReadableSpan, limits: Limits, long_strings: bool | None) -> bool:
    """False for the common span: no events, no error text, short values, few attributes.

    Cheap on purpose (it runs for every span with capture off): a string can only be
    over the byte limit if it has more than a quarter of that many characters. The
    caller may know that already (``long_strings``, see :func:`finalize`).
    """
    attrs = span.attributes or {}
    if span.events or span.status.description or len(attrs) > limits.max_attributes:
        return True
    if long_strings is not None:
        return long_strings
    quarter = limits.max_attribute_bytes // 4
    for value in attrs.values():
        if isinstance(value, str):
            if len(value) > quarter:
                return True
        elif isinstance(value, tuple) and any(
            isinstance(v, str) and len(v) > quarter for v in value
        ):
            return True
    return False


def finalize(
    span: ReadableSpan,
    captured: Captured | None,
    limits: Limits,
    redactor: Redactor,
    *,
    long_strings: bool | None = None,
) -> ReadableSpan:
    """Apply redaction of error texts and every per-span limit (see the module doc).

    ``long_strings``: whether a string value (or an array's string item) has more than
    a quarter of ``limits.max_attribute_bytes`` characters, when the caller found out
    while building the attributes (``clean.clean_attrs_sized``); None: looked at here.
    """
    if captured is None:
        if not _needs_work(span, limits, long_strings):
            return span  # the common case with capture off: nothing to do, nothing copied
        plain = _finalize_plain(span, limits, redactor)
        if plain is not None:
            return plain
    events = [(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events]
    event_index = None
    if captured is not None and captured.event_name:
        # At the end of the call: when the response (and so the whole record) existed.
        events.append((captured.event_name, dict(captured.event_attributes), span.end_time or 0))
        event_index = len(events) - 1
    w = _Work(
        attrs=dict(span.attributes or {}),
        events=events,
        content=list(captured.span) if captured else [],
        event_content=list(captured.event_content) if captured else [],
        event_index=event_index,
        redactions=captured.redactions if captured else 0,
        captured=captured is not None,
    )
    span = _redact_errors(span, w, redactor)
    limit = limits.max_attribute_bytes
    skip = _content_keys(w) | _IDENTIFIERS
    cut = [_cap_strings(w.attrs, limit, skip)]
    cut += [_cap_strings(a, limit, skip) for _, a, _ in w.events]
    if any(cut):
        w.truncated = True
        w.hit.add(HIT_ATTRIBUTE_BYTES)
    _place_content(w, limit)
    _apply_count_limit(w, limits.max_attributes)
    result = _build(span, w)
    if estimate_span_bytes(result) > limits.max_span_bytes:
        result = _fit_span(span, w, limits)
    return result


def _within(attrs: Mapping[str, Any], limit: int) -> bool:
    """Whether :func:`_cap_strings` would leave every value whole (a cheap sufficient test:
    a string of n characters takes at most 4n bytes)."""
    for value in attrs.values():
        if isinstance(value, str):
            if len(value) * 4 > limit:
                return False
        elif isinstance(value, tuple | list) and value and any(isinstance(v, str) for v in value):
            share = max((limit - 2 - 3 * len(value)) // len(value), 1)
            if not all(_within({"": v}, share) for v in value):
                return False
    return True


def _finalize_plain(span: ReadableSpan, limits: Limits, redactor: Redactor) -> ReadableSpan | None:
    """What :func:`finalize` gives a span without captured content when no limit acts
    (error texts redacted, ``letta_otel.redactions`` if any were), built once without
    the general path's working copies; None when a limit could act.
    """
    attrs = span.attributes or {}
    limit = limits.max_attribute_bytes
    if any(k in attrs for k in MARKER_ATTRIBUTES):
        return None
    redactions = 0
    events = []
    for event in span.events:
        event_attrs = dict(event.attributes or {})
        for key in _ERROR_TEXT_KEYS & event_attrs.keys():
            value = event_attrs[key]
            if isinstance(value, str):
                event_attrs[key], n = redactor.error_text(value)
                redactions += n
        if len(event_attrs) > limits.max_attributes or not _within(event_attrs, limit):
            return None
        events.append(Event(event.name, clean_attrs(event_attrs), event.timestamp))
    if len(attrs) + bool(redactions) > limits.max_attributes:
        return None
    if not _within({k: v for k, v in attrs.items() if k not in _IDENTIFIERS}, limit):
        return None
    status = span.status
    if status.description:
        clean, n = redactor.error_text(status.description)
        if n:
            redactions += n
            status = Status(status.status_code, clean)
    new_attrs = dict(attrs)
    if redactions:
        new_attrs[REDACTIONS] = redactions
    result = replace_span(span, attributes=clean_attrs(new_attrs), events=events, status=status)
    if estimate_span_bytes(result) > limits.max_span_bytes:
        return None
    return result


def _markers(w: _Work, evicting: bool) -> int:
    """How many marker attributes the span will get (they count like any other)."""
    return sum(
        (
            w.truncated,
            bool(w.dropped) or evicting,
            bool(w.hit) or evicting,
            bool(w.redactions) or w.captured,
        )
    ) - sum(k in w.attrs for k in MARKER_ATTRIBUTES)


def _apply_count_limit(w: _Work, max_attributes: int) -> None:
    removed: list[str] = []
    for _, attrs, _ in w.events:
        removed += _evict(attrs, max_attributes, frozenset())
    if len(w.attrs) + _markers(w, bool(removed)) > max_attributes:
        removed += _evict(w.attrs, max(max_attributes - _markers(w, True), 0), frozenset())
    if removed:
        w.dropped.update(removed)
        w.hit.add(HIT_ATTRIBUTES)
        w.content = [c for c in w.content if c.key in w.attrs]
        if w.event_index is not None:
            kept = w.events[w.event_index][1]
            w.event_content = [c for c in w.event_content if c.key in kept]


def _fit_span(span: ReadableSpan, w: _Work, limits: Limits) -> ReadableSpan:
    """Shrink content, then drop it, then halve long strings until the span fits."""
    w.hit.add(HIT_SPAN_BYTES)
    budget = limits.max_span_bytes

    def fits() -> tuple[bool, ReadableSpan]:
        built = _build(span, w)
        return estimate_span_bytes(built) <= budget, built

    size = limits.max_attribute_bytes // 2
    while w.content or w.event_content:
        if size >= MIN_ATTRIBUTE_BYTES:
            _place_content(w, size)
            size //= 2
        else:
            _drop_largest_content(w)
        ok, built = fits()
        if ok:
            return built
    cap = limits.max_attribute_bytes // 2
    while cap >= _MIN_CUT:
        w.truncated = True
        _cap_strings(w.attrs, cap, _IDENTIFIERS)
        for _, attrs, _ in w.events:
            _cap_strings(attrs, cap, frozenset())
        ok, built = fits()
        if ok:
            return built
        cap //= 2
    return _build(span, w)


def _drop_largest_content(w: _Work) -> None:
    """Remove one content attribute: the event copy before the span's own."""
    pool: list[ContentValue] = w.event_content or w.content
    target: Callable[[], dict[str, Json]]
    if pool is w.event_content and w.event_index is not None:
        index = w.event_index

        def target() -> dict[str, Json]:
            return w.events[index][1]
    else:

        def target() -> dict[str, Json]:
            return cast(dict[str, Json], w.attrs)

    attrs = target()
    victim = max(pool, key=lambda c: json_size(attrs.get(c.key)))
    pool.remove(victim)
    attrs.pop(victim.key, None)
    w.dropped.add(victim.key)
