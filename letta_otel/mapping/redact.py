"""Redaction of captured text: built-in secret/PII patterns plus the user's own regexes.

Every captured string goes through :meth:`Redactor.text` (or :meth:`Redactor.value`
for parsed JSON) **before** any budget cuts it, so a cut can never leave half a
secret behind. Each match is replaced by ``[REDACTED:<kind>]`` (``[REDACTED]`` for a
user pattern) and counted; the count ends up in ``letta_otel.redactions``.

Built-in kinds (each rule runs only when a cheap substring test says it could match,
so text without secrets costs a few C-speed scans; every rule is linear in the text):

* ``bearer``: ``Bearer <token>`` (the ``Bearer`` word stays);
* ``api_key``: ``sk-…`` (OpenAI, ``sk-proj-``, Anthropic ``sk-ant-``, Letta ``sk-let-``),
  ``xai-…``, AWS ``AKIA…``/``ASIA…``, GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_``/
  ``github_pat_``, Google ``AIza…``, Slack ``xox?-…``, JWTs (``eyJ….….…``) and PEM
  private key blocks;
* ``secret``: the value of ``api_key=…`` / ``"password": "…"`` / ``DB_PASSWORD=…``-style
  assignments (also ``access_token``, ``client_secret``, ``secret_key``, …; 6+ chars);
* ``email``: addresses;
* ``card``: 13-19 digit card numbers (spaces/dashes allowed) that pass the Luhn check and
  start like a card (2-6), so ids, timestamps and phone numbers survive.

In parsed JSON, the value under a secret-looking key (``api_key``, ``password``,
``authorization``, ``client_secret``, …) is replaced whole, whatever it looks like.

Pure and I/O-free; user patterns are compiled once by the settings layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# User patterns are checked when the configuration is loaded; the mapping compiles them.
from letta_otel.config.content import PatternError, compile_patterns

__all__ = ["REDACTED", "PatternError", "Redactor", "compile_patterns"]

REDACTED = "[REDACTED]"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_API_KEY_SHAPES = "|".join(
    (
        r"sk-[A-Za-z0-9_-]{16,}",
        r"xai-[A-Za-z0-9]{20,}",
        r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"gh[pousr]_[A-Za-z0-9]{30,}",
        r"github_pat_[A-Za-z0-9_]{22,}",
        r"AIza[0-9A-Za-z_-]{35}",
        r"xox[abposr]-[A-Za-z0-9-]{10,}",
        r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    )
)
_SECRET_NAMES = (
    r"api[_-]?key|x-api-key|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|client[_-]?secret|secret[_-]?key|password|passwd"
)


@dataclass(frozen=True)
class _Rule:
    """One built-in pattern and the cheap substring test that must pass before it runs.

    Most captured text holds no secret at all: plain ``in`` checks (C speed) skip the
    regular expressions for it. Patterns avoid a leading look-behind, which would keep
    the regex engine from skipping quickly to candidate positions; ``boundary`` checks
    the character before a match instead. ``lowered`` patterns run on the lower-cased
    text (a fast literal prefix instead of a case-insensitive one).
    """

    kind: str
    regex: re.Pattern[str]
    needles: tuple[str, ...] = ()  # any of these in the text (lower-cased if ``lowered``)
    lowered: bool = False
    keep_group: str | None = None  # a prefix group that stays in the output
    boundary: str = ""  # characters that must not precede a match
    precheck: re.Pattern[str] | None = None  # instead of needles

    def applies(self, text: str, lowered: str) -> bool:
        if self.precheck is not None:
            return self.precheck.search(text) is not None
        haystack = lowered if self.lowered else text
        return any(needle in haystack for needle in self.needles)


_WORD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_KEY_NEEDLES: tuple[str, ...] = ("sk-", "xai-", "AKIA", "ASIA", "AIza", "xox", "eyJ")
_KEY_NEEDLES += ("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_")

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "api_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        ("-----BEGIN",),
    ),
    _Rule(
        "bearer",
        re.compile(r"(?P<keep>bearer\s+)[a-z0-9._~+/=-]{8,}"),
        ("bearer",),
        lowered=True,
        keep_group="keep",
        boundary=_WORD,
    ),
    _Rule(
        "api_key",
        re.compile(rf"(?:{_API_KEY_SHAPES})"),
        _KEY_NEEDLES,
        boundary=_WORD + "-",
    ),
    _Rule(
        "secret",
        re.compile(rf"(?P<keep>(?:{_SECRET_NAMES})[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;<>]{{6,}}"),
        ("key", "token", "secret", "passw"),
        lowered=True,
        keep_group="keep",
        boundary=_WORD.replace("_", ""),  # DB_PASSWORD=... counts
    ),
    _Rule(
        "card",
        re.compile(r"[2-6](?:[ -]?\d){12,18}(?![\w-])"),
        boundary=_WORD + ".-",
        precheck=re.compile(r"\d{4}"),  # every card number has 4 digits in a row
    ),
)
_SHORTEST_MATCH = len("a@b.io")

# Emails are found from their "@" (str.find), not by scanning with a regex: a regex
# that starts with [local-part chars]+ is quadratic on long runs of such characters.
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

_SECRET_KEY = re.compile(
    r"(?i)^(?:x[_-])?(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|id[_-]?token|client[_-]?secret|secret|secret[_-]?key|password|passwd|authorization"
    r"|private[_-]?key)$"
)


def _apply(rule: _Rule, text: str, lowered: str) -> tuple[str, int]:
    """Replace the rule's matches; matching runs on ``lowered`` for lowered rules (same
    positions: the caller only passes a lower-cased text of the same length)."""
    haystack = lowered if rule.lowered else text
    marker = f"[REDACTED:{rule.kind}]"
    pieces: list[str] = []
    pos = count = 0
    for match in rule.regex.finditer(haystack):
        start, end = match.span()
        if rule.kind == "card":
            found = _card_within(text, start, end, rule.boundary)
            if found is None:
                continue
            start, end = found  # may sit inside a longer digit run
        elif start > 0 and haystack[start - 1] in rule.boundary:
            continue
        keep = text[start : match.end(rule.keep_group)] if rule.keep_group else ""
        pieces += [text[pos:start], keep, marker]
        pos = end
        count += 1
    if not count:
        return text, 0
    pieces.append(text[pos:])
    return "".join(pieces), count


def _emails(text: str) -> tuple[str, int]:
    pieces: list[str] = []
    pos = count = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > pos and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        match = _EMAIL.match(text, start) if start < at else None
        if match is not None and match.end() > at:
            pieces += [text[pos:start], "[REDACTED:email]"]
            pos = match.end()
            count += 1
        at = text.find("@", max(at + 1, pos))
    if not count:
        return text, 0
    pieces.append(text[pos:])
    return "".join(pieces), count


def _lower(text: str) -> str:
    """Lower-cased with the same length (a few letters, like "İ", grow when lowered)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _builtin(text: str) -> tuple[str, int]:
    count = 0
    lowered = _lower(text)
    for rule in _RULES:
        if rule.applies(text, lowered):
            text, n = _apply(rule, text, lowered)
            if n:
                count += n
                lowered = _lower(text)
    if "@" in text:
        text, n = _emails(text)
        count += n
    return text, count


def _user_sub(pattern: re.Pattern[str], text: str) -> tuple[str, int]:
    """Replace non-empty matches only: a pattern that can match zero-width (``\\b``,
    lookarounds) must not sprinkle markers between characters."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if not match.group(0):
            return ""
        count += 1
        return REDACTED

    return pattern.sub(replace, text), count


def _card_within(text: str, start: int, end: int, boundary: str) -> tuple[int, int] | None:
    """The longest Luhn-valid card number inside ``text[start:end]``, if any.

    A greedy match may run over a neighbouring number ("2 4111 1111 1111 1111"): then
    the card starts at a later digit group, and that one must still be found.
    """
    starts = [
        i
        for i in range(start, end)
        if text[i] in "23456"
        and (
            (i == start and (i == 0 or text[i - 1] not in boundary))
            or (i > start and text[i - 1] in " -")
        )
    ]
    for s in starts:
        for e in range(end, s, -1):
            if not text[e - 1].isdigit() or (e < end and text[e] not in " -"):
                continue
            digits = "".join(c for c in text[s:e] if c.isdigit())
            if 13 <= len(digits) <= 19 and _luhn(digits):
                return s, e
    return None


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


# Error texts worth remembering: a status message or a (cut) stack trace, not content.
# At most about 1 MB held (texts and their redacted forms), whatever the errors.
_RECENT_ENTRIES = 32
_RECENT_MAX_CHARS = 16 * 1024


@dataclass(frozen=True)
class Redactor:
    """Built-in patterns plus ``patterns`` (user regexes, whole match replaced)."""

    patterns: Sequence[re.Pattern[str]] = ()
    # Results of error_text: redaction is pure, and error texts repeat (see there).
    _recent: dict[str, tuple[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def error_text(self, text: str) -> tuple[str, int]:
        """:meth:`text`, remembered for the last few error texts.

        A failed step's message is its status, its exception event's message and its
        chat span's status; a failing provider fails many steps with the same message
        and stack trace. Redacting a 3 KB stack trace costs about 0.1 ms; looking it up
        costs hashing it. Bounded: at most ``_RECENT_ENTRIES`` texts of at most
        ``_RECENT_MAX_CHARS`` characters each, the oldest forgotten first.
        """
        recent = self._recent
        found = recent.get(text)
        if found is not None:
            return found
        result = self.text(text)
        if len(text) <= _RECENT_MAX_CHARS:
            if len(recent) >= _RECENT_ENTRIES:
                recent.pop(next(iter(recent), text), None)
            recent[text] = result
        return result

    def text(self, text: str) -> tuple[str, int]:
        """``text`` with every secret replaced, and how many were replaced.

        Lone UTF-16 surrogates (valid in JSON, not in UTF-8) become ``?`` first: the
        OTLP encoder would otherwise drop the whole attribute.
        """
        if not text.isascii():
            text = text.encode("utf-8", "replace").decode("utf-8")
        count = 0
        if len(text) >= _SHORTEST_MATCH:
            text, count = _builtin(text)
        for pattern in self.patterns:
            text, n = _user_sub(pattern, text)
            count += n
        return text, count

    def value(self, value: Any) -> tuple[Any, int]:
        """A parsed JSON value with every string redacted; secret-named keys blanked.

        Also made safe to export anywhere: keys become strings, and numbers no strict
        JSON parser or OTLP integer holds (NaN, infinities, ints beyond 64 bits) become
        their text.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool) or value is None:
            return value, 0
        if isinstance(value, int):
            return (value if _INT64_MIN <= value <= _INT64_MAX else str(value)), 0
        if isinstance(value, float):
            return (value if math.isfinite(value) else str(value)), 0
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            total = 0
            for raw_key, item in value.items():
                key = str(raw_key)
                if not key.isascii():
                    key = key.encode("utf-8", "replace").decode("utf-8")
                if _SECRET_KEY.match(key) and item is not None and item != "":
                    out[key] = "[REDACTED:secret]"
                    total += 1
                    continue
                out[key], n = self.value(item)
                total += n
            return out, total
        if isinstance(value, list | tuple):
            items = []
            total = 0
            for item in value:
                redacted, n = self.value(item)
                items.append(redacted)
                total += n
            return items, total
        return str(value), 0  # not JSON at all
