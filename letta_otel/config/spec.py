"""Per-setting metadata (:class:`SettingSpec`) and where a raw value came from (:class:`Given`).

Each field of :class:`~letta_otel.config.settings.Settings` carries one ``SettingSpec`` in
its ``Annotated`` metadata: how the value is parsed, which environment variables, TOML
keys and flags set it, whether it is secret, how it is shown and documented. The sources,
the argparse flags, the error report and the README table all read these specs; adding a
setting means adding one annotated field.

A source hands the model each raw value wrapped in a :class:`Given` that records where it
came from, so that the model can apply the rules that depend on it (a base endpoint gets
``/v1/traces``; ``service.name`` from the resource attributes competes by precedence) and
a problem names the setting the way the user set it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from letta_otel.config.values import format_number, parse_bool

__all__ = [
    "MASK",
    "NOT_SET",
    "Given",
    "SettingSpec",
    "Source",
    "mask_values",
    "show_lower",
    "show_map",
    "show_masked",
    "show_masked_map",
    "show_ms",
    "show_seconds",
    "toml_label",
]

Source = Literal["flag", "env", "file"]
NOT_SET = "(not set)"
MASK = "***"


def _show(value: Any) -> str:
    return str(value)


def show_seconds(value: float) -> str:
    return f"{format_number(value)}s"


def show_ms(value: float) -> str:
    return f"{format_number(value * 1000)}ms"


def show_masked(_: Any) -> str:
    return MASK


def show_lower(value: Any) -> str:
    return str(value).lower()


def show_map(value: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in value.items()) or "(none)"


def mask_values(value: Mapping[str, str]) -> dict[str, str]:
    return dict.fromkeys(value, MASK)


def show_masked_map(value: Mapping[str, str]) -> str:
    return show_map(mask_values(value))


def toml_label(key: str) -> str:
    """``'daemon.poll_interval'`` -> ``'[daemon] poll_interval'``."""
    section, _, name = key.partition(".")
    return f"[{section}] {name}"


def _nth(items: tuple[str, ...], index: int) -> str | None:
    return items[min(index, len(items) - 1)] if items else None


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """How one :class:`Settings` field is configured, validated, shown and documented.

    ``env``, ``toml`` and ``keys`` list, in precedence order, the environment variables,
    ``section.key`` TOML keys and override keys / flag names (a key ``otlp_endpoint`` is
    the flag ``--otlp-endpoint``) that set the field.  Position *i* means the same thing
    in each list (for the endpoint: 0 = full traces URL, 1 = base URL).  ``secret``
    settings get no CLI flag (command lines show in ``ps``) and their values are never
    echoed.  ``parse`` reads what a source gives (text, or native TOML values);
    ``native`` (default: ``parse``) reads a value given to ``Settings(...)`` directly,
    for the settings whose configured unit differs from the field's (milliseconds).
    ``field`` is filled in from the field name.
    """

    help: str
    parse: Callable[[object], Any]
    env: tuple[str, ...] = ()
    toml: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    secret: bool = False
    metavar: str | None = None
    flag_help: tuple[str, ...] = ()
    show: Callable[[Any], str] = _show
    redact: Callable[[Any], Any] | None = None
    default_doc: str | None = None
    repeatable: bool = False  # the flag may be given several times (a list setting)
    native: Callable[[object], Any] | None = None
    field: str = ""
    default: Any = None

    @property
    def override_keys(self) -> tuple[str, ...]:
        return self.keys or (self.field,)

    @property
    def flags(self) -> tuple[str, ...]:
        if self.secret:
            return ()
        return tuple("--" + key.replace("_", "-") for key in self.override_keys)

    @property
    def is_boolean(self) -> bool:
        return self.parse is parse_bool

    @property
    def default_text(self) -> str:
        if self.default_doc is not None:
            return self.default_doc
        return self.display(self.default)

    def display(self, value: Any) -> str:
        return NOT_SET if value is None else self.show(value)

    def with_field(self, name: str, default: Any) -> SettingSpec:
        return replace(self, field=name, default=default)

    def read(self, value: object) -> Any:
        """The typed value of what a source gave (a :class:`Given`) or a Python value."""
        if isinstance(value, Given):
            return self.parse(value.raw)
        return (self.native or self.parse)(value)

    def neutral(self) -> SettingSpec:
        """This OTLP traces setting's signal-neutral sources (``OTEL_EXPORTER_OTLP_X``...).

        They also configure the metrics push; the traces-only ones do not.
        """
        return replace(
            self,
            env=tuple(e for e in self.env if not e.startswith("OTEL_EXPORTER_OTLP_TRACES_")),
            toml=tuple(t for t in self.toml if t != "otlp.traces_endpoint"),
            keys=tuple(k for k in self.override_keys if k != "otlp_traces_endpoint"),
        )

    def label(self, source: Source | None = None, index: int = 0, file_name: str = "") -> str:
        """Names the setting as the user set it (``source``), plus its other spelling."""
        env = _nth(self.env, index)
        flag, toml = _nth(self.flags, index), _nth(self.toml, index)
        toml_text = toml_label(toml) if toml else None
        if source is None or source == "env":
            other = flag or toml_text
            return f"{env} ({other})" if other else str(env)
        if source == "flag":
            name = flag or f"override '{_nth(self.override_keys, index)}'"
            return f"{name} ({env})"
        return f"{toml_text} in {file_name} ({env})"


@dataclass(frozen=True, slots=True)
class Given:
    """A raw value from a source: ``index`` is its position in the spec's key lists."""

    raw: object = dataclasses.field(repr=False)  # may be a secret
    source: Source
    index: int
    label: str

    @property
    def rank(self) -> int:
        """Lower wins: flag 0, env 1, file 2 (a value passed to ``Settings`` directly: -1)."""
        return ("flag", "env", "file").index(self.source)

    def same_choice(self, other: object) -> bool:
        """The same raw value from the same source (the key may differ between views)."""
        return isinstance(other, Given) and other.source == self.source and other.raw == self.raw

    def carrying(self, raw: object) -> Given:
        """This origin with another (derived) raw value."""
        return replace(self, raw=raw)
