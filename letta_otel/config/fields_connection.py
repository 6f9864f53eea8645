"""The settings of the two connections: the Letta API and the OTLP traces backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, PlainSerializer, SecretStr

from letta_otel.config.network import (
    DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HTTP_ENDPOINT,
    LETTA_CLOUD_URL,
    parse_endpoint,
    parse_header_list,
    parse_http_url,
    parse_resource_attributes,
    redact_url,
)
from letta_otel.config.spec import (
    SettingSpec,
    mask_values,
    show_map,
    show_masked,
    show_masked_map,
    show_ms,
    show_seconds,
)
from letta_otel.config.units import parse_milliseconds, parse_seconds, seconds_at_least
from letta_otel.config.values import (
    FrozenMap,
    choice,
    parse_api_key,
    parse_bool,
    parse_optional_str,
    parse_readable_file,
    parse_required_str,
)

__all__ = ["ConnectionFields", "StrMap"]


def _plain_dict(value: Mapping[str, str]) -> dict[str, str]:
    # A function, not the dict builtin: pydantic before 2.8 cannot inspect a builtin's
    # signature and refuses the serializer (pyproject allows pydantic 2.7).
    return dict(value)


StrMap = Annotated[
    Mapping[str, str],
    AfterValidator(FrozenMap),
    PlainSerializer(_plain_dict, return_type=dict[str, str]),
]

TLS_FILE = "PEM file; must exist and be readable."
_PROTOCOLS = ("grpc", "http/protobuf")


class ConnectionFields(BaseModel):
    """Letta (where steps come from) and the OTLP traces transport (where spans go)."""

    letta_base_url: Annotated[
        str,
        SettingSpec(
            "Base URL of the Letta server (http or https): Letta Cloud by default; a "
            "self-hosted server is usually http://localhost:8283.",
            parse_http_url,
            env=("LETTA_BASE_URL",),
            toml=("letta.base_url",),
            metavar="URL",
            show=redact_url,
            redact=redact_url,
        ),
    ] = LETTA_CLOUD_URL
    letta_api_key: Annotated[
        SecretStr | None,
        SettingSpec(
            "Letta API key (sent as a bearer token); required for Letta Cloud.",
            parse_api_key,
            env=("LETTA_API_KEY",),
            toml=("letta.api_key",),
            secret=True,
            show=show_masked,
        ),
    ] = None
    letta_project: Annotated[
        str | None,
        SettingSpec(
            "Letta project id or slug, sent as the X-Project header.",
            parse_optional_str,
            env=("LETTA_PROJECT",),
            toml=("letta.project",),
            metavar="PROJECT",
        ),
    ] = None
    letta_timeout: Annotated[
        float,
        SettingSpec(
            "Timeout for each Letta API request, in seconds.",
            parse_seconds,
            env=("LETTA_OTEL_LETTA_TIMEOUT",),
            toml=("letta.timeout",),
            metavar="SECONDS",
            show=show_seconds,
        ),
    ] = 30.0
    letta_deadline: Annotated[
        float,
        SettingSpec(
            "Total time one Letta request may take across its retries (>= the timeout). "
            "Duration: 90s, 2m, plain seconds (120).",
            parse_seconds,
            env=("LETTA_OTEL_LETTA_DEADLINE",),
            toml=("letta.deadline",),
            metavar="DURATION",
            show=show_seconds,
        ),
    ] = 120.0
    otlp_protocol: Annotated[
        Literal["grpc", "http/protobuf"],
        SettingSpec(
            "OTLP transport: grpc or http/protobuf.",
            choice(
                _PROTOCOLS,
                hints={
                    "http": "did you mean 'http/protobuf'?",
                    "http/json": "http/json is not supported by the Python OTLP exporter",
                },
            ),
            env=("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
            toml=("otlp.protocol",),
            metavar="{grpc,http/protobuf}",
        ),
    ] = "grpc"
    otlp_traces_endpoint: Annotated[
        str,
        SettingSpec(
            "Where spans are sent. The traces endpoint is used verbatim; the base endpoint "
            "gets /v1/traces appended for http/protobuf. A flag beats both env forms.",
            parse_endpoint,
            env=("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
            toml=("otlp.traces_endpoint", "otlp.endpoint"),
            keys=("otlp_traces_endpoint", "otlp_endpoint"),
            metavar="URL",
            flag_help=(
                "Full OTLP traces URL, used verbatim for both protocols.",
                "OTLP base endpoint (like OTEL_EXPORTER_OTLP_ENDPOINT): /v1/traces is appended "
                "for http/protobuf. Beats both OTLP endpoint env vars.",
            ),
            show=redact_url,
            redact=redact_url,
            default_doc=f"{DEFAULT_GRPC_ENDPOINT} (grpc), {DEFAULT_HTTP_ENDPOINT} (http/protobuf)",
        ),
    ] = DEFAULT_GRPC_ENDPOINT
    otlp_headers: Annotated[
        StrMap,
        SettingSpec(
            "Extra OTLP request headers, key1=value1,key2=value2 (values percent-encoded; "
            "a TOML table is also accepted). Usually credentials.",
            parse_header_list,
            env=("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
            toml=("otlp.headers",),
            secret=True,
            show=show_masked_map,
            redact=mask_values,
        ),
    ] = FrozenMap()
    otlp_compression: Annotated[
        Literal["none", "gzip", "deflate"],
        SettingSpec(
            "OTLP payload compression: none, gzip or deflate (http only).",
            choice(("none", "gzip", "deflate")),
            env=("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"),
            toml=("otlp.compression",),
            metavar="{none,gzip,deflate}",
        ),
    ] = "none"
    otlp_timeout: Annotated[
        float,
        SettingSpec(
            "OTLP export timeout in MILLISECONDS (OpenTelemetry spec); at least 100.",
            parse_milliseconds,
            env=("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
            toml=("otlp.timeout_ms",),
            metavar="MS",
            show=show_ms,
            default_doc="10000 (ms)",
            native=seconds_at_least(0.1),
        ),
    ] = 10.0
    otlp_insecure: Annotated[
        bool | None,
        SettingSpec(
            "gRPC only: true = plaintext, false = TLS. Unset = decided by the endpoint "
            "scheme (http plaintext, https TLS); must not contradict it.",
            parse_bool,
            env=("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"),
            toml=("otlp.insecure",),
        ),
    ] = None
    otlp_certificate: Annotated[
        Path | None,
        SettingSpec(
            f"CA certificate to verify the collector. {TLS_FILE}",
            parse_readable_file,
            env=("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
            toml=("otlp.certificate",),
            metavar="PATH",
        ),
    ] = None
    otlp_client_key: Annotated[
        Path | None,
        SettingSpec(
            f"Client private key for mTLS (with the client certificate). {TLS_FILE}",
            parse_readable_file,
            env=("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
            toml=("otlp.client_key",),
            metavar="PATH",
        ),
    ] = None
    otlp_client_certificate: Annotated[
        Path | None,
        SettingSpec(
            f"Client certificate for mTLS (with the client key). {TLS_FILE}",
            parse_readable_file,
            env=(
                "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            ),
            toml=("otlp.client_certificate",),
            metavar="PATH",
        ),
    ] = None
    service_name: Annotated[
        str,
        SettingSpec(
            "service.name of the exported resource. If unset, service.name from the "
            "resource attributes (same or higher source) is used.",
            parse_required_str,
            env=("OTEL_SERVICE_NAME",),
            toml=("service.name",),
            metavar="NAME",
        ),
    ] = "letta"
    resource_attributes: Annotated[
        StrMap,
        SettingSpec(
            "Extra resource attributes, key1=value1,key2=value2 (values percent-encoded; "
            "a TOML table is also accepted).",
            parse_resource_attributes,
            env=("OTEL_RESOURCE_ATTRIBUTES",),
            toml=("service.resource_attributes",),
            metavar="K=V,...",
            show=show_map,
        ),
    ] = FrozenMap()
