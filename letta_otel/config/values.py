"""Small value types and parsers every setting is built from (no letta_otel imports).

Every parser takes a raw value — a ``str`` from the environment or a CLI flag, or a
native value from TOML or Python — and returns the typed value or raises
:class:`InvalidValue`.  An ``InvalidValue`` message says what is expected (and how to fix
it) but, unless ``show_value`` says otherwise, does not quote the offending value: the
error report appends ``got '...'`` itself, and leaves it out for secrets.  Parsers of
secret values never put a value into a message.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeGuard

from pydantic import SecretStr


class InvalidValue(ValueError):
    """A raw configuration value is unusable.

    ``message`` is the reason (and usually the fix).  ``show_value`` tells the caller
    whether to append ``got <value>``: False when the message already quotes the
    value.  ``hint`` (e.g. "did you mean 'x'?") goes after the value.
    """

    def __init__(self, message: str, *, show_value: bool = True, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.show_value = show_value
        self.hint = hint


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping (keeps insertion order)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data: dict[str, str] = dict(data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


# --------------------------------------------------------------------------- helpers


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word`` (case-insensitive), if any is close enough."""
    lowered = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[matches[0]] if matches else None


def format_number(value: float) -> str:
    """``10.0`` -> ``'10'``, ``2.5`` -> ``'2.5'`` (no float noise)."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value):
        return str(int(value))
    return f"{value:.6g}"


def require_text(raw: object, expected: str) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(f"must be {expected} (a string)")
    return raw.strip()


def is_number(raw: object) -> TypeGuard[int | float]:
    return isinstance(raw, int | float) and not isinstance(raw, bool)


PLAIN_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)")


def plain_number(text: str) -> float | None:
    """``text`` as a finite number if it is a plain decimal number, else None."""
    if not PLAIN_NUMBER.fullmatch(text):
        return None
    return float(text.replace("_", ""))


# ----------------------------------------------------------------- scalars & choices

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_bool(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidValue("must be true or false")


def parse_int_range(low: int, high: int) -> Callable[[object], int]:
    """A parser for whole numbers in ``[low, high]``."""
    expected = f"a whole number from {low} to {high}"

    def parse(raw: object) -> int:
        value: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d[\d_]*", raw.strip()):
            value = int(raw.strip().replace("_", ""))
        if value is None or not low <= value <= high:
            raise InvalidValue(f"must be {expected}")
        return value

    return parse


def choice(
    options: tuple[str, ...],
    *,
    aliases: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
) -> Callable[[object], str]:
    """A case-insensitive parser for one of ``options``.

    ``aliases`` maps other spellings to an option; ``hints`` maps a known-wrong
    spelling to an explanation (checked before the generic "did you mean").
    """

    def parse(raw: object) -> str:
        listed = ", ".join(options)
        text = require_text(raw, f"one of {listed}")
        key = text.lower()
        for option in options:
            if option.lower() == key:
                return option
        if aliases and key in aliases:
            return aliases[key]
        guess = suggest(text, options)
        hint = hints.get(key) if hints else None
        if hint is None and guess:
            hint = f"did you mean '{guess}'?"
        raise InvalidValue(f"must be one of {listed}", hint=hint)

    return parse


def parse_optional_str(raw: object) -> str | None:
    """A trimmed string; empty means "not set"."""
    text = require_text(raw, "text")
    return text or None


def parse_required_str(raw: object) -> str:
    text = require_text(raw, "text")
    if not text:
        raise InvalidValue("must not be empty")
    return text


# ----------------------------------------------------------------------------- paths


def _path(raw: object) -> Path:
    path = raw if isinstance(raw, Path) else Path(require_text(raw, "a file path"))
    if not str(path) or "\0" in str(path) or path == Path():
        raise InvalidValue("must be a file path")
    try:
        return path.expanduser()
    except RuntimeError as exc:  # "~name" for an unknown user
        raise InvalidValue("starts with ~ but that home directory is unknown") from exc


def _checked(path: Path, check: Callable[[Path], None]) -> Path:
    try:
        check(path)
    except OSError as exc:  # e.g. a name that is too long
        raise InvalidValue(f"cannot be used ({exc.strerror or exc})") from exc
    return path


def _check_readable_file(path: Path) -> None:
    if not path.exists():
        raise InvalidValue("does not exist; give the path to a readable PEM file")
    if not path.is_file():
        raise InvalidValue("is not a regular file; give the path to a readable PEM file")
    if not os.access(path, os.R_OK):
        raise InvalidValue("is not readable by this user; fix its permissions")


def _check_state_path(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise InvalidValue(f"is in the directory '{parent}', which does not exist; create it first")
    if path.is_dir():
        raise InvalidValue("is a directory; give a file path such as ./letta-otel.db")


def parse_readable_file(raw: object) -> Path:
    """A path to an existing, readable file (e.g. a PEM certificate)."""
    return _checked(_path(raw), _check_readable_file)


def parse_state_path(raw: object) -> Path:
    """The state database path; its parent directory must exist."""
    return _checked(_path(raw), _check_state_path)


# ------------------------------------------------------------------------- secrets


def parse_api_key(raw: object) -> SecretStr | None:
    """An API key: trimmed; empty means "not set"; never quoted in a message."""
    if isinstance(raw, SecretStr):
        raw = raw.get_secret_value()
    text = parse_optional_str(raw)
    if text is not None and any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise InvalidValue("contains whitespace or a control character; check for a stray newline")
    return SecretStr(text) if text is not None else None


def parse_rps(raw: object) -> float:
    """Requests per second from 0 (no limit) to 10000."""
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        value = float(text) if isinstance(text, str | int | float) else None
    except ValueError:
        value = None
    if isinstance(raw, bool) or value is None or not 0 <= value <= 10_000:
        raise InvalidValue("must be a number of requests per second from 0 (no limit) to 10000")
    return value
