"""Durations, timeouts in seconds or milliseconds, and byte sizes: parsers and formatters."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from letta_otel.config.values import (
    PLAIN_NUMBER,
    InvalidValue,
    format_number,
    is_number,
    plain_number,
    require_text,
)

# ------------------------------------------------------------------------- durations

_UNIT_MICROS: dict[str, int] = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h|d|w)\s*", re.IGNORECASE)
_ISO_NUMBER = r"(\d+(?:[.,]\d+)?)"
_ISO_DURATION = re.compile(
    rf"P(?:{_ISO_NUMBER}W)?(?:{_ISO_NUMBER}D)?"
    rf"(?:T(?:{_ISO_NUMBER}H)?(?:{_ISO_NUMBER}M)?(?:{_ISO_NUMBER}S)?)?",
    re.IGNORECASE,
)
_ISO_UNITS = ("w", "d", "h", "m", "s")
_ISO_DATE_PART = re.compile(r"P(?:[\d.,]+Y)?(?:[\d.,]+M)?(?:[\d.,]+W)?(?:[\d.,]+D)?")
_MAX_DURATION_MICROS = 10 * 365 * _UNIT_MICROS["d"]
DURATION_HELP = "Duration: 90s, 15m, 1h, 2d, 1h30m, plain seconds (3600) or ISO-8601 (PT1H)."
DURATION_HINT = "e.g. 90s, 15m, 1h, 2d, 1h30m, plain seconds 3600, or ISO-8601 PT1H"


def _to_timedelta(micros: Decimal) -> timedelta:
    """Exact conversion (rounded to the microsecond) with a sanity bound of ~10 years."""
    if not micros.is_finite() or abs(micros) > _MAX_DURATION_MICROS:
        raise InvalidValue(f"is out of range; use a duration ({DURATION_HINT})")
    return timedelta(microseconds=int(micros.to_integral_value()))


def _seconds_to_timedelta(seconds: float | str) -> timedelta:
    return _to_timedelta(Decimal(seconds) * _UNIT_MICROS["s"])


def _parse_unit_duration(text: str) -> timedelta | None:
    pos, total, seen = 0, Decimal(0), set()
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        unit = match.group(2).lower()
        if unit in seen:
            raise InvalidValue(f"repeats the unit '{unit}'; write each unit once ({DURATION_HINT})")
        seen.add(unit)
        total += Decimal(match.group(1)) * _UNIT_MICROS[unit]
        pos = match.end()
    if pos != len(text) or not seen:
        return None
    return _to_timedelta(total)


def _parse_iso_duration(text: str) -> timedelta | None:
    match = _ISO_DURATION.fullmatch(text)
    if match is None:
        head = text.upper().split("T")[0]
        if _ISO_DATE_PART.fullmatch(head) and ("Y" in head or "M" in head):
            raise InvalidValue(
                "uses ISO-8601 years/months, whose length is ambiguous; use days instead, e.g. P30D"
            )
        return None
    if text.upper().endswith("T") or not any(match.groups()):
        return None
    total = sum(
        (
            Decimal(group.replace(",", ".")) * _UNIT_MICROS[unit]
            for group, unit in zip(match.groups(), _ISO_UNITS, strict=True)
            if group
        ),
        Decimal(0),
    )
    return _to_timedelta(total)


def _duration_from_text(text: str) -> timedelta:
    """Parse a duration string; plain numbers are seconds."""
    if PLAIN_NUMBER.fullmatch(text):
        return _seconds_to_timedelta(text.replace("_", ""))
    parsed = _parse_iso_duration(text) if text[:1] in ("P", "p") else _parse_unit_duration(text)
    if parsed is None:
        raise InvalidValue(f"must be a duration ({DURATION_HINT})")
    return parsed


def _raw_duration(raw: object) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    if is_number(raw):
        if not math.isfinite(raw):
            raise InvalidValue(f"must be a finite duration ({DURATION_HINT})")
        return _seconds_to_timedelta(repr(raw))
    return _duration_from_text(require_text(raw, f"a duration ({DURATION_HINT})"))


def parse_duration(*, allow_zero: bool) -> Callable[[object], timedelta]:
    """A parser for durations that must be > 0 (or >= 0 with ``allow_zero``)."""

    def parse(raw: object) -> timedelta:
        value = _raw_duration(raw)
        if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
            bound = "zero or more" if allow_zero else "greater than zero"
            raise InvalidValue(f"must be {bound} ({DURATION_HINT})")
        return value

    return parse


def format_duration(value: timedelta) -> str:
    """Compact, round-trippable form: ``timedelta(seconds=5400)`` -> ``'1h30m'``."""
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    parts: list[str] = []
    for unit, size in (
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("m", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
        ("us", 1),
    ):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def parse_seconds(raw: object) -> float:
    """A positive number of seconds (plain number, or a duration with units)."""
    hint = "a positive number of seconds (e.g. 5, 2.5, 500ms, 1m)"
    try:
        value = _raw_duration(raw).total_seconds()
    except InvalidValue as exc:
        raise InvalidValue(f"must be {hint}") from exc
    if value <= 0:
        raise InvalidValue(f"must be {hint}")
    return value


def parse_milliseconds(raw: object) -> float:
    """An OTLP timeout: plain numbers are MILLISECONDS (OTel spec); returns seconds."""
    hint = "a positive number of milliseconds (e.g. 10000) or a duration with a unit (e.g. 10s)"
    text_number: float | None = None
    if is_number(raw):
        text_number = float(raw)
    elif isinstance(raw, str):
        text_number = plain_number(raw.strip())
    if text_number is not None:
        if not math.isfinite(text_number) or text_number <= 0:
            raise InvalidValue(f"must be {hint}")
        if text_number < 100:
            shown, meant = format_number(text_number), format_number(text_number * 1000)
            raise InvalidValue(
                "is in milliseconds per the OpenTelemetry spec; "
                f"{shown} ms is too short — did you mean {meant}?",
                show_value=False,
            )
        return text_number / 1000
    try:
        value = _raw_duration(raw)
    except InvalidValue as exc:
        raise InvalidValue(f"must be {hint}") from exc
    if value < timedelta(milliseconds=100):
        raise InvalidValue(f"is too short; use at least 100 ms ({hint})")
    return value.total_seconds()


def seconds_at_least(minimum: float) -> Callable[[object], float]:
    """A parser for a number of seconds given in Python (not configured in milliseconds)."""
    hint = f"a number of seconds, at least {format_number(minimum)}"

    def parse(raw: object) -> float:
        if isinstance(raw, timedelta):
            raw = raw.total_seconds()
        if not is_number(raw) or not math.isfinite(raw) or raw < minimum:
            raise InvalidValue(f"must be {hint}")
        return float(raw)

    return parse


# ------------------------------------------------------------------------ byte sizes

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)")
SIZE_HINT = "e.g. 3MB, 3MiB, 512KiB or a plain number of bytes"


def _size_from_text(text: str) -> int:
    match = _SIZE.fullmatch(text.replace("_", ""))
    if match is None:
        raise InvalidValue(f"must be a byte size ({SIZE_HINT})")
    number, unit = match.group(1), match.group(2).lower()
    if unit in ("k", "m", "g"):
        big = unit.upper()
        raise InvalidValue(
            f"has the ambiguous unit '{match.group(2)}'; write {big}B (powers of 1000) "
            f"or {big}iB (powers of 1024)"
        )
    if unit not in _SIZE_UNITS:
        raise InvalidValue(f"has an unknown unit '{match.group(2)}' ({SIZE_HINT})")
    value = float(number) * _SIZE_UNITS[unit]
    if value != int(value):
        raise InvalidValue(f"must be a whole number of bytes ({SIZE_HINT})")
    return int(value)


def parse_byte_size(*, minimum: int) -> Callable[[object], int]:
    """A parser for byte sizes of at least ``minimum`` bytes."""

    def parse(raw: object) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            value = _size_from_text(require_text(raw, f"a byte size ({SIZE_HINT})"))
        if value < minimum:
            raise InvalidValue(f"must be at least {format_bytes(minimum)} ({minimum} bytes)")
        return value

    return parse


def format_bytes(value: int) -> str:
    """Shortest exact form: ``3_000_000`` -> ``'3MB'``, ``65536`` -> ``'64KiB'``."""
    for unit, size in (
        ("GiB", 1024**3),
        ("GB", 1000**3),
        ("MiB", 1024**2),
        ("MB", 1000**2),
        ("KiB", 1024),
        ("kB", 1000),
    ):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)
