"""Backend presets; they are part of the configuration: see :mod:`letta_otel.config.presets`."""

from __future__ import annotations

from letta_otel.config.presets import (
    BACKENDS,
    ENV_BACKEND,
    ENV_HONEYCOMB_API_KEY,
    ENV_HONEYCOMB_DATASET,
    ENV_HONEYCOMB_REGION,
    ENV_MAX_ATTRIBUTE_BYTES,
    ENV_TEMPO_TENANT,
    HONEYCOMB_HOSTS,
    PRESETS,
    Preset,
)

__all__ = [
    "BACKENDS",
    "ENV_BACKEND",
    "ENV_HONEYCOMB_API_KEY",
    "ENV_HONEYCOMB_DATASET",
    "ENV_HONEYCOMB_REGION",
    "ENV_MAX_ATTRIBUTE_BYTES",
    "ENV_TEMPO_TENANT",
    "HONEYCOMB_HOSTS",
    "PRESETS",
    "Preset",
]
