"""Configuration: one immutable :class:`Settings` from CLI flags, env vars and a TOML file.

Precedence is **flag > environment > config file > default**, decided per setting:
the highest-precedence source that sets a setting supplies its *whole* value (maps
such as headers or resource attributes are not merged across sources).  Within the
environment the OpenTelemetry ``OTEL_EXPORTER_OTLP_TRACES_*`` variable beats its
generic ``OTEL_EXPORTER_OTLP_*`` twin; an empty variable counts as unset (OTel spec).
Only the winning value of each setting is validated, so a flag can paper over a
broken environment variable.

Every setting is described once, in :data:`SETTING_SPECS`; loading, the argparse
flags and the README table (:func:`settings_reference_markdown`) are all driven by
that table.  Adding a setting = one field on :class:`Settings` + one ``SettingSpec``.

All problems — config-file syntax, unknown keys, bad values, contradictions — are
collected and raised together as one :class:`ConfigError`.  Secrets (the Letta API
key, OTLP header values, passwords in URLs) never appear in ``repr``/``str`` of the
settings, in ``describe()`` or in error messages.

OTLP endpoint resolution (OpenTelemetry exporter spec):

* ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``[otlp] traces_endpoint`` /
  ``--otlp-traces-endpoint`` is used verbatim for both protocols;
* else ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``[otlp] endpoint`` / ``--otlp-endpoint`` is
  a base URL: ``/v1/traces`` is appended for ``http/protobuf``, gRPC uses it as is;
* else ``http://localhost:4317`` (grpc) or ``http://localhost:4318/v1/traces``.

A flag beats both environment forms.  For gRPC a bare ``host:port`` is accepted like
the Python gRPC exporter does (TLS unless insecure) and normalised to
``https://host:port`` (``http://`` when insecure is true), so the resolved
``otlp_traces_endpoint`` always has a scheme and the scheme states the transport
security: exporters should use TLS exactly when it is ``https``.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)

from letta_otel._config_parsing import (
    FrozenMap,
    InvalidValue,
    choice,
    format_bytes,
    format_duration,
    format_number,
    parse_bool,
    parse_byte_size,
    parse_duration,
    parse_endpoint_url,
    parse_header_list,
    parse_http_url,
    parse_int_range,
    parse_kv_list,
    parse_milliseconds,
    parse_optional_str,
    parse_readable_file,
    parse_required_str,
    parse_seconds,
    parse_state_path,
    redact_url,
    suggest,
)
from letta_otel.sharding import Shard, parse_shard

__all__ = [
    "ENV_VARS",
    "SETTING_SPECS",
    "ConfigError",
    "SettingSpec",
    "Settings",
    "add_settings_arguments",
    "load_settings",
    "overrides_from_args",
    "settings_reference_markdown",
]

# ----------------------------------------------------------------- environment names

ENV_CONFIG = "LETTA_OTEL_CONFIG"
ENV_LETTA_BASE_URL = "LETTA_BASE_URL"
ENV_LETTA_API_KEY = "LETTA_API_KEY"
ENV_LETTA_PROJECT = "LETTA_PROJECT"
ENV_LETTA_TIMEOUT = "LETTA_OTEL_LETTA_TIMEOUT"
ENV_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
ENV_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_OTLP_TRACES_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
ENV_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_OTLP_TRACES_COMPRESSION = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"
ENV_OTLP_COMPRESSION = "OTEL_EXPORTER_OTLP_COMPRESSION"
ENV_OTLP_TRACES_TIMEOUT = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"
ENV_OTLP_TIMEOUT = "OTEL_EXPORTER_OTLP_TIMEOUT"
ENV_OTLP_TRACES_INSECURE = "OTEL_EXPORTER_OTLP_TRACES_INSECURE"
ENV_OTLP_INSECURE = "OTEL_EXPORTER_OTLP_INSECURE"
ENV_OTLP_TRACES_CERTIFICATE = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"
ENV_OTLP_CERTIFICATE = "OTEL_EXPORTER_OTLP_CERTIFICATE"
ENV_OTLP_TRACES_CLIENT_KEY = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"
ENV_OTLP_CLIENT_KEY = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
ENV_OTLP_TRACES_CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"
ENV_OTLP_CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
ENV_SERVICE_NAME = "OTEL_SERVICE_NAME"
ENV_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
ENV_STATE_PATH = "LETTA_OTEL_STATE_PATH"
ENV_POLL_INTERVAL = "LETTA_OTEL_POLL_INTERVAL"
ENV_LOG_LEVEL = "LETTA_OTEL_LOG_LEVEL"
ENV_LOG_FORMAT = "LETTA_OTEL_LOG_FORMAT"
ENV_INITIAL_LOOKBACK = "LETTA_OTEL_INITIAL_LOOKBACK"
ENV_PENDING_TIMEOUT = "LETTA_OTEL_PENDING_TIMEOUT"
ENV_ENRICH_GRACE = "LETTA_OTEL_ENRICH_GRACE"
ENV_REREAD_WINDOW = "LETTA_OTEL_REREAD_WINDOW"
ENV_DISCOVERY = "LETTA_OTEL_DISCOVERY"
ENV_ADOPT_LETTA_TRACE_ID = "LETTA_OTEL_ADOPT_LETTA_TRACE_ID"
ENV_MAX_CONCURRENCY = "LETTA_OTEL_MAX_CONCURRENCY"
ENV_MAX_BATCH_SPANS = "LETTA_OTEL_MAX_BATCH_SPANS"
ENV_MAX_BATCH_BYTES = "LETTA_OTEL_MAX_BATCH_BYTES"
ENV_MAX_RPS = "LETTA_OTEL_MAX_RPS"
ENV_SHARD = "LETTA_OTEL_SHARD"
ENV_BACKFILL_MAX_AGE = "LETTA_OTEL_BACKFILL_MAX_AGE"

DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318/v1/traces"
_DEFAULT_ENDPOINTS = {"grpc": DEFAULT_GRPC_ENDPOINT, "http/protobuf": DEFAULT_HTTP_ENDPOINT}
_SERVICE_NAME_ATTRIBUTE = "service.name"
_NOT_SET = "(not set)"
_MASK = "***"


# ------------------------------------------------------------------------------ error


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists every reason, in a stable order.

    Each problem names the setting (env var and flag or TOML key), what is wrong
    and how to fix it.  Secret values are never included.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems: list[str] = list(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "".join(f"\n  - {problem}" for problem in self.problems)
        return f"invalid configuration ({count} {noun}):{lines}"


# --------------------------------------------------------------------------- settings

StrMap = Annotated[
    Mapping[str, str],
    AfterValidator(FrozenMap),
    PlainSerializer(dict, return_type=dict[str, str]),
]


class Settings(BaseModel, frozen=True, extra="forbid"):
    """The daemon's complete, validated configuration.  Build it with :func:`load_settings`.

    Direct construction (handy in tests) checks types only, not the value rules
    that :func:`load_settings` enforces.  Durations are ``timedelta``; plain timeouts
    and intervals are float seconds (``otlp_timeout`` too, although it is configured
    in milliseconds).  ``resource_attributes`` never contains ``service.name``: that
    is lifted into ``service_name``.  ``otlp_traces_endpoint`` is final (``/v1/traces``
    already appended where due) and always has a scheme that agrees with
    ``otlp_insecure``: use TLS exactly when it is ``https://``.
    """

    letta_base_url: str = "http://localhost:8283"
    letta_api_key: SecretStr | None = None
    letta_project: str | None = None
    letta_timeout: float = 30.0
    otlp_protocol: Literal["grpc", "http/protobuf"] = "grpc"
    otlp_traces_endpoint: str = DEFAULT_GRPC_ENDPOINT
    otlp_headers: StrMap = FrozenMap()
    otlp_compression: Literal["none", "gzip", "deflate"] = "none"
    otlp_timeout: float = 10.0
    otlp_insecure: bool | None = None
    otlp_certificate: Path | None = None
    otlp_client_key: Path | None = None
    otlp_client_certificate: Path | None = None
    service_name: str = "letta"
    resource_attributes: StrMap = FrozenMap()
    state_path: Path = Path("letta-otel.db")
    poll_interval: float = 5.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    initial_lookback: timedelta = timedelta(hours=1)
    pending_timeout: timedelta = timedelta(hours=1)
    enrich_grace: timedelta = timedelta(seconds=60)
    reread_window: timedelta = timedelta(minutes=15)
    discovery: Literal["auto", "steps", "runs"] = "auto"
    adopt_letta_trace_id: bool = False
    max_concurrency: int = 16
    max_batch_spans: int = 512
    max_batch_bytes: int = 3_000_000
    max_rps: float = 0.0
    shard: Shard | None = None
    backfill_max_age: timedelta = timedelta(days=7)

    @model_validator(mode="before")
    @classmethod
    def _default_endpoint_for_protocol(cls, data: Any) -> Any:
        if isinstance(data, dict) and "otlp_traces_endpoint" not in data:
            protocol = data.get("otlp_protocol", "grpc")
            endpoint = _DEFAULT_ENDPOINTS.get(protocol, DEFAULT_GRPC_ENDPOINT)
            return {**data, "otlp_traces_endpoint": endpoint}
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            spec = _SPECS_BY_FIELD.get(name or "")
            redact = spec.redact if spec else None
            yield name, (redact(value) if redact and value is not None else value)

    def describe(self) -> dict[str, str]:
        """Every setting as display text for a start-up log line; secrets are masked."""
        return {spec.field: spec.display(getattr(self, spec.field)) for spec in SETTING_SPECS}


# ------------------------------------------------------------------------ spec table

Source = Literal["flag", "env", "file"]


def _show(value: Any) -> str:
    return str(value)


def _show_seconds(value: float) -> str:
    return f"{format_number(value)}s"


def _show_ms(value: float) -> str:
    return f"{format_number(value * 1000)}ms"


def _show_masked(_: Any) -> str:
    return _MASK


def _show_map(value: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in value.items()) or "(none)"


def _mask_values(value: Mapping[str, str]) -> dict[str, str]:
    return dict.fromkeys(value, _MASK)


def _show_masked_map(value: Mapping[str, str]) -> str:
    return _show_map(_mask_values(value))


def _parse_api_key(raw: object) -> SecretStr | None:
    if isinstance(raw, SecretStr):
        raw = raw.get_secret_value()
    text = parse_optional_str(raw)
    if text is not None and any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise InvalidValue("contains whitespace or a control character; check for a stray newline")
    return SecretStr(text) if text is not None else None


def _parse_rps(raw: object) -> float:
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        value = float(text) if isinstance(text, str | int | float) else None
    except ValueError:
        value = None
    if isinstance(raw, bool) or value is None or not 0 <= value <= 10_000:
        raise InvalidValue("must be a number of requests per second from 0 (no limit) to 10000")
    return value


def _parse_resource_attributes(raw: object) -> FrozenMap:
    return parse_kv_list(raw, secret_values=False)


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """How one :class:`Settings` field is configured, validated, shown and documented.

    ``env``, ``toml`` and ``keys`` list, in precedence order, the environment
    variables, ``section.key`` TOML keys and override keys / flag names (a key
    ``otlp_endpoint`` is the flag ``--otlp-endpoint``) that set the field.  Position
    *i* means the same thing in each list (for the endpoint: 0 = full traces URL,
    1 = base URL).  ``secret`` settings get no CLI flag (command lines show in ``ps``)
    and their values are never echoed.
    """

    field: str
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
        return self.display(Settings.model_fields[self.field].default)

    def display(self, value: Any) -> str:
        return _NOT_SET if value is None else self.show(value)


_DURATION_HELP = "Duration: 90s, 15m, 1h, 2d, 1h30m, plain seconds (3600) or ISO-8601 (PT1H)."
_TLS_FILE = "PEM file; must exist and be readable."

SETTING_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "letta_base_url",
        "Base URL of the Letta server (http or https).",
        parse_http_url,
        env=(ENV_LETTA_BASE_URL,),
        toml=("letta.base_url",),
        metavar="URL",
        show=redact_url,
        redact=redact_url,
    ),
    SettingSpec(
        "letta_api_key",
        "Letta API key (sent as a bearer token).",
        _parse_api_key,
        env=(ENV_LETTA_API_KEY,),
        toml=("letta.api_key",),
        secret=True,
        show=_show_masked,
    ),
    SettingSpec(
        "letta_project",
        "Letta project id or slug, sent as the X-Project header.",
        parse_optional_str,
        env=(ENV_LETTA_PROJECT,),
        toml=("letta.project",),
        metavar="PROJECT",
    ),
    SettingSpec(
        "letta_timeout",
        "Timeout for each Letta API request, in seconds.",
        parse_seconds,
        env=(ENV_LETTA_TIMEOUT,),
        toml=("letta.timeout",),
        metavar="SECONDS",
        show=_show_seconds,
    ),
    SettingSpec(
        "otlp_protocol",
        "OTLP transport: grpc or http/protobuf.",
        choice(
            ("grpc", "http/protobuf"),
            hints={
                "http": "did you mean 'http/protobuf'?",
                "http/json": "http/json is not supported by the Python OTLP exporter",
            },
        ),
        env=(ENV_OTLP_TRACES_PROTOCOL, ENV_OTLP_PROTOCOL),
        toml=("otlp.protocol",),
        metavar="{grpc,http/protobuf}",
    ),
    SettingSpec(
        "otlp_traces_endpoint",
        "Where spans are sent. The traces endpoint is used verbatim; the base endpoint "
        "gets /v1/traces appended for http/protobuf. A flag beats both env forms.",
        parse_required_str,
        env=(ENV_OTLP_TRACES_ENDPOINT, ENV_OTLP_ENDPOINT),
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
    SettingSpec(
        "otlp_headers",
        "Extra OTLP request headers, key1=value1,key2=value2 (values percent-encoded; "
        "a TOML table is also accepted). Usually credentials.",
        parse_header_list,
        env=(ENV_OTLP_TRACES_HEADERS, ENV_OTLP_HEADERS),
        toml=("otlp.headers",),
        secret=True,
        show=_show_masked_map,
        redact=_mask_values,
    ),
    SettingSpec(
        "otlp_compression",
        "OTLP payload compression: none, gzip or deflate (http only).",
        choice(("none", "gzip", "deflate")),
        env=(ENV_OTLP_TRACES_COMPRESSION, ENV_OTLP_COMPRESSION),
        toml=("otlp.compression",),
        metavar="{none,gzip,deflate}",
    ),
    SettingSpec(
        "otlp_timeout",
        "OTLP export timeout in MILLISECONDS (OpenTelemetry spec); at least 100.",
        parse_milliseconds,
        env=(ENV_OTLP_TRACES_TIMEOUT, ENV_OTLP_TIMEOUT),
        toml=("otlp.timeout_ms",),
        metavar="MS",
        show=_show_ms,
        default_doc="10000 (ms)",
    ),
    SettingSpec(
        "otlp_insecure",
        "gRPC only: true = plaintext, false = TLS. Unset = decided by the endpoint "
        "scheme (http plaintext, https TLS); must not contradict it.",
        parse_bool,
        env=(ENV_OTLP_TRACES_INSECURE, ENV_OTLP_INSECURE),
        toml=("otlp.insecure",),
    ),
    SettingSpec(
        "otlp_certificate",
        f"CA certificate to verify the collector. {_TLS_FILE}",
        parse_readable_file,
        env=(ENV_OTLP_TRACES_CERTIFICATE, ENV_OTLP_CERTIFICATE),
        toml=("otlp.certificate",),
        metavar="PATH",
    ),
    SettingSpec(
        "otlp_client_key",
        f"Client private key for mTLS (with the client certificate). {_TLS_FILE}",
        parse_readable_file,
        env=(ENV_OTLP_TRACES_CLIENT_KEY, ENV_OTLP_CLIENT_KEY),
        toml=("otlp.client_key",),
        metavar="PATH",
    ),
    SettingSpec(
        "otlp_client_certificate",
        f"Client certificate for mTLS (with the client key). {_TLS_FILE}",
        parse_readable_file,
        env=(ENV_OTLP_TRACES_CLIENT_CERTIFICATE, ENV_OTLP_CLIENT_CERTIFICATE),
        toml=("otlp.client_certificate",),
        metavar="PATH",
    ),
    SettingSpec(
        "service_name",
        "service.name of the exported resource. If unset, service.name from the "
        "resource attributes (same or higher source) is used.",
        parse_required_str,
        env=(ENV_SERVICE_NAME,),
        toml=("service.name",),
        metavar="NAME",
    ),
    SettingSpec(
        "resource_attributes",
        "Extra resource attributes, key1=value1,key2=value2 (values percent-encoded; "
        "a TOML table is also accepted).",
        _parse_resource_attributes,
        env=(ENV_RESOURCE_ATTRIBUTES,),
        toml=("service.resource_attributes",),
        metavar="K=V,...",
        show=_show_map,
    ),
    SettingSpec(
        "state_path",
        "SQLite state file; its directory must exist. Relative paths (also in the "
        "config file) are relative to the current directory.",
        parse_state_path,
        env=(ENV_STATE_PATH,),
        toml=("daemon.state_path",),
        metavar="PATH",
        default_doc="./letta-otel.db",
    ),
    SettingSpec(
        "poll_interval",
        "Seconds between polls of the Letta server (> 0).",
        parse_seconds,
        env=(ENV_POLL_INTERVAL,),
        toml=("daemon.poll_interval",),
        metavar="SECONDS",
        show=_show_seconds,
    ),
    SettingSpec(
        "log_level",
        "Log level: DEBUG, INFO, WARNING or ERROR (case-insensitive).",
        choice(("DEBUG", "INFO", "WARNING", "ERROR"), aliases={"warn": "WARNING"}),
        env=(ENV_LOG_LEVEL,),
        toml=("daemon.log_level",),
        metavar="LEVEL",
    ),
    SettingSpec(
        "log_format",
        "Log format: text or json.",
        choice(("text", "json")),
        env=(ENV_LOG_FORMAT,),
        toml=("daemon.log_format",),
        metavar="{text,json}",
    ),
    SettingSpec(
        "initial_lookback",
        f"On first start, how far back to export existing steps (> 0). {_DURATION_HELP}",
        parse_duration(allow_zero=False),
        env=(ENV_INITIAL_LOOKBACK,),
        toml=("daemon.initial_lookback",),
        metavar="DURATION",
        show=format_duration,
    ),
    SettingSpec(
        "pending_timeout",
        f"How long to wait for an unfinished step before exporting it as is (> 0). "
        f"{_DURATION_HELP}",
        parse_duration(allow_zero=False),
        env=(ENV_PENDING_TIMEOUT,),
        toml=("daemon.pending_timeout",),
        metavar="DURATION",
        show=format_duration,
    ),
    SettingSpec(
        "enrich_grace",
        f"How long to wait for enrichment data after a step completes (>= 0). {_DURATION_HELP}",
        parse_duration(allow_zero=True),
        env=(ENV_ENRICH_GRACE,),
        toml=("daemon.enrich_grace",),
        metavar="DURATION",
        show=format_duration,
    ),
    SettingSpec(
        "reread_window",
        f"Once a minute the last part of history this long is listed again, so steps that "
        f"became visible late (late commits, runs finishing out of order) are still "
        f"exported; duplicates are dropped by id (> 0). {_DURATION_HELP}",
        parse_duration(allow_zero=False),
        env=(ENV_REREAD_WINDOW,),
        toml=("daemon.reread_window",),
        metavar="DURATION",
        show=format_duration,
    ),
    SettingSpec(
        "discovery",
        "How new work is found: auto, steps or runs.",
        choice(("auto", "steps", "runs")),
        env=(ENV_DISCOVERY,),
        toml=("daemon.discovery",),
        metavar="{auto,steps,runs}",
    ),
    SettingSpec(
        "adopt_letta_trace_id",
        "Reuse Letta's own trace id for exported spans (true/false).",
        parse_bool,
        env=(ENV_ADOPT_LETTA_TRACE_ID,),
        toml=("daemon.adopt_letta_trace_id",),
        show=lambda v: str(v).lower(),
    ),
    SettingSpec(
        "max_concurrency",
        "Maximum concurrent Letta requests (1-256).",
        parse_int_range(1, 256),
        env=(ENV_MAX_CONCURRENCY,),
        toml=("daemon.max_concurrency",),
        metavar="N",
    ),
    SettingSpec(
        "max_batch_spans",
        "Maximum spans per OTLP export (1-10000).",
        parse_int_range(1, 10_000),
        env=(ENV_MAX_BATCH_SPANS,),
        toml=("export.max_batch_spans",),
        metavar="N",
    ),
    SettingSpec(
        "max_batch_bytes",
        "Maximum encoded size of one OTLP export: 3MB, 3MiB, 512KiB or plain bytes (>= 64KiB).",
        parse_byte_size(minimum=64 * 1024),
        env=(ENV_MAX_BATCH_BYTES,),
        toml=("export.max_batch_bytes",),
        metavar="SIZE",
        show=format_bytes,
    ),
    # --- throughput, scale-out and backfill (issue 6) ---
    SettingSpec(
        "max_rps",
        "Client-side limit on Letta requests per second, retries included, to stay inside "
        "a Letta Cloud quota; 0 = no limit (0-10000).",
        _parse_rps,
        env=(ENV_MAX_RPS,),
        toml=("daemon.max_rps",),
        metavar="RPS",
        show=lambda v: "off" if not v else format_number(v),
    ),
    SettingSpec(
        "shard",
        "Handle only the agents of shard K of N (e.g. 2/3): N replicas with separate state "
        "files split the work without overlap. Agent to shard: sha256 of the agent id, see "
        "README. Unset = all agents.",
        parse_shard,
        env=(ENV_SHARD,),
        toml=("daemon.shard",),
        metavar="K/N",
    ),
    SettingSpec(
        "backfill_max_age",
        f"letta-otel backfill refuses a --since older than this unless --force (some "
        f"backends drop old spans: Dynatrace after 60 min, Sumo Logic after 24 h) (> 0). "
        f"{_DURATION_HELP}",
        parse_duration(allow_zero=False),
        env=(ENV_BACKFILL_MAX_AGE,),
        toml=("backfill.max_age",),
        metavar="DURATION",
        show=format_duration,
    ),
)

_SPECS_BY_FIELD: dict[str, SettingSpec] = {spec.field: spec for spec in SETTING_SPECS}
_SPECS_BY_KEY: dict[str, SettingSpec] = {
    key: spec for spec in SETTING_SPECS for key in spec.override_keys
}

#: Every environment variable read, in table order (the config-file variable last).
ENV_VARS: tuple[str, ...] = (
    *(name for spec in SETTING_SPECS for name in spec.env),
    ENV_CONFIG,
)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class _Choice:
    """The winning raw value of one setting: where it came from and under which key."""

    raw: object
    source: Source
    index: int


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A setting's typed value; ``choice`` is None for a value derived from defaults."""

    value: Any
    choice: _Choice | None


_SOURCE_RANK: dict[Source, int] = {"flag": 0, "env": 1, "file": 2}


def _nth(items: tuple[str, ...], index: int) -> str | None:
    return items[min(index, len(items) - 1)] if items else None


def _toml_label(key: str) -> str:
    section, _, name = key.partition(".")
    return f"[{section}] {name}"


@dataclass(frozen=True, slots=True)
class _Sources:
    overrides: Mapping[str, object]
    env: Mapping[str, str]
    file: Mapping[str, object]
    file_name: str

    def pick(self, spec: SettingSpec) -> _Choice | None:
        """The highest-precedence value given for ``spec``, if any."""
        order: tuple[tuple[Source, tuple[str, ...], Mapping[str, object]], ...] = (
            ("flag", spec.override_keys, self.overrides),
            ("env", spec.env, self.env),
            ("file", spec.toml, self.file),
        )
        for source, keys, values in order:
            for index, key in enumerate(keys):
                if key in values:
                    return _Choice(values[key], source, index)
        return None

    def label(self, spec: SettingSpec, chosen: _Choice | None) -> str:
        """Names the setting as the user set it, plus its other spelling."""
        index = chosen.index if chosen else 0
        env, flag, toml = _nth(spec.env, index), _nth(spec.flags, index), _nth(spec.toml, index)
        toml_text = _toml_label(toml) if toml else None
        if chosen is None or chosen.source == "env":
            other = flag or toml_text
            return f"{env} ({other})" if other else str(env)
        if chosen.source == "flag":
            name = flag or f"override '{_nth(spec.override_keys, index)}'"
            return f"{name} ({env})"
        return f"{toml_text} in {self.file_name} ({env})"


def _clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """Only our variables, and an empty value counts as unset (OTel spec)."""
    return {name: env[name] for name in ENV_VARS if name in env and env[name].strip()}


def _clean_overrides(overrides: Mapping[str, object], problems: list[str]) -> dict[str, object]:
    known = sorted(_SPECS_BY_KEY)
    cleaned: dict[str, object] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in _SPECS_BY_KEY:
            guess = suggest(key, known)
            hint = f" — did you mean '{guess}'?" if guess else ""
            problems.append(f"override '{key}': not a setting{hint}")
            continue
        cleaned[key] = value
    return cleaned


# ------------------------------------------------------------------------ TOML file


def _toml_sections() -> dict[str, tuple[str, ...]]:
    sections: dict[str, list[str]] = {}
    for spec in SETTING_SPECS:
        for key in spec.toml:
            section, _, name = key.partition(".")
            sections.setdefault(section, []).append(name)
    return {section: tuple(names) for section, names in sections.items()}


_TOML_SECTIONS = _toml_sections()


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    where = f"config file {path} (--config / {ENV_CONFIG})"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"{where}: does not exist; check the path")
        return None
    except IsADirectoryError:
        problems.append(f"{where}: is a directory; give the path of a .toml file")
        return None
    except OSError as exc:
        problems.append(f"{where}: cannot be read ({exc.strerror or exc}); fix its permissions")
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{where}: is not UTF-8 text; save it as UTF-8")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{where}: TOML syntax error: {exc}; fix the file")
    return None


def _section_of(name: str) -> str | None:
    return next((s for s, keys in _TOML_SECTIONS.items() if name in keys), None)


def _unknown_key_problem(file_name: str, section: str | None, name: str) -> str:
    where = f"[{section}]" if section else "the top level"
    guess = suggest(name, _TOML_SECTIONS[section]) if section else None
    home = _section_of(name)
    if guess:
        fix = f"did you mean '{guess}'?"
    elif home:
        fix = f"it belongs in the [{home}] section"
    else:
        fix = "remove it (see config/letta-otel.example.toml for valid keys)"
    return f"config file {file_name}: unknown key '{name}' in {where} — {fix}"


def _flatten_toml(
    document: Mapping[str, Any], file_name: str, problems: list[str]
) -> dict[str, object]:
    """``{'daemon': {'poll_interval': 5}}`` -> ``{'daemon.poll_interval': 5}``, checking keys."""
    values: dict[str, object] = {}
    for section, table in document.items():
        if section not in _TOML_SECTIONS:
            if isinstance(table, dict):
                guess = suggest(section, _TOML_SECTIONS)
                fix = (
                    f"did you mean [{guess}]?"
                    if guess
                    else (f"valid sections are {', '.join(f'[{s}]' for s in _TOML_SECTIONS)}")
                )
                problems.append(f"config file {file_name}: unknown section [{section}] — {fix}")
            else:
                problems.append(_unknown_key_problem(file_name, None, section))
            continue
        if not isinstance(table, dict):
            problems.append(
                f"config file {file_name}: '{section}' must be a [{section}] section (a table)"
            )
            continue
        for name, value in table.items():
            if name in _TOML_SECTIONS[section]:
                values[f"{section}.{name}"] = value
            else:
                problems.append(_unknown_key_problem(file_name, section, name))
    return values


def _load_file(path: Path | None, problems: list[str]) -> dict[str, object]:
    if path is None:
        return {}
    document = _read_toml(path, problems)
    return {} if document is None else _flatten_toml(document, str(path), problems)


# ---------------------------------------------------------------------------- loading


def _parse_all(sources: _Sources, problems: list[str]) -> dict[str, _Parsed]:
    parsed: dict[str, _Parsed] = {}
    for spec in SETTING_SPECS:
        chosen = sources.pick(spec)
        if chosen is None:
            continue
        try:
            value = spec.parse(chosen.raw)
        except InvalidValue as exc:
            problems.append(_value_problem(sources, spec, chosen, exc))
            continue
        parsed[spec.field] = _Parsed(value, chosen)
    return parsed


def _value_problem(sources: _Sources, spec: SettingSpec, chosen: _Choice, exc: InvalidValue) -> str:
    message = f"{sources.label(spec, chosen)}: {exc.message}"
    if exc.show_value and not spec.secret:
        raw = chosen.raw
        shown = spec.redact(raw) if spec.redact and isinstance(raw, str) else raw
        message += f", got {shown!r}"
    if exc.hint:
        message += f" — {exc.hint}"
    return message


def _value(parsed: Mapping[str, _Parsed], field: str) -> Any:
    entry = parsed.get(field)
    return entry.value if entry else None


def _resolve_endpoint(parsed: dict[str, _Parsed], sources: _Sources, problems: list[str]) -> None:
    """Turn the endpoint input into the final traces URL (see module docstring)."""
    protocol = _value(parsed, "otlp_protocol") or "grpc"
    entry = parsed.get("otlp_traces_endpoint")
    if entry is None or entry.choice is None:
        parsed["otlp_traces_endpoint"] = _Parsed(_DEFAULT_ENDPOINTS[protocol], None)
        return
    spec = _SPECS_BY_FIELD["otlp_traces_endpoint"]
    resolved: str | None = None  # None (invalid) skips the checks that depend on it
    try:
        resolved = parse_endpoint_url(
            str(entry.value),
            protocol=protocol,
            insecure=_value(parsed, "otlp_insecure"),
            base=entry.choice.index == 1,
        )
    except InvalidValue as exc:
        problems.append(_value_problem(sources, spec, entry.choice, exc))
    parsed["otlp_traces_endpoint"] = _Parsed(resolved, entry.choice)


def _rank(entry: _Parsed) -> int:
    return _SOURCE_RANK[entry.choice.source] if entry.choice else len(_SOURCE_RANK)


def _resolve_service_name(parsed: dict[str, _Parsed]) -> None:
    """Lift ``service.name`` out of the resource attributes (OTel spec rule).

    ``OTEL_SERVICE_NAME`` beats ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``; across
    sources the usual precedence applies (an env attribute beats a file ``name``).
    """
    attributes = parsed.get("resource_attributes")
    if attributes is None or _SERVICE_NAME_ATTRIBUTE not in attributes.value:
        return
    remaining = {k: v for k, v in attributes.value.items() if k != _SERVICE_NAME_ATTRIBUTE}
    parsed["resource_attributes"] = _Parsed(FrozenMap(remaining), attributes.choice)
    from_attributes = attributes.value[_SERVICE_NAME_ATTRIBUTE].strip()
    explicit = parsed.get("service_name")
    outranks = explicit is None or _rank(attributes) < _rank(explicit)
    if from_attributes and outranks:
        parsed["service_name"] = _Parsed(from_attributes, attributes.choice)


def _cross_field_problems(parsed: Mapping[str, _Parsed], sources: _Sources) -> Iterator[str]:
    """Settings that are fine alone but contradict each other."""

    def label(field: str) -> str:
        entry = parsed.get(field)
        return sources.label(_SPECS_BY_FIELD[field], entry.choice if entry else None)

    protocol = _value(parsed, "otlp_protocol") or "grpc"
    if _value(parsed, "otlp_compression") == "deflate" and protocol == "grpc":
        yield (
            f"{label('otlp_compression')}: 'deflate' only works with the http/protobuf "
            f"protocol; use gzip, or set {label('otlp_protocol')} to http/protobuf"
        )
    # "given" rather than parsed: a key file that does not exist is already reported
    key, cert = (
        sources.pick(_SPECS_BY_FIELD[field]) is not None
        for field in ("otlp_client_key", "otlp_client_certificate")
    )
    if key != cert:
        missing = "otlp_client_key" if cert else "otlp_client_certificate"
        yield (
            f"{label(missing)}: mTLS needs both the client key and the client certificate; "
            "set this one too, or unset the other"
        )
    yield from _transport_security_problems(parsed, protocol, label)


def _transport_security_problems(
    parsed: Mapping[str, _Parsed], protocol: str, label: Callable[[str], str]
) -> Iterator[str]:
    endpoint = _value(parsed, "otlp_traces_endpoint")
    if endpoint is None:
        return
    plaintext = endpoint.lower().startswith("http://")
    shown = redact_url(endpoint)
    insecure = _value(parsed, "otlp_insecure")
    if protocol == "grpc" and insecure is not None and insecure != plaintext:
        wanted = "http://" if insecure else "https://"
        yield (
            f"{label('otlp_insecure')}: is {str(insecure).lower()} but the endpoint {shown} "
            f"says otherwise; use a {wanted} endpoint, or unset insecure and let the "
            "scheme decide"
        )
    tls_files = ("otlp_certificate", "otlp_client_key", "otlp_client_certificate")
    given = [field for field in tls_files if _value(parsed, field) is not None]
    if plaintext and given:
        yield (
            f"{label(given[0])}: TLS files are set but the endpoint {shown} is plaintext "
            "(http://); use an https:// endpoint, or drop the TLS files"
        )


def _build(parsed: Mapping[str, _Parsed]) -> Settings:
    values = {field: entry.value for field, entry in parsed.items()}
    try:
        return Settings(**values)
    except ValidationError as exc:  # a bug in a parser, not bad input: still no traceback
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError(problems) from None


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Build :class:`Settings` from flags (``overrides``), ``env`` and the config file.

    ``env`` defaults to ``os.environ``.  ``config_path`` defaults to ``$LETTA_OTEL_CONFIG``
    (no file if neither is given).  ``overrides`` are CLI values keyed by field name —
    plus ``otlp_endpoint`` for the base-endpoint flag — in flag units (``otlp_timeout``
    in milliseconds); ``None`` means "not given".  Raises :class:`ConfigError` listing
    every problem.
    """
    environ = _clean_env(os.environ if env is None else env)
    problems: list[str] = []
    if config_path is None and ENV_CONFIG in environ:
        config_path = Path(environ[ENV_CONFIG].strip()).expanduser()
    sources = _Sources(
        file=_load_file(config_path, problems),
        overrides=_clean_overrides(overrides or {}, problems),
        env=environ,
        file_name=str(config_path),
    )
    parsed = _parse_all(sources, problems)
    _resolve_endpoint(parsed, sources, problems)
    _resolve_service_name(parsed)
    problems.extend(_cross_field_problems(parsed, sources))
    if problems:
        raise ConfigError(problems)
    return _build(parsed)


# --------------------------------------------------------------------------- argparse

_CONFIG_HELP = (
    f"TOML config file (also ${ENV_CONFIG}). Precedence: flag > environment > file > "
    "default. Secrets (LETTA_API_KEY, OTLP headers) have no flags because command "
    "lines are visible to other users in `ps`; set them in the environment or in this file."
)


def _flag_help(spec: SettingSpec, index: int) -> str:
    text = spec.flag_help[index] if index < len(spec.flag_help) else spec.help
    per_flag = len(spec.env) == len(spec.override_keys)  # e.g. the two endpoint forms
    env = spec.env[index] if per_flag else " > ".join(spec.env)
    toml = _nth(spec.toml, index)
    where = f"env {env}" + (f", TOML {_toml_label(toml)}" if toml else "")
    return f"{text} [{where}; default: {spec.default_text}]".replace("%", "%%")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per non-secret setting; every default is ``None``."""
    group = parser.add_argument_group(
        "configuration", "Each flag overrides its environment variable and the config file."
    )
    group.add_argument("--config", metavar="PATH", default=None, help=_CONFIG_HELP)
    for spec in SETTING_SPECS:
        if spec.secret:
            continue
        for index, (flag, key) in enumerate(zip(spec.flags, spec.override_keys, strict=True)):
            if spec.is_boolean:
                group.add_argument(
                    flag,
                    dest=key,
                    default=None,
                    action=argparse.BooleanOptionalAction,
                    help=_flag_help(spec, index),
                )
            else:
                group.add_argument(
                    flag,
                    dest=key,
                    default=None,
                    metavar=spec.metavar or "VALUE",
                    help=_flag_help(spec, index),
                )


def overrides_from_args(ns: argparse.Namespace) -> tuple[Path | None, dict[str, object]]:
    """``(config_path, overrides)`` for :func:`load_settings` from parsed flags."""
    config = getattr(ns, "config", None)
    overrides: dict[str, object] = {}
    for spec in SETTING_SPECS:
        if spec.secret:
            continue
        for key in spec.override_keys:
            value = getattr(ns, key, None)
            if value is not None:
                overrides[key] = value
    return (Path(config).expanduser() if config is not None else None), overrides


# ------------------------------------------------------------------------------- docs


def _cell(items: tuple[str, ...] | list[str]) -> str:
    return "<br>".join(f"`{item}`" for item in items) or "—"


def _markdown_row(spec: SettingSpec) -> str:
    meaning = spec.help
    if spec.secret:
        meaning += " **Secret**: no flag, never logged."
    cells = [
        f"`{spec.field}`",
        _cell(spec.env),
        _cell([_toml_label(key) for key in spec.toml]),
        _cell(spec.flags),
        f"`{spec.default_text}`",
        meaning,
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def settings_reference_markdown() -> str:
    """The README configuration table, generated from :data:`SETTING_SPECS`."""
    header = [
        f"Config file: `--config PATH` or `{ENV_CONFIG}` (TOML, see "
        "`config/letta-otel.example.toml`). Precedence: flag > environment > file > "
        "default; `OTEL_EXPORTER_OTLP_TRACES_*` beats `OTEL_EXPORTER_OTLP_*`; an empty "
        "variable counts as unset.",
        "",
        "| Setting | Env var | TOML key | Flag | Default | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + [_markdown_row(spec) for spec in SETTING_SPECS]) + "\n"
