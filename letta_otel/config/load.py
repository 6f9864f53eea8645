"""Loading the configuration for a command: flags, environment, TOML file -> Settings.

``load_settings`` builds the three pydantic-settings sources, lets the model take what
wins (:mod:`letta_otel.config.settings`) and raises one :class:`ConfigError` with every
problem: the sources' own (the file, unknown keys) first, then the values in table order,
then the settings that contradict each other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from letta_otel.config.errors import ConfigError, problems_of
from letta_otel.config.network import LETTA_CLOUD_URL, is_letta_cloud
from letta_otel.config.settings import SETTING_SPECS, SOURCES, SPECS, Settings
from letta_otel.config.sources import (
    ENV_CONFIG,
    EnvSource,
    FlagSource,
    KeyedSource,
    TomlFileSource,
)
from letta_otel.config.values import InvalidValue

__all__ = ["ENV_CONFIG", "ENV_VARS", "letta_api_key_problem", "load_settings"]

#: Every environment variable read, in table order (the config-file variable last).
ENV_VARS: tuple[str, ...] = (*(name for spec in SETTING_SPECS for name in spec.env), ENV_CONFIG)


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, object] | None = None,
    require_letta_api_key: bool = False,
) -> Settings:
    """Build :class:`Settings` from flags (``overrides``), ``env`` and the config file.

    ``env`` defaults to ``os.environ``.  ``config_path`` defaults to ``$LETTA_OTEL_CONFIG``
    (no file if neither is given).  ``overrides`` are CLI values keyed by field name —
    plus ``otlp_endpoint`` for the base-endpoint flag and the singular filter flags — in
    flag units (``otlp_timeout`` in milliseconds); ``None`` means "not given".  With
    ``require_letta_api_key`` (the commands that call Letta) a missing API key for Letta
    Cloud is a problem too.  Raises :class:`ConfigError` listing every problem.
    """
    environ = os.environ if env is None else env
    if config_path is None and environ.get(ENV_CONFIG, "").strip():
        config_path = Path(environ[ENV_CONFIG].strip()).expanduser()
    file = TomlFileSource(Settings, SETTING_SPECS, config_path)
    flags = FlagSource(Settings, SETTING_SPECS, overrides or {})
    sources: tuple[KeyedSource, ...] = (flags, EnvSource(Settings, SETTING_SPECS, environ), file)
    problems = [*file.problems, *flags.problems]
    settings: Settings | None = None
    token = SOURCES.set(sources)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems.extend(problems_of(exc, SPECS, lambda field: _label(sources, field)))
    finally:
        SOURCES.reset(token)
    if require_letta_api_key:
        problems.extend(letta_api_key_problem(settings, sources))
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def _label(sources: tuple[KeyedSource, ...], field: str) -> str:
    """``field`` named as the source that set it names it (else by its env var)."""
    spec = SPECS[field]
    for source in sources:
        given = source.pick(spec)
        if given is not None:
            return given.label
    return spec.label()


def letta_api_key_problem(
    settings: Settings | None, sources: tuple[KeyedSource, ...] = ()
) -> list[str]:
    """The missing ``LETTA_API_KEY`` for Letta Cloud, as a problem (or nothing)."""
    if settings is not None:
        base_url, has_key = settings.letta_base_url, settings.letta_api_key is not None
    else:  # other problems: judge from what was given, as far as it can be read
        base_spec, key_spec = SPECS["letta_base_url"], SPECS["letta_api_key"]
        base = next((g for s in sources if (g := s.pick(base_spec)) is not None), None)
        try:
            base_url = base_spec.read(base) if base is not None else LETTA_CLOUD_URL
        except InvalidValue:
            return []
        has_key = any(s.pick(key_spec) is not None for s in sources)
    if has_key or not is_letta_cloud(base_url):
        return []
    return [
        f"{SPECS['letta_api_key'].label()}: not set, but Letta Cloud ({base_url}, "
        f"{_label(sources, 'letta_base_url')}) needs an API key; create one in the Letta app "
        "(app.letta.com, API keys) and set LETTA_API_KEY, or set LETTA_BASE_URL to your "
        "self-hosted Letta server (e.g. http://localhost:8283), which needs none"
    ]
