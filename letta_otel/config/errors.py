"""One report for every configuration problem: :class:`ConfigError`.

:func:`problems_of` turns the model's ``ValidationError`` into lines that each name the
setting the way the user set it (``LETTA_OTEL_POLL_INTERVAL (--poll-interval)``,
``--poll-interval (LETTA_OTEL_POLL_INTERVAL)``, ``[daemon] poll_interval in FILE (...)``),
say what is wrong and how to fix it, and show the offending value only when it is not a
secret (URLs without their password).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from letta_otel.config.checks import Namer, Problems
from letta_otel.config.network import EndpointInput
from letta_otel.config.spec import Given, SettingSpec
from letta_otel.config.values import InvalidValue

__all__ = ["ConfigError", "problems_of"]


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason, in a stable order.

    Each problem names the setting (env var and flag or TOML key), what is wrong
    and how to fix it.  Secret values are never included.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems: list[str] = list(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "".join(f"\n  - {problem}" for problem in self.problems)
        return f"invalid configuration ({count} {noun}):{lines}"


def problems_of(exc: ValidationError, specs: Mapping[str, SettingSpec], name: Namer) -> list[str]:
    """Every problem in ``exc``; ``name(field)`` labels a field no input names."""
    problems: list[str] = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, Problems):
            problems.extend(problem.text(name) for problem in cause.problems)
            continue
        field = str(error["loc"][0]) if error["loc"] else ""
        given = error["input"] if isinstance(error["input"], Given) else None
        label = given.label if given else (name(field) if field in specs else field or "input")
        spec = specs.get(field)
        if not isinstance(cause, InvalidValue) or spec is None:
            problems.append(f"{label}: {error['msg']}")  # a value that no parser produces
            continue
        problems.append(_value_problem(label, spec, cause, given.raw if given else None))
    return problems


def _value_problem(label: str, spec: SettingSpec, exc: InvalidValue, raw: Any) -> str:
    message = f"{label}: {exc.message}"
    if exc.show_value and not spec.secret and raw is not None:
        if isinstance(raw, EndpointInput):
            raw = raw.url
        shown = spec.redact(raw) if spec.redact and isinstance(raw, str) else raw
        message += f", got {shown!r}"
    if exc.hint:
        message += f" — {exc.hint}"
    return message
