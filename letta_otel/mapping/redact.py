"""Redaction of captured text: built-in secret/PII patterns plus the user's own regexes.

Every captured string goes through :meth:`Redactor.text` (or :meth:`Redactor.value`
for parsed JSON) **before** any budget cuts it, so a cut can never leave half a
secret behind. Each match is replaced by ``[REDACTED:<kind>]`` (``[REDACTED]`` for a
user pattern) and counted; the count ends up in ``letta_otel.redactions``.

Built-in kinds (one combined regex, one pass over the text):

* ``bearer``: ``Bearer <token>`` (the ``Bearer`` word stays);
* ``api_key``: ``sk-…`` (OpenAI, ``sk-proj-``, Anthropic ``sk-ant-``, Letta ``sk-let-``),
  ``xai-…``, AWS ``AKIA…``/``ASIA…``, GitHub ``ghp_``/``gho_``/``ghu_``/``ghs_``/``ghr_``/
  ``github_pat_``, Google ``AIza…``, Slack ``xox?-…``, JWTs (``eyJ….….…``) and PEM
  private key blocks;
* ``secret``: the value of ``api_key=…`` / ``"password": "…"``-style assignments (also
  ``access_token``, ``client_secret``, ``secret_key``, …);
* ``email``: addresses;
* ``card``: 13-19 digit card numbers (spaces/dashes allowed) that pass the Luhn check and
  start like a card (2-6), so ids, timestamps and phone numbers survive.

In parsed JSON, the value under a secret-looking key (``api_key``, ``password``,
``authorization``, ``client_secret``, …) is replaced whole, whatever it looks like.

Pure and I/O-free; user patterns are compiled once by the settings layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"

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
_BUILTIN = re.compile(
    "|".join(
        (
            r"(?P<pem>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)",
            r"(?P<bearer>(?i:\bbearer)\s+)[A-Za-z0-9._~+/=-]{8,}",
            rf"(?<![A-Za-z0-9_-])(?P<key>{_API_KEY_SHAPES})",
            rf"(?P<assign>(?i:\b(?:{_SECRET_NAMES}))[\"']?\s*[=:]\s*[\"']?)"
            r"(?P<assigned>[^\s\"'&,;<>]{6,})",
            r"(?P<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.[A-Za-z]{2,}(?![A-Za-z0-9-]))",
            r"(?P<card>(?<![\w.-])[2-6](?:[ -]?\d){12,18}(?![\w-]))",
        )
    ),
    re.DOTALL,
)
# Cheap pre-check: text with none of these cannot match a built-in pattern.
_TRIGGERS = re.compile(
    r"@|\d{4}|-----BEGIN|(?i:bearer|key|token|secret|passw)"
    r"|sk-|xai-|eyJ|AKIA|ASIA|gh[pousr]_|github_pat_|AIza|xox"
)

_SECRET_KEY = re.compile(
    r"(?i)^(?:x[_-])?(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token"
    r"|id[_-]?token|client[_-]?secret|secret|secret[_-]?key|password|passwd|authorization"
    r"|private[_-]?key)$"
)


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


@dataclass(frozen=True)
class Redactor:
    """Built-in patterns plus ``patterns`` (user regexes, whole match replaced)."""

    patterns: Sequence[re.Pattern[str]] = ()

    def text(self, text: str) -> tuple[str, int]:
        """``text`` with every secret replaced, and how many were replaced.

        Lone UTF-16 surrogates (valid in JSON, not in UTF-8) become ``?`` first: the
        OTLP encoder would otherwise drop the whole attribute.
        """
        if not text.isascii():
            text = text.encode("utf-8", "replace").decode("utf-8")
        count = 0
        if _TRIGGERS.search(text):
            text, count = self._builtin(text)
        for pattern in self.patterns:
            text, n = _user_sub(pattern, text)
            count += n
        return text, count

    @staticmethod
    def _builtin(text: str) -> tuple[str, int]:
        count = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal count
            if match.group("card"):
                digits = "".join(c for c in match.group(0) if c.isdigit())
                if not 13 <= len(digits) <= 19 or not _luhn(digits):
                    return match.group(0)
                count += 1
                return "[REDACTED:card]"
            count += 1
            if match.group("bearer"):
                return f"{match.group('bearer')}[REDACTED:bearer]"
            if match.group("assign"):
                return f"{match.group('assign')}[REDACTED:secret]"
            if match.group("email"):
                return "[REDACTED:email]"
            return "[REDACTED:api_key]"

        return _BUILTIN.sub(replace, text), count

    def value(self, value: Any) -> tuple[Any, int]:
        """A parsed JSON value with every string redacted; secret-named keys blanked."""
        if isinstance(value, str):
            return self.text(value)
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
        if isinstance(value, list):
            items = []
            total = 0
            for item in value:
                redacted, n = self.value(item)
                items.append(redacted)
                total += n
            return items, total
        return value, 0
