"""Content capture, redaction patterns and attribute budgets: the values and their rules.

The defaults and minimums of the budgets and the checking of user redaction patterns
live here so that configuration can validate them without importing the mapping;
``letta_otel.mapping`` imports them from here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from letta_otel.config.values import InvalidValue, choice

__all__ = [
    "CAPTURE_MODES",
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_ATTRIBUTE_BYTES",
    "DEFAULT_MAX_SPAN_BYTES",
    "DEFAULT_MAX_TRACE_BYTES",
    "MIN_ATTRIBUTE_BYTES",
    "MIN_SPAN_BYTES",
    "MIN_TRACE_BYTES",
    "PatternError",
    "compile_patterns",
    "parse_capture_mode",
    "parse_redact_patterns",
    "show_patterns",
]

DEFAULT_MAX_ATTRIBUTE_BYTES = 16 * 1024
DEFAULT_MAX_SPAN_BYTES = 256 * 1024
DEFAULT_MAX_TRACE_BYTES = 4_000_000
DEFAULT_MAX_ATTRIBUTES = 128
MIN_ATTRIBUTE_BYTES = 256
MIN_SPAN_BYTES = 8 * 1024
MIN_TRACE_BYTES = 64 * 1024

CAPTURE_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
parse_capture_mode = choice(
    CAPTURE_MODES,
    aliases={"false": "NO_CONTENT"},
    hints={
        "true": "'true' (older instrumentations) does not say where content goes; use "
        "SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT"
    },
)


class PatternError(ValueError):
    """A user pattern is unusable; ``index`` is its 1-based position in the list."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"pattern #{index}: {reason}")
        self.index = index
        self.reason = reason


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compile user patterns; raise :class:`PatternError` naming the first bad one.

    The message never quotes a pattern (it may itself contain a secret).
    """
    compiled: list[re.Pattern[str]] = []
    for index, pattern in enumerate(patterns, start=1):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            raise PatternError(
                index, f"is not a valid regular expression ({exc.msg}{where})"
            ) from None
        if regex.search("") is not None:
            raise PatternError(index, "matches the empty string, so it would redact everything")
        compiled.append(regex)
    return tuple(compiled)


def _pattern_list(raw: object) -> list[str]:
    if isinstance(raw, list | tuple):
        items = list(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        parsed: object = None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None  # e.g. the single pattern "[0-9]{6}"
        items = (
            parsed
            if isinstance(parsed, list)
            else [line.strip() for line in raw.splitlines() if line.strip()]
        )
    else:
        raise InvalidValue("must be a list of regular expressions", show_value=False)
    if not all(isinstance(item, str) and item for item in items):
        raise InvalidValue(
            "must be a list of non-empty strings (regular expressions)", show_value=False
        )
    return items


def parse_redact_patterns(raw: object) -> tuple[str, ...]:
    """One regex per line, or a JSON array of strings (a TOML array in the file)."""
    items = _pattern_list(raw)
    try:
        compile_patterns(items)
    except PatternError as exc:
        # Never echo a pattern: it may hold the very value it is meant to hide.
        raise InvalidValue(f"{exc}; fix or remove it", show_value=False) from None
    return tuple(items)


def show_patterns(value: tuple[str, ...]) -> str:
    return f"{len(value)} pattern(s), not shown" if value else "(none)"
