"""Value parsers and formatters for :mod:`letta_otel.settings` (private).

Every parser takes a raw value — a ``str`` from the environment or a CLI flag, or a
native value from TOML / programmatic overrides — and returns the typed value or
raises :class:`InvalidValue`.  An ``InvalidValue`` message says what is expected
(and how to fix it) but, unless it says otherwise via ``show_value``, does not
quote the offending value: the caller appends ``got '...'`` itself, and leaves it
out for secrets.  Parsers for secret values (headers) never put a value into a
message.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeGuard
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "FrozenMap",
    "InvalidValue",
    "choice",
    "format_bytes",
    "format_duration",
    "format_number",
    "parse_bool",
    "parse_byte_size",
    "parse_duration",
    "parse_endpoint_url",
    "parse_header_list",
    "parse_http_url",
    "parse_int_range",
    "parse_kv_list",
    "parse_milliseconds",
    "parse_optional_str",
    "parse_readable_file",
    "parse_required_str",
    "parse_seconds",
    "parse_state_path",
    "redact_url",
    "suggest",
]


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


def _require_text(raw: object, expected: str) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(f"must be {expected} (a string)")
    return raw.strip()


def _is_number(raw: object) -> TypeGuard[int | float]:
    return isinstance(raw, int | float) and not isinstance(raw, bool)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)")


def _plain_number(text: str) -> float | None:
    """``text`` as a finite number if it is a plain decimal number, else None."""
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    return float(text.replace("_", ""))


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
    if _PLAIN_NUMBER.fullmatch(text):
        return _seconds_to_timedelta(text.replace("_", ""))
    parsed = _parse_iso_duration(text) if text[:1] in ("P", "p") else _parse_unit_duration(text)
    if parsed is None:
        raise InvalidValue(f"must be a duration ({DURATION_HINT})")
    return parsed


def _raw_duration(raw: object) -> timedelta:
    if isinstance(raw, timedelta):
        return raw
    if _is_number(raw):
        if not math.isfinite(raw):
            raise InvalidValue(f"must be a finite duration ({DURATION_HINT})")
        return _seconds_to_timedelta(repr(raw))
    return _duration_from_text(_require_text(raw, f"a duration ({DURATION_HINT})"))


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
    if _is_number(raw):
        text_number = float(raw)
    elif isinstance(raw, str):
        text_number = _plain_number(raw.strip())
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
            value = _size_from_text(_require_text(raw, f"a byte size ({SIZE_HINT})"))
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
        text = _require_text(raw, f"one of {listed}")
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
    text = _require_text(raw, "text")
    return text or None


def parse_required_str(raw: object) -> str:
    text = _require_text(raw, "text")
    if not text:
        raise InvalidValue("must not be empty")
    return text


# ------------------------------------------------------------------------------ URLs


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _check_url(url: str, example: str) -> None:
    if any(ch.isspace() for ch in url):
        raise InvalidValue("must not contain whitespace")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise InvalidValue(f"is not a valid URL, e.g. {example}") from exc
    if parts.scheme.lower() not in ("http", "https") or "://" not in url:
        raise InvalidValue(f"must be an http:// or https:// URL, e.g. {example}")
    if not parts.hostname:
        raise InvalidValue(f"has no host name, e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidValue(f"has an invalid port (must be 1-65535), e.g. {example}")


def parse_http_url(raw: object) -> str:
    """An http(s) URL; a trailing slash is removed."""
    example = "http://localhost:8283"
    url = _require_text(raw, f"an http:// or https:// URL, e.g. {example}")
    _check_url(url, example)
    return url.rstrip("/")


_BARE_AUTHORITY = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d+")


def parse_endpoint_url(url: str, *, protocol: str, insecure: bool | None, base: bool) -> str:
    """Validate an OTLP endpoint and resolve it to the traces URL (OTel exporter spec).

    A ``base`` endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``) gets ``/v1/traces`` appended
    for http/protobuf; otherwise the URL is used verbatim.  gRPC also accepts a bare
    ``host:port`` (as the Python gRPC exporter does, where it means TLS unless
    insecure): it is normalised to ``https://host:port``, or ``http://host:port`` when
    insecure is true, so the scheme always states the transport security.
    """
    grpc = protocol == "grpc"
    if grpc:
        example = "http://localhost:4317"
    else:
        example = "http://localhost:4318" if base else "http://localhost:4318/v1/traces"
    if grpc and _BARE_AUTHORITY.fullmatch(url):
        url = f"{'http' if insecure else 'https'}://{url}"
    _check_url(url, example)
    if base and not grpc:
        return url.rstrip("/") + "/v1/traces"
    return url


# --------------------------------------------------------------------- key=value lists

# RFC 9110 token characters (a valid HTTP header name)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _kv_entries(text: str) -> Iterator[tuple[int, str]]:
    for position, entry in enumerate(text.split(","), start=1):
        if entry.strip():
            yield position, entry


def parse_kv_list(raw: object, *, secret_values: bool) -> FrozenMap:
    """The OTel ``key1=value1,key2=value2`` list; values are percent-decoded.

    Also accepts a mapping (TOML table) whose values are used as given.  With
    ``secret_values`` no value (nor an unparseable entry) ever appears in a message.
    """
    if isinstance(raw, Mapping):
        return _kv_from_mapping(raw, secret_values=secret_values)
    text = _require_text(raw, "a comma-separated list of key=value pairs")
    result: dict[str, str] = {}
    errors: list[str] = []
    for position, entry in _kv_entries(text):
        key, sep, value = entry.partition("=")
        key = key.strip()
        where = f"entry {position}" + (f" ('{key}')" if _TOKEN.fullmatch(key) else "")
        if not sep:
            shown = "" if secret_values else f" '{entry.strip()}'"
            errors.append(f"entry {position}{shown} is not key=value")
            continue
        if not key:
            errors.append(f"entry {position} has an empty key")
            continue
        try:
            decoded = unquote(value.strip(), errors="strict")
        except UnicodeDecodeError:
            errors.append(f"{where}: the value's percent-encoding is not valid UTF-8")
            continue
        problem = _kv_problem(key, decoded, header=secret_values)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        result[key.lower() if secret_values else key] = decoded
    if errors:
        raise InvalidValue(
            "; ".join(errors),
            show_value=not secret_values,
            hint="the format is key1=value1,key2=value2 with percent-encoded values "
            "(e.g. a space as %20)",
        )
    return FrozenMap(result)


def _kv_problem(key: str, value: str, *, header: bool) -> str | None:
    if header and not _TOKEN.fullmatch(key):
        return "the key is not a valid header name (letters, digits and -_.!#$&'*+^`|~)"
    if _CONTROL.search(value):
        return "the value contains a control character (e.g. a line break)"
    return None


def _scalar_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return format_number(float(value))
    return value if isinstance(value, str) else None


def _kv_from_mapping(raw: Mapping[object, object], *, secret_values: bool) -> FrozenMap:
    result: dict[str, str] = {}
    errors: list[str] = []
    for key, given in raw.items():
        name = str(key).strip()
        value = _scalar_text(given)
        if value is None:
            errors.append(f"the value for '{name}' must be a string")
            continue
        problem = _kv_problem(name, value, header=secret_values)
        if problem:
            errors.append(f"'{name}': {problem}")
            continue
        result[name.lower() if secret_values else name] = value
    if errors:
        raise InvalidValue("; ".join(errors), show_value=False)
    return FrozenMap(result)


def parse_header_list(raw: object) -> FrozenMap:
    """OTLP headers: keys trimmed and lower-cased, values percent-decoded, never shown."""
    return parse_kv_list(raw, secret_values=True)


# ----------------------------------------------------------------------------- paths


def _path(raw: object) -> Path:
    path = raw if isinstance(raw, Path) else Path(_require_text(raw, "a file path"))
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
