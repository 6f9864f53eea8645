"""Filter and sampling values: parsers and display helpers (used by letta_otel.selection).

Every list setting takes a comma-separated string (environment, one flag value), a TOML
array or repeated flags; items are trimmed, empty items dropped, duplicates removed (first
spelling kept). Values therefore cannot contain commas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from fractions import Fraction

from letta_otel.config.values import InvalidValue, suggest

__all__ = [
    "STEP_STATUS_CHOICES",
    "format_sample_ratio",
    "parse_agent_ids",
    "parse_model_handles",
    "parse_sample_ratio",
    "parse_step_statuses",
    "parse_str_list",
    "show_list",
]

# What a step-status filter can name: Letta's three terminal statuses, plus "incomplete"
# (a step still pending after pending_timeout, exported as it is).
STEP_STATUS_CHOICES: tuple[str, ...] = ("success", "failed", "cancelled", "incomplete")
_AGENT_ID = re.compile(
    r"agent-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_AGENT_ID_EXAMPLE = "agent-123e4567-e89b-42d3-a456-426614174000"
_STATUS_HINTS = {
    "error": "did you mean 'failed'?",
    "errored": "did you mean 'failed'?",
    "completed": "did you mean 'success'?",
    "succeeded": "did you mean 'success'?",
    "pending": "a pending step is not exported until it finishes; 'incomplete' selects steps "
    "exported while still pending after pending_timeout",
    "canceled": "did you mean 'cancelled'?",
}


def _items(raw: object) -> list[str]:
    """The raw list items, split on commas, trimmed, in order, without empties."""
    if isinstance(raw, str):
        chunks: Iterable[object] = [raw]
    elif isinstance(raw, list | tuple):
        chunks = raw
    else:
        raise InvalidValue("must be a comma-separated list of strings (or a TOML array)")
    items: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, str):
            raise InvalidValue("must be a list of strings", show_value=True)
        items.extend(part.strip() for part in chunk.split(","))
    return list(dict.fromkeys(item for item in items if item))


def parse_str_list(raw: object) -> tuple[str, ...]:
    """Free-text items (agent tags, model names, project ids)."""
    return tuple(_items(raw))


def _checked_list(check: Callable[[str], str | None]) -> Callable[[object], tuple[str, ...]]:
    def parse(raw: object) -> tuple[str, ...]:
        items = _items(raw)
        problems = [problem for item in items if (problem := check(item))]
        if problems:
            raise InvalidValue("; ".join(problems), show_value=False)
        return tuple(items)

    return parse


def _agent_id_problem(item: str) -> str | None:
    if _AGENT_ID.fullmatch(item):
        return None
    return f"'{item}' is not a Letta agent id (like {_AGENT_ID_EXAMPLE})"


def _handle_problem(item: str) -> str | None:
    if "/" in item.strip("/"):
        return None
    return (
        f"'{item}' is not a model handle (provider/model, e.g. openai/gpt-4o-mini); "
        "filter model names with the models setting instead"
    )


parse_agent_ids = _checked_list(_agent_id_problem)
parse_model_handles = _checked_list(_handle_problem)


def parse_step_statuses(raw: object) -> tuple[str, ...]:
    """Step statuses: success, failed, cancelled, incomplete (case-insensitive)."""
    items = [item.lower() for item in _items(raw)]
    for item in items:
        if item not in STEP_STATUS_CHOICES:
            hint = _STATUS_HINTS.get(item)
            if hint is None:
                guess = suggest(item, STEP_STATUS_CHOICES)
                hint = f"did you mean '{guess}'?" if guess else None
            raise InvalidValue(
                f"'{item}' is not a step status; use {', '.join(STEP_STATUS_CHOICES)}",
                show_value=False,
                hint=hint,
            )
    return tuple(dict.fromkeys(items))


_RATIO_HINT = (
    "0, 1 or 1/N for a whole number N, e.g. 0.5, 0.25, 0.1, 1/3 or 5%; N becomes the "
    "SampleRate attribute, which backends require to be a whole number"
)


def _ratio_value(raw: object) -> Fraction:
    if isinstance(raw, bool):
        raise InvalidValue(f"must be a ratio: {_RATIO_HINT}")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise InvalidValue(f"must be a ratio: {_RATIO_HINT}")
        return Fraction(raw)
    if not isinstance(raw, str):
        raise InvalidValue(f"must be a ratio: {_RATIO_HINT}")
    text = raw.strip().replace(" ", "")
    try:
        if text.endswith("%"):
            return Fraction(text[:-1]) / 100
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InvalidValue(f"must be a ratio: {_RATIO_HINT}") from None


def parse_sample_ratio(raw: object) -> float:
    """The share of successful runs kept: 0 (only runs with a failure), 1 (all) or 1/N."""
    value = _ratio_value(raw)
    if not 0 <= value <= 1:
        raise InvalidValue(f"must be between 0 and 1: {_RATIO_HINT}")
    if value == 0:
        return 0.0
    inverse = 1 / value
    whole = round(inverse)
    # Decimal spellings of 1/N (0.1, 0.05) are not exact binary floats; allow the rounding.
    if abs(inverse - whole) > Fraction(1, 10**9) * whole:
        lower, upper = max(math.floor(inverse), 1), math.ceil(inverse)
        options = " or ".join(dict.fromkeys(f"1/{n}" if n > 1 else "1" for n in (lower, upper)))
        raise InvalidValue(f"must be {_RATIO_HINT}", hint=f"nearest: {options}")
    return 1 / whole


def format_sample_ratio(value: float) -> str:
    if value <= 0:
        return "0 (only runs with a failure)"
    if value >= 1:
        return "1"
    return f"{value:.6g} (1 in {round(1 / value)})"


def show_list(value: tuple[str, ...]) -> str:
    return ",".join(value) or "(any)"
