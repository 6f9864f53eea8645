"""Backend presets: ``LETTA_OTEL_BACKEND`` = ``otlp`` | ``jaeger`` | ``tempo`` | ``honeycomb``.

A preset is data: per setting, the value to use when the user did not set it.
Precedence per setting is **flag > environment > file > preset > default**, so an
explicit ``OTEL_EXPORTER_OTLP_ENDPOINT`` beats the preset's endpoint, an explicit
protocol picks the preset's endpoint *for that protocol*, and so on.

Headers are the one exception: the preset's auth headers (``x-honeycomb-team``,
``x-honeycomb-dataset``, ``x-scope-orgid``) are **merged** with explicit
``OTEL_EXPORTER_OTLP_HEADERS``; an explicit header of the same name wins. So adding
an unrelated header does not silently drop the API key.

The model applies the preset below whatever was given (:mod:`letta_otel.config.resolve`)
and checks what it requires (:mod:`letta_otel.config.checks`); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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

ENV_BACKEND = "LETTA_OTEL_BACKEND"
ENV_HONEYCOMB_API_KEY = "HONEYCOMB_API_KEY"
ENV_HONEYCOMB_DATASET = "HONEYCOMB_DATASET"
ENV_HONEYCOMB_REGION = "LETTA_OTEL_HONEYCOMB_REGION"
ENV_TEMPO_TENANT = "LETTA_OTEL_TEMPO_TENANT"
ENV_MAX_ATTRIBUTE_BYTES = "LETTA_OTEL_MAX_ATTRIBUTE_BYTES"

HONEYCOMB_HOSTS: Mapping[str, str] = {"us": "api.honeycomb.io", "eu": "api.eu1.honeycomb.io"}

_LOCAL_ENDPOINTS: Mapping[str, str] = {
    "grpc": "http://localhost:4317",
    "http/protobuf": "http://localhost:4318/v1/traces",
}


def _honeycomb_endpoints(region: str) -> dict[str, str]:
    host = HONEYCOMB_HOSTS[region]
    return {"grpc": f"https://{host}:443", "http/protobuf": f"https://{host}/v1/traces"}


@dataclass(frozen=True)
class Preset:
    """One backend.

    ``endpoints``: final traces URL per protocol (per region for Honeycomb).
    ``values``: setting field -> value used when that setting is not given.
    ``headers``: (header name, setting field) — the header is sent when the setting
    has a value. ``required``: header names that must end up set. ``options``: the
    setting fields that only mean something with this preset, each with the value
    that is harmless elsewhere (its default, or None).
    """

    name: str
    summary: str
    endpoints: Mapping[str, Mapping[str, str]]
    values: Mapping[str, object] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    required: Mapping[str, str] = field(default_factory=dict)  # header -> what to set it to
    options: Mapping[str, object] = field(default_factory=dict)

    def endpoint(self, protocol: str, region: str | None) -> str:
        """The traces URL this preset sends to over ``protocol``."""
        per_region = self.endpoints.get(region or "us") or self.endpoints[""]
        return per_region[protocol]


PRESETS: Mapping[str, Preset] = {
    "otlp": Preset(
        "otlp",
        "any OTLP endpoint (an OpenTelemetry Collector, …); nothing preset",
        endpoints={"": _LOCAL_ENDPOINTS},
    ),
    "jaeger": Preset(
        "jaeger",
        "Jaeger (v1.35+ or v2) with OTLP on 4317 (gRPC) / 4318 (HTTP)",
        endpoints={"": _LOCAL_ENDPOINTS},
        # Jaeger stores traces only: a metrics push would fail every interval.
        values={"otlp_protocol": "grpc", "otlp_metrics": False},
    ),
    "tempo": Preset(
        "tempo",
        "Grafana Tempo with OTLP on 4317/4318; X-Scope-OrgID from LETTA_OTEL_TEMPO_TENANT",
        endpoints={"": _LOCAL_ENDPOINTS},
        # Tempo stores traces only: a metrics push would fail every interval.
        values={"otlp_protocol": "grpc", "max_attribute_bytes": 2048, "otlp_metrics": False},
        headers=(("x-scope-orgid", "tempo_tenant"),),
        options={"tempo_tenant": None},
    ),
    "honeycomb": Preset(
        "honeycomb",
        "Honeycomb (api.honeycomb.io, EU api.eu1.honeycomb.io) with HONEYCOMB_API_KEY",
        endpoints={region: _honeycomb_endpoints(region) for region in HONEYCOMB_HOSTS},
        # Honeycomb takes OTLP metrics only into a named dataset (x-honeycomb-dataset):
        # pushed when the user turns them on (LETTA_OTEL_METRICS=true, HONEYCOMB_DATASET).
        values={
            "otlp_protocol": "grpc",
            "otlp_compression": "gzip",
            "max_attribute_bytes": 65536,
            "otlp_metrics": False,
        },
        headers=(
            ("x-honeycomb-team", "honeycomb_api_key"),
            ("x-honeycomb-dataset", "honeycomb_dataset"),
        ),
        required={"x-honeycomb-team": "Honeycomb ingest API key"},
        options={"honeycomb_region": "us"},
    ),
}

BACKENDS: tuple[str, ...] = tuple(PRESETS)
