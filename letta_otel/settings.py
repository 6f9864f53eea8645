"""The configuration moved to :mod:`letta_otel.config`; these names stay importable from here."""

from __future__ import annotations

from letta_otel.config import (
    ENV_CONFIG,
    ENV_VARS,
    SETTING_SPECS,
    ConfigError,
    Settings,
    SettingSpec,
    add_settings_arguments,
    derive_metrics_endpoint,
    load_settings,
    overrides_from_args,
    settings_reference_markdown,
    split_health_addr,
)

ENV_HEALTH_ADDR = "LETTA_OTEL_HEALTH_ADDR"

__all__ = [
    "ENV_CONFIG",
    "ENV_HEALTH_ADDR",
    "ENV_VARS",
    "SETTING_SPECS",
    "ConfigError",
    "SettingSpec",
    "Settings",
    "add_settings_arguments",
    "derive_metrics_endpoint",
    "load_settings",
    "overrides_from_args",
    "settings_reference_markdown",
    "split_health_addr",
]
