"""The configuration flags, built from the settings' specs, for any argparse (sub)parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from letta_otel.config.settings import SETTING_SPECS
from letta_otel.config.sources import ENV_CONFIG
from letta_otel.config.spec import SettingSpec, toml_label

__all__ = ["add_settings_arguments", "overrides_from_args"]

_CONFIG_HELP = (
    f"TOML config file (also ${ENV_CONFIG}). Precedence: flag > environment > file > "
    "backend preset > default. Secrets (LETTA_API_KEY, OTLP headers) have no flags because "
    "command lines are visible to other users in `ps`; set them in the environment or in "
    "this file."
)


def _flag_help(spec: SettingSpec, index: int) -> str:
    text = spec.flag_help[index] if index < len(spec.flag_help) else spec.help
    per_flag = len(spec.env) == len(spec.override_keys)  # e.g. the two endpoint forms
    env = spec.env[index] if per_flag else " > ".join(spec.env)
    toml = spec.toml[min(index, len(spec.toml) - 1)] if spec.toml else None
    where = f"env {env}" + (f", TOML {toml_label(toml)}" if toml else "")
    return f"{text} [{where}; default: {spec.default_text}]".replace("%", "%%")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per non-secret setting; every default is ``None``.

    Values stay text here: the model parses them, so a bad one is reported with all
    the other problems (exit 2) rather than by argparse alone.
    """
    group = parser.add_argument_group(
        "configuration", "Each flag overrides its environment variable and the config file."
    )
    group.add_argument("--config", metavar="PATH", default=None, help=_CONFIG_HELP)
    for spec in SETTING_SPECS:
        if spec.secret:
            continue  # command lines are visible to other users
        for index, (flag, key) in enumerate(zip(spec.flags, spec.override_keys, strict=True)):
            help_text = _flag_help(spec, index)
            if spec.is_boolean:
                group.add_argument(
                    flag,
                    dest=key,
                    default=None,
                    action=argparse.BooleanOptionalAction,
                    help=help_text,
                )
            else:
                group.add_argument(
                    flag,
                    dest=key,
                    default=None,
                    action="append" if spec.repeatable else "store",
                    metavar=spec.metavar or "VALUE",
                    help=help_text,
                )


def overrides_from_args(ns: argparse.Namespace) -> tuple[Path | None, dict[str, object]]:
    """``(config_path, overrides)`` for :func:`load_settings` from parsed flags."""
    config = getattr(ns, "config", None)
    overrides: dict[str, object] = {}
    for spec in SETTING_SPECS:
        for key in spec.override_keys if spec.flags else ():
            value = getattr(ns, key, None)
            if value is not None:
                overrides[key] = value
    return (Path(config).expanduser() if config is not None else None), overrides
