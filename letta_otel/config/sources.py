"""The pydantic-settings sources: command-line flags, the environment and the TOML file.

Each source hands the model, per field, the highest-precedence raw value *it* has,
wrapped in a :class:`~letta_otel.config.spec.Given` that says where it came from;
pydantic-settings lets the first source that has a field win (flag > env > file), and
the model parses and checks what won (:mod:`letta_otel.config.settings`).

Within one source the OpenTelemetry rules apply: ``OTEL_EXPORTER_OTLP_TRACES_X`` beats
``OTEL_EXPORTER_OTLP_X``, and an empty variable counts as unset. The OTLP traces
settings also pass on their signal-neutral value (``OTEL_EXPORTER_OTLP_X``, ``[otlp] x``,
``--otlp-x``) under :func:`neutral_key`: the metrics push falls back to it, not to a
traces-only value (OTel exporter spec; :mod:`letta_otel.config.resolve`).

Problems a source finds in itself (an unreadable or malformed TOML file, an unknown key,
an unknown override) are kept in ``problems`` and reported with the rest.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from letta_otel.config.spec import Given, SettingSpec, Source
from letta_otel.config.values import suggest

__all__ = [
    "ENV_CONFIG",
    "METRICS_TWINS",
    "EnvSource",
    "FlagSource",
    "KeyedSource",
    "TomlFileSource",
    "neutral_key",
]

ENV_CONFIG = "LETTA_OTEL_CONFIG"

# Each OTLP metrics transport setting and the traces setting it falls back to.
METRICS_TWINS: tuple[tuple[str, str], ...] = (
    ("otlp_metrics_protocol", "otlp_protocol"),
    ("otlp_metrics_headers", "otlp_headers"),
    ("otlp_metrics_compression", "otlp_compression"),
    ("otlp_metrics_timeout", "otlp_timeout"),
    ("otlp_metrics_insecure", "otlp_insecure"),
    ("otlp_metrics_certificate", "otlp_certificate"),
    ("otlp_metrics_client_key", "otlp_client_key"),
    ("otlp_metrics_client_certificate", "otlp_client_certificate"),
    ("otlp_metrics_endpoint", "otlp_traces_endpoint"),
)
_NEUTRAL_OF = frozenset(twin for _, twin in METRICS_TWINS)


def neutral_key(field: str) -> str:
    """The input key under which a source passes on ``field``'s signal-neutral value."""
    return f"{field}@neutral"


class KeyedSource(PydanticBaseSettingsSource):
    """A source that finds each field under one of the keys its spec lists for it."""

    source: Source
    file_name = ""

    def __init__(self, settings_cls: type[BaseSettings], specs: Iterable[SettingSpec]) -> None:
        super().__init__(settings_cls)
        self.specs = tuple(specs)
        self.problems: list[str] = []

    def keys_of(self, spec: SettingSpec) -> tuple[str, ...]:
        raise NotImplementedError

    def lookup(self, key: str) -> tuple[bool, object]:
        raise NotImplementedError

    def pick(self, spec: SettingSpec) -> Given | None:
        """The first of ``spec``'s keys this source has, as a :class:`Given`."""
        for index, key in enumerate(self.keys_of(spec)):
            found, raw = self.lookup(key)
            if found:
                return Given(
                    raw, self.source, index, spec.label(self.source, index, self.file_name)
                )
        return None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        spec = next(s for s in self.specs if s.field == field_name)
        return self.pick(spec), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in self.specs:
            given = self.pick(spec)
            if given is not None:
                values[spec.field] = given
            if spec.field in _NEUTRAL_OF and (neutral := self.pick(spec.neutral())) is not None:
                values[neutral_key(spec.field)] = neutral
        return values


class FlagSource(KeyedSource):
    """Command-line flags, as ``{override key: value}`` (``None`` = not given)."""

    source: Source = "flag"

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        specs: Iterable[SettingSpec],
        overrides: Mapping[str, object],
    ) -> None:
        super().__init__(settings_cls, specs)
        known = {key for spec in self.specs for key in spec.override_keys}
        self.overrides: dict[str, object] = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                guess = suggest(key, sorted(known))
                hint = f" — did you mean '{guess}'?" if guess else ""
                self.problems.append(f"override '{key}': not a setting{hint}")
                continue
            self.overrides[key] = value

    def keys_of(self, spec: SettingSpec) -> tuple[str, ...]:
        return spec.override_keys

    def lookup(self, key: str) -> tuple[bool, object]:
        return key in self.overrides, self.overrides.get(key)


class EnvSource(KeyedSource):
    """The environment (a mapping, ``os.environ`` by default): only our variables, and
    an empty value counts as unset (OTel spec)."""

    source: Source = "env"

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        specs: Iterable[SettingSpec],
        environ: Mapping[str, str],
    ) -> None:
        super().__init__(settings_cls, specs)
        self.environ = {k: v for k, v in environ.items() if v.strip()}

    def keys_of(self, spec: SettingSpec) -> tuple[str, ...]:
        return spec.env

    def lookup(self, key: str) -> tuple[bool, object]:
        return key in self.environ, self.environ.get(key)


class TomlFileSource(KeyedSource):
    """The TOML file: ``[section] key`` per setting; unknown keys are problems."""

    source: Source = "file"

    def __init__(
        self, settings_cls: type[BaseSettings], specs: Iterable[SettingSpec], path: Path | None
    ) -> None:
        super().__init__(settings_cls, specs)
        self.file_name = str(path)
        self.sections: dict[str, tuple[str, ...]] = {}
        for spec in self.specs:
            for key in spec.toml:
                section, _, name = key.partition(".")
                self.sections[section] = (*self.sections.get(section, ()), name)
        document = self._read(path) if path is not None else None
        self.values = self._flatten(document) if document is not None else {}

    def keys_of(self, spec: SettingSpec) -> tuple[str, ...]:
        return spec.toml

    def lookup(self, key: str) -> tuple[bool, object]:
        return key in self.values, self.values.get(key)

    def _read(self, path: Path) -> dict[str, Any] | None:
        where = f"config file {path} (--config / {ENV_CONFIG})"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.problems.append(f"{where}: does not exist; check the path")
            return None
        except IsADirectoryError:
            self.problems.append(f"{where}: is a directory; give the path of a .toml file")
            return None
        except OSError as exc:
            self.problems.append(
                f"{where}: cannot be read ({exc.strerror or exc}); fix its permissions"
            )
            return None
        try:
            return tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            self.problems.append(f"{where}: is not UTF-8 text; save it as UTF-8")
        except tomllib.TOMLDecodeError as exc:
            self.problems.append(f"{where}: TOML syntax error: {exc}; fix the file")
        return None

    def _flatten(self, document: Mapping[str, Any]) -> dict[str, object]:
        """``{'daemon': {'poll_interval': 5}}`` -> ``{'daemon.poll_interval': 5}``."""
        values: dict[str, object] = {}
        for section, table in document.items():
            if section not in self.sections:
                self.problems.append(self._unknown_section(section, table))
                continue
            if not isinstance(table, dict):
                self.problems.append(
                    f"config file {self.file_name}: '{section}' must be a [{section}] "
                    "section (a table)"
                )
                continue
            for name, value in table.items():
                if name in self.sections[section]:
                    values[f"{section}.{name}"] = value
                else:
                    self.problems.append(self._unknown_key(section, name))
        return values

    def _unknown_section(self, section: str, table: object) -> str:
        if not isinstance(table, dict):
            return self._unknown_key(None, section)
        guess = suggest(section, self.sections)
        fix = (
            f"did you mean [{guess}]?"
            if guess
            else f"valid sections are {', '.join(f'[{s}]' for s in self.sections)}"
        )
        return f"config file {self.file_name}: unknown section [{section}] — {fix}"

    def _unknown_key(self, section: str | None, name: str) -> str:
        where = f"[{section}]" if section else "the top level"
        guess = suggest(name, self.sections[section]) if section else None
        home = next((s for s, keys in self.sections.items() if name in keys), None)
        if guess:
            fix = f"did you mean '{guess}'?"
        elif home:
            fix = f"it belongs in the [{home}] section"
        else:
            fix = "remove it (see config/letta-otel.example.toml for valid keys)"
        return f"config file {self.file_name}: unknown key '{name}' in {where} — {fix}"
