"""The daemon's configuration: one immutable, validated :class:`Settings` (pydantic-settings).

Each field is declared once, with a :class:`~letta_otel.config.spec.SettingSpec` saying
how it is parsed, set (env var, TOML key, flag), shown and documented (the field groups
are in ``fields_*.py``). The model itself enforces every value rule, however it is built:

1. ``resolve_inputs`` (a *before* model validator) applies the OpenTelemetry rules that
   combine inputs: preset, endpoint, service name, metrics fallback
   (:mod:`letta_otel.config.resolve`);
2. one *before* field validator parses each value with its spec's parser;
3. an *after* model validator checks the settings that contradict each other
   (:mod:`letta_otel.config.checks`) and raises them all together.

So ``Settings(otlp_protocol="http/protobuf", poll_interval=0)`` fails just as
``LETTA_OTEL_POLL_INTERVAL=0`` does. ``Settings(...)`` built directly takes only its
arguments and the defaults (values in the fields' units: ``otlp_timeout`` in seconds);
:func:`letta_otel.config.load.load_settings` adds the flags, the environment and the TOML
file as pydantic-settings sources (:mod:`letta_otel.config.sources`), flag > env > file >
preset > default, and turns every problem into one ``ConfigError``.

**One source of truth for the OTLP exporter settings.** The SDK's OTLP exporters would
read the ``OTEL_EXPORTER_OTLP_*`` variables themselves, but they cannot know the flags,
the TOML file, the backend presets or our checks. So this model reads, resolves and
validates every one of them, and the exporters are built with each value passed
explicitly (``letta_otel.export.sink.build_exporter``, ``telemetry.build_metric_exporter``):
what doctor and the start-up line show as the effective endpoint is exactly what the
exporter uses, and an explicit argument beats the SDK's own environment reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Self

from pydantic import ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from letta_otel.config.checks import Problems, cross_field_problems
from letta_otel.config.fields_connection import ConnectionFields
from letta_otel.config.fields_daemon import DaemonFields, MetricsFields
from letta_otel.config.fields_export import (
    BackendFields,
    ContentFields,
    ScaleFields,
    SelectionFields,
)
from letta_otel.config.resolve import resolve_inputs
from letta_otel.config.spec import SettingSpec

__all__ = ["SETTING_SPECS", "SOURCES", "SPECS", "Settings"]

#: The sources of the current :func:`load_settings` call (none: ``Settings(...)`` direct).
SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar(
    "letta_otel_config_sources", default=()
)


# pydantic lists the fields of the last base class first: this is the table order.
class Settings(
    BaseSettings,
    ScaleFields,
    ContentFields,
    BackendFields,
    SelectionFields,
    MetricsFields,
    DaemonFields,
    ConnectionFields,
):
    """The daemon's complete, validated configuration (see the module docstring).

    Durations are ``timedelta``; plain timeouts and intervals are float seconds
    (``otlp_timeout`` too, although it is configured in milliseconds).
    ``resource_attributes`` never contains ``service.name``: that is lifted into
    ``service_name``.  ``otlp_traces_endpoint`` is final (``/v1/traces`` already appended
    where due) and always has a scheme that agrees with ``otlp_insecure``: use TLS exactly
    when it is ``https://``.  A None OTLP metrics transport setting means "as for traces";
    ``otlp_metrics_endpoint`` is final, or None when no metrics URL can be told from a
    custom traces URL (the push then stays off).
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=False,  # the defaults are already typed values
        hide_input_in_errors=True,  # inputs may be secrets
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, *SOURCES.get())

    @model_validator(mode="before")
    @classmethod
    def _combine_inputs(cls, data: Any) -> Any:
        return resolve_inputs(data, SPECS) if isinstance(data, Mapping) else data

    @field_validator("*", mode="before")
    @classmethod
    def _parse_value(cls, value: Any, info: ValidationInfo) -> Any:
        return SPECS[info.field_name or ""].read(value)

    @model_validator(mode="after")
    def _check_together(self) -> Self:
        problems = list(cross_field_problems(self))
        if problems:
            raise Problems(problems)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            spec = SPECS.get(name or "")
            redact = spec.redact if spec else None
            yield name, (redact(value) if redact and value is not None else value)

    def describe(self) -> dict[str, str]:
        """Every setting as display text for a start-up log line; secrets are masked."""
        return {spec.field: spec.display(getattr(self, spec.field)) for spec in SETTING_SPECS}


def _specs() -> tuple[SettingSpec, ...]:
    specs = []
    for name, info in Settings.model_fields.items():
        spec = next(m for m in info.metadata if isinstance(m, SettingSpec))
        specs.append(spec.with_field(name, info.default))
    return tuple(specs)


#: Every setting, in table order.
SETTING_SPECS: tuple[SettingSpec, ...] = _specs()
SPECS: Mapping[str, SettingSpec] = {spec.field: spec for spec in SETTING_SPECS}
