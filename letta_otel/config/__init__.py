"""Configuration: the typed :class:`Settings` and how it is loaded, checked and documented.

The bottom layer of letta-otel: it imports nothing else of the package. Modules:

* ``settings`` — the ``Settings`` model (pydantic-settings) with its validators;
  ``fields_*`` — its fields, each with a ``SettingSpec`` (``spec``);
* ``sources`` — flags, environment and TOML file as pydantic-settings sources;
  ``resolve`` — the OpenTelemetry rules that combine inputs; ``presets`` — backends;
  ``checks`` — settings that contradict each other;
* ``load`` — ``load_settings``; ``errors`` — the one ``ConfigError`` report;
* ``cli`` — the argparse flags; ``reference`` — the README table;
* ``values``, ``units``, ``network``, ``content``, ``selection``, ``shard`` — the value
  types, parsers and defaults (also used by the mapping, selection and sharding code).
"""

from __future__ import annotations

from letta_otel.config.cli import add_settings_arguments, overrides_from_args
from letta_otel.config.errors import ConfigError
from letta_otel.config.load import ENV_CONFIG, ENV_VARS, load_settings
from letta_otel.config.network import derive_metrics_endpoint, split_health_addr
from letta_otel.config.reference import settings_reference_markdown
from letta_otel.config.settings import SETTING_SPECS, Settings
from letta_otel.config.spec import SettingSpec

__all__ = [
    "ENV_CONFIG",
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
