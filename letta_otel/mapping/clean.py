"""Make attribute values encodable: what the OTLP encoder cannot take it drops silently.

Applied wherever spans are built, including structured (map and array) values of
captured content, so an odd value from Letta never costs a whole attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_DROP = object()  # a value the encoder cannot take (unlike None inside a structure)


def clean_text(text: str) -> str:
    """Lone surrogates (valid in JSON, not in UTF-8) would make the encoder drop data."""
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | float | bytes):
        return value  # None inside a map or array encodes as an empty value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else _DROP
    if isinstance(value, tuple | list):
        items = [i for i in map(_clean, value) if i is not _DROP]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): c for k, v in value.items() if (c := _clean(v)) is not _DROP}
    return _DROP


def clean_value(value: Any) -> Any:
    """The value made encodable, or None when nothing of it can be sent."""
    cleaned = _clean(value)
    return None if cleaned is _DROP else cleaned


def clean_attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Top-level attribute values: a None or unencodable value leaves the attribute out."""
    return clean_attrs_sized(attrs, -1)[0]


_PLAIN_TYPES = frozenset({str, int, bool, float})
_PLAIN_OR_TUPLE = _PLAIN_TYPES | {tuple}


def _plain_within(attrs: dict[Any, Any], long: int) -> bool:
    """True when cleaning cannot change ``attrs`` and no string in it is over ``long``
    characters: every value is a str, bool, float, an int within 53 bits or a tuple of
    str, and the whole encodes (in C) as valid UTF-8 JSON of at most ``long`` bytes.

    orjson refuses lone surrogates, keys that are not str and (strict) larger ints, the
    only things cleaning would change among these types; a string of n characters takes
    at least n bytes. Anything else takes the general path.
    """
    values = attrs.values()
    kinds = set(map(type, values))
    if not kinds <= _PLAIN_TYPES and not (
        kinds <= _PLAIN_OR_TUPLE
        and all(type(item) is str for v in values if type(v) is tuple for item in v)
    ):
        return False
    try:
        return len(orjson.dumps(attrs, option=orjson.OPT_STRICT_INTEGER)) <= long
    except orjson.JSONEncodeError:
        return False


def clean_attrs_sized(attrs: Mapping[str, Any] | None, long: int) -> tuple[dict[str, Any], bool]:
    """:func:`clean_attrs`, and whether a string value (or an array's string item) has
    more than ``long`` characters (``long`` < 0: not checked, always False).

    One pass does both because the span mapper needs both for every span: the check tells
    it whether the limits have anything to cut. When nothing needs cleaning the result is
    ``attrs`` itself: pass a dict nobody else changes.
    """
    if long >= 0 and type(attrs) is dict and _plain_within(attrs, long):
        return attrs, False  # itself, not a copy (a dict per span is GC work too)
    cleaned: dict[str, Any] = {}
    too_long = False
    for raw_key, value in (attrs or {}).items():
        key = raw_key if type(raw_key) is str and raw_key.isascii() else clean_text(str(raw_key))
        # Nearly every value is an ASCII str, a bool or an int in range: no copy, no
        # further checks (the same outcome as _clean, without its isinstance chain).
        kind = type(value)
        if kind is str:
            text = value if value.isascii() else clean_text(value)
            if long >= 0 and len(text) > long:
                too_long = True
            cleaned[key] = text
            continue
        if kind is bool or kind is float:
            cleaned[key] = value
            continue
        if kind is int:
            if INT64_MIN <= value <= INT64_MAX:
                cleaned[key] = value
            continue
        clean = clean_value(value)
        if clean is not None:
            cleaned[key] = clean
            if long >= 0 and isinstance(clean, tuple | list):
                too_long = too_long or any(isinstance(v, str) and len(v) > long for v in clean)
    return cleaned, too_long


def truncation_marker(removed: int) -> str:
    return f"…[{removed} bytes truncated]…"


def cut_text(text: str, limit: int, *, keep_tail: bool = False) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes *including* the truncation marker.

    The one way letta-otel shortens a string (status messages, stack traces, long
    attribute values); a stack trace keeps its tail, where the raising frame is.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    keep = max(limit - len(truncation_marker(len(data)).encode()), 0)
    piece = (data[len(data) - keep :] if keep_tail else data[:keep]).decode("utf-8", "ignore")
    marker = truncation_marker(len(data) - len(piece.encode()))
    return marker + piece if keep_tail else piece + marker
