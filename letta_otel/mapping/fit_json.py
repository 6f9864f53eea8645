"""Captured content fitted *as JSON* into a byte limit, so it always parses.

A list or object keeps its shape: its longest strings are shortened first (never the
structural keys: a cut id or role would be wrong, not just shorter), then list items
are dropped (oldest input messages first, else the last items) with a marker item in
their place, so the value still validates against the conventions' schemas. Used by
the per-attribute and per-span limits (:mod:`.limits`). Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from letta_otel.mapping.clean import cut_text
from letta_otel.mapping.clean import truncation_marker as _marker

Json = Any

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_size(value: Json) -> int:
    return len(_ENCODE(value).encode())


def dumps(value: Json) -> str:
    return _ENCODE(value)


# In messages and parts these are structure, not content: never shortened (a cut id or
# role would be wrong, not just shorter). Payloads below "arguments"/"response"/... are
# the caller's own data, where every string is content.
_STRUCTURAL_KEYS = frozenset(
    {"type", "role", "id", "name", "finish_reason", "mime_type", "modality"}
)
_PAYLOAD_KEYS = frozenset(
    {"arguments", "response", "server_tool_call", "server_tool_call_response"}
)


def _leaves(value: Json, structural: bool = True) -> Iterator[tuple[Any, Any, str]]:
    """Every shortenable string in a JSON value as (container, key/index, string)."""
    stack: list[tuple[Json, bool]] = [(value, structural)]
    while stack:
        node, in_structure = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                payload = in_structure and key in _PAYLOAD_KEYS
                if isinstance(item, str):
                    if payload or not (in_structure and key in _STRUCTURAL_KEYS):
                        yield node, key, item
                elif isinstance(item, dict | list):
                    stack.append((item, in_structure and not payload))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    yield node, index, item
                elif isinstance(item, dict | list):
                    stack.append((item, in_structure))


def _copy(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_MIN_LEAF = len(_ENCODE(_marker(10**9)).encode())  # a cut string is never smaller


def _cut_encoded(text: str, encoded: int, target: int) -> str:
    """``text`` cut so that its JSON encoding takes at most ``target`` bytes."""
    raw = len(text.encode())
    budget = max(int((target - 2) * raw / max(encoded - 2, 1)), 0)
    while True:
        cut = cut_text(text, budget)
        size = len(_ENCODE(cut).encode())
        if size <= target or budget == 0:
            return cut
        budget = max(budget - (size - target) - 1, 0)


def _water_level(sizes: Sequence[int], budget: int) -> int | None:
    """The largest cap C (>= _MIN_LEAF) with sum(min(s, C)) <= budget, else None."""
    if sum(min(s, _MIN_LEAF) for s in sizes) > budget:
        return None
    low, high = _MIN_LEAF, max(sizes, default=_MIN_LEAF)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(s, mid) for s in sizes) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _shorten_strings(value: Json, limit: int, structural: bool = True) -> tuple[Json, bool]:
    """Cut the longest strings inside ``value`` until it encodes in ``limit`` bytes."""
    total = json_size(value)
    if total <= limit:
        return value, True
    copy = _copy(value)
    leaves = [(c, k, s, len(_ENCODE(s).encode())) for c, k, s in _leaves(copy, structural)]
    if not leaves:
        return copy, False
    skeleton = total - sum(size for *_, size in leaves)
    budget = limit - skeleton
    for _ in range(4):
        level = _water_level([size for *_, size in leaves], budget)
        if level is None:
            return copy, False
        for container, key, text, size in leaves:
            container[key] = _cut_encoded(text, size, level) if size > level else text
        over = json_size(copy) - limit
        if over <= 0:
            return copy, True
        budget -= over
    return copy, False


def _marker_item(kind: str, dropped: int) -> Json:
    """What stands in for dropped list items (output messages need a finish_reason the
    bridge cannot know, so they go without one; ``letta_otel.truncated`` still says it)."""
    if kind == "input":
        text = f"…[{dropped} earlier messages truncated]…"
        return {"role": "letta_otel", "parts": [{"type": "text", "content": text}]}
    if kind == "system":
        return {"type": "text", "content": f"…[{dropped} more parts truncated]…"}
    if kind == "tools":
        return {"type": "letta_otel.truncated", "name": f"…[{dropped} more tools truncated]…"}
    return None


def _min_size(item: Json) -> int:
    """The smallest an item can get by shortening its strings."""
    total = json_size(item)
    for *_, text in _leaves(item):
        size = len(_ENCODE(text).encode())
        total -= max(size - _MIN_LEAF, 0)
    return total


def _drop_items(value: list[Json], kind: str, limit: int) -> tuple[Json, bool]:
    """Keep as many whole items as can fit (newest input messages, else the first ones),
    with a marker item in place of the others, then shorten strings."""
    n = len(value)
    order = list(reversed(value)) if kind == "input" else list(value)
    room = limit - 2 - json_size(_marker_item(kind, n)) - 1
    keep = 0
    for item in order:
        room -= _min_size(item) + 1
        if room < 0:
            break
        keep += 1
    while keep > 0:
        kept = value[n - keep :] if kind == "input" else value[:keep]
        marker = _marker_item(kind, n - keep)
        candidate = (
            kept
            if marker is None
            else [marker, *kept]
            if kind == "input"
            else [
                *kept,
                marker,
            ]
        )
        fitted, ok = _shorten_strings(candidate, limit)
        if ok:
            return fitted, True
        keep -= 1
    return None, False


def fit_json(value: Json, limit: int, kind: str = "value") -> tuple[Json, bool]:
    """``(fitted, truncated)``: ``value`` made to take at most ``limit`` bytes.

    A string is cut (with the marker). A list or object is measured as compact JSON and
    keeps its shape: its longest strings are shortened first, then list items are
    dropped (``kind``, see :class:`letta_otel.mapping.limits.ContentValue`). ``None``
    means nothing useful fits: the caller drops the attribute.
    """
    if isinstance(value, str):
        cut = cut_text(value, limit)
        return cut, cut is not value
    fitted, ok = _shorten_strings(value, limit, structural=kind != "value")
    if ok:
        return fitted, fitted is not value
    if isinstance(value, list) and kind != "value" and len(value) > 1:
        fitted, ok = _drop_items(value, kind, limit)
        if ok:
            return fitted, True
    return None, True
