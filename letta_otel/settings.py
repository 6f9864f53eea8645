"""Configuration: one immutable :class:`Settings` from CLI flags, env vars and a TOML file.

Precedence is **flag > environment > config file > backend preset > default**, decided per
setting (presets: :mod:`letta_otel.presets`; their auth headers merge with explicit ones):
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

Metrics (issue #4) use the same transport unless ``OTEL_EXPORTER_OTLP_METRICS_*`` says
otherwise; per setting the generic ``OTEL_EXPORTER_OTLP_*`` comes next, then the traces
value (see :func:`_resolve_metrics`).  ``otlp_metrics_endpoint`` is final, or None when
no metrics URL can be told from a custom traces URL (the push then stays off).
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
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

from letta_otel import presets
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
from letta_otel.mapping.limits import (
    DEFAULT_MAX_ATTRIBUTE_BYTES,
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_SPAN_BYTES,
    DEFAULT_MAX_TRACE_BYTES,
    MIN_ATTRIBUTE_BYTES,
    MIN_SPAN_BYTES,
)
from letta_otel.mapping.redact import PatternError, compile_patterns
from letta_otel.selection.config import (
    format_sample_ratio,
    parse_agent_ids,
    parse_model_handles,
    parse_sample_ratio,
    parse_step_statuses,
    parse_str_list,
    show_list,
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
ENV_FILTER_AGENT_IDS = "LETTA_OTEL_FILTER_AGENT_IDS"
ENV_FILTER_AGENT_TAGS = "LETTA_OTEL_FILTER_AGENT_TAGS"
ENV_FILTER_MODELS = "LETTA_OTEL_FILTER_MODELS"
ENV_FILTER_MODEL_HANDLES = "LETTA_OTEL_FILTER_MODEL_HANDLES"
ENV_FILTER_PROJECT_IDS = "LETTA_OTEL_FILTER_PROJECT_IDS"
ENV_FILTER_STEP_STATUSES = "LETTA_OTEL_FILTER_STEP_STATUSES"
ENV_SAMPLE_RATIO = "LETTA_OTEL_SAMPLE_RATIO"

# --- metrics and health (issue #4) ---
ENV_METRICS = "LETTA_OTEL_METRICS"
ENV_METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
ENV_OTLP_METRICS_PROTOCOL = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
ENV_OTLP_METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
ENV_OTLP_METRICS_HEADERS = "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
ENV_OTLP_METRICS_COMPRESSION = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"
ENV_OTLP_METRICS_TIMEOUT = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
ENV_OTLP_METRICS_INSECURE = "OTEL_EXPORTER_OTLP_METRICS_INSECURE"
ENV_OTLP_METRICS_CERTIFICATE = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"
ENV_OTLP_METRICS_CLIENT_KEY = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"
ENV_OTLP_METRICS_CLIENT_CERTIFICATE = "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE"
ENV_METRIC_EXPORT_INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"
ENV_HEALTH_ADDR = "LETTA_OTEL_HEALTH_ADDR"
ENV_READY_INTERVALS = "LETTA_OTEL_READY_INTERVALS"
# content capture, redaction and attribute budgets (issue 7)
ENV_CAPTURE_MESSAGE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_REDACT_PATTERNS = "LETTA_OTEL_REDACT_PATTERNS"
ENV_MAX_ATTRIBUTE_BYTES = "LETTA_OTEL_MAX_ATTRIBUTE_BYTES"
ENV_MAX_SPAN_BYTES = "LETTA_OTEL_MAX_SPAN_BYTES"
ENV_MAX_TRACE_BYTES = "LETTA_OTEL_MAX_TRACE_BYTES"
ENV_MAX_ATTRIBUTES = "LETTA_OTEL_MAX_ATTRIBUTES"
ENV_MAX_RPS = "LETTA_OTEL_MAX_RPS"
ENV_SHARD = "LETTA_OTEL_SHARD"
ENV_BACKFILL_MAX_AGE = "LETTA_OTEL_BACKFILL_MAX_AGE"

DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318/v1/traces"
_DEFAULT_ENDPOINTS = {"grpc": DEFAULT_GRPC_ENDPOINT, "http/protobuf": DEFAULT_HTTP_ENDPOINT}
DEFAULT_HTTP_METRICS_ENDPOINT = "http://localhost:4318/v1/metrics"
DEFAULT_HEALTH_ADDR = "127.0.0.1:9464"
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
    # Metrics and health (issue #4). A None OTLP metrics transport setting means "the
    # same as for traces"; ``otlp_metrics_endpoint`` is always final (see module doc).
    otlp_metrics: bool = True
    otlp_metrics_protocol: Literal["grpc", "http/protobuf"] | None = None
    otlp_metrics_endpoint: str | None = DEFAULT_GRPC_ENDPOINT
    otlp_metrics_headers: StrMap | None = None
    otlp_metrics_compression: Literal["none", "gzip", "deflate"] | None = None
    otlp_metrics_timeout: float | None = None
    otlp_metrics_insecure: bool | None = None
    otlp_metrics_certificate: Path | None = None
    otlp_metrics_client_key: Path | None = None
    otlp_metrics_client_certificate: Path | None = None
    metric_export_interval: float = 15.0
    health_addr: str | None = DEFAULT_HEALTH_ADDR
    ready_intervals: int = 12
    filter_agent_ids: tuple[str, ...] = ()
    filter_agent_tags: tuple[str, ...] = ()
    filter_models: tuple[str, ...] = ()
    filter_model_handles: tuple[str, ...] = ()
    filter_project_ids: tuple[str, ...] = ()
    filter_step_statuses: tuple[str, ...] = ()
    sample_ratio: float = 1.0
    # --- backend presets (issue #5) ---
    backend: Literal["otlp", "jaeger", "tempo", "honeycomb"] = "otlp"
    honeycomb_api_key: SecretStr | None = None
    honeycomb_dataset: str | None = None
    honeycomb_region: Literal["us", "eu"] = "us"
    tempo_tenant: str | None = None
    # content capture, redaction and attribute budgets (issue 7)
    capture_message_content: Literal["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"] = (
        "NO_CONTENT"
    )
    redact_patterns: tuple[str, ...] = ()
    max_attribute_bytes: int = DEFAULT_MAX_ATTRIBUTE_BYTES
    max_span_bytes: int = DEFAULT_MAX_SPAN_BYTES
    max_trace_bytes: int = DEFAULT_MAX_TRACE_BYTES
    max_attributes: int = DEFAULT_MAX_ATTRIBUTES
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

    @model_validator(mode="before")
    @classmethod
    def _default_metrics_endpoint(cls, data: Any) -> Any:
        if isinstance(data, dict) and "otlp_metrics_endpoint" not in data:
            traces_protocol = data.get("otlp_protocol", "grpc")
            metrics_protocol = data.get("otlp_metrics_protocol") or traces_protocol
            explicit = data.get("otlp_traces_endpoint")
            derived = derive_metrics_endpoint(explicit, traces_protocol, metrics_protocol)
            return {**data, "otlp_metrics_endpoint": derived}
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


# --- content capture, redaction and attribute budgets (issue 7) -----------------------

_CAPTURE_MODES = ("NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")
_parse_capture_mode = choice(
    _CAPTURE_MODES,
    aliases={"false": "NO_CONTENT"},
    hints={
        "true": "'true' (older instrumentations) does not say where content goes; use "
        "SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT"
    },
)


def _pattern_list(raw: object) -> list[str]:
    if isinstance(raw, list | tuple):
        items = list(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        parsed: object = None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None  # e.g. the single pattern "[0-9]{6}"
        items = (
            parsed
            if isinstance(parsed, list)
            else [line.strip() for line in raw.splitlines() if line.strip()]
        )
    else:
        raise InvalidValue("must be a list of regular expressions", show_value=False)
    if not all(isinstance(item, str) and item for item in items):
        raise InvalidValue(
            "must be a list of non-empty strings (regular expressions)", show_value=False
        )
    return items


def _parse_redact_patterns(raw: object) -> tuple[str, ...]:
    """One regex per line, or a JSON array of strings (a TOML array in the file)."""
    items = _pattern_list(raw)
    try:
        compile_patterns(items)
    except PatternError as exc:
        # Never echo a pattern: it may hold the very value it is meant to hide.
        raise InvalidValue(f"{exc}; fix or remove it", show_value=False) from None
    return tuple(items)


def _show_patterns(value: tuple[str, ...]) -> str:
    return f"{len(value)} pattern(s), not shown" if value else "(none)"


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
    repeatable: bool = False  # the flag may be given several times (a list setting)

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


# ------------------------------------------------- metrics and health values (issue #4)

_METRICS_EXPORTERS = ("otlp", "prometheus", "none")


def _parse_metrics_switch(raw: object) -> bool:
    """true/false, or an ``OTEL_METRICS_EXPORTER`` list: push over OTLP when it names otlp.

    ``prometheus`` alone turns the push off: letta-otel serves /metrics for scraping
    whenever the health address is on, whatever this says.
    """
    if isinstance(raw, bool):
        return raw
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return parse_bool(text)
    names = {n.strip() for n in (text or "").split(",") if n.strip()}
    unknown = sorted(names - set(_METRICS_EXPORTERS))
    if not names or unknown or ("none" in names and len(names) > 1):
        hint = "console and logging are not supported" if unknown else None
        raise InvalidValue(
            "must be true or false, or an OTEL_METRICS_EXPORTER value: otlp, prometheus or none",
            hint=hint,
        )
    return "otlp" in names


def _parse_health_addr(raw: object) -> str | None:
    """``host:port`` to listen on (``[::1]:9464`` for IPv6; port 0 = any free port); off = None."""
    example = "127.0.0.1:9464, 0.0.0.0:9464 or off"
    text = _require_str(raw, example)
    if text.lower() in ("", "off", "none", "false", "no", "disabled"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidValue(f"must be host:port or off, e.g. {example}")
    if not host:
        raise InvalidValue(
            "has no host; give one (0.0.0.0 listens on every interface, 127.0.0.1 only locally)"
        )
    if host.startswith("[") != host.endswith("]") or any(c.isspace() for c in host):
        raise InvalidValue(f"has an invalid host, e.g. {example}")
    return f"{host}:{int(port)}"


def _require_str(raw: object, example: str) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(f"must be a string, e.g. {example}")
    return raw.strip()


def split_health_addr(addr: str) -> tuple[str, int]:
    """``'[::1]:9464'`` -> ``('::1', 9464)``."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _default_metrics(protocol: str) -> str:
    return DEFAULT_GRPC_ENDPOINT if protocol == "grpc" else DEFAULT_HTTP_METRICS_ENDPOINT


def derive_metrics_endpoint(
    traces_endpoint: str | None, traces_protocol: str, metrics_protocol: str
) -> str | None:
    """The metrics URL beside a traces URL, or None when it cannot be told.

    No traces endpoint: the default for the metrics protocol. Same protocol: gRPC
    uses the same address, http/protobuf swaps a final ``/v1/traces`` for
    ``/v1/metrics``. A different protocol or another path cannot be guessed.
    """
    if traces_endpoint is None:
        return _default_metrics(metrics_protocol)
    if traces_protocol != metrics_protocol:
        return None
    if metrics_protocol == "grpc":
        return traces_endpoint
    base, sep, rest = traces_endpoint.rstrip("/").rpartition("/v1/traces")
    return f"{base}/v1/metrics" if sep and not rest else None


_DURATION_HELP = "Duration: 90s, 15m, 1h, 2d, 1h30m, plain seconds (3600) or ISO-8601 (PT1H)."
_FILTER_HELP = "Comma-separated; the flag can be repeated; set filters must all match."
_TLS_FILE = "PEM file; must exist and be readable."
_AS_TRACES = "Unset: OTEL_EXPORTER_OTLP_*, else the traces setting."
_AS_TRACES_DOC = "as for traces"

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
    # --- metrics and health (issue #4) ----------------------------------------------
    SettingSpec(
        "otlp_metrics",
        "Push metrics over OTLP next to the traces (true/false). OTEL_METRICS_EXPORTER is "
        "honoured: otlp pushes, none or prometheus do not. /metrics on the health address "
        "is served either way.",
        _parse_metrics_switch,
        env=(ENV_METRICS, ENV_METRICS_EXPORTER),
        toml=("metrics.otlp",),
        metavar="{true,false}",
        show=lambda v: str(v).lower(),
    ),
    SettingSpec(
        "otlp_metrics_protocol",
        f"OTLP transport for metrics: grpc or http/protobuf. {_AS_TRACES}",
        choice(("grpc", "http/protobuf"), hints={"http": "did you mean 'http/protobuf'?"}),
        env=(ENV_OTLP_METRICS_PROTOCOL,),
        toml=("otlp.metrics_protocol",),
        metavar="{grpc,http/protobuf}",
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_endpoint",
        "Where metrics are sent, used verbatim. Else OTEL_EXPORTER_OTLP_ENDPOINT + "
        "/v1/metrics (http/protobuf) or as is (grpc); else derived from the traces "
        "endpoint (grpc: the same, http: /v1/traces becomes /v1/metrics); if that "
        "cannot be told, metrics are not pushed (a warning at start says so).",
        parse_required_str,
        env=(ENV_OTLP_METRICS_ENDPOINT,),
        toml=("otlp.metrics_endpoint",),
        metavar="URL",
        show=redact_url,
        redact=redact_url,
        default_doc="derived from the traces endpoint",
    ),
    SettingSpec(
        "otlp_metrics_headers",
        f"OTLP request headers for metrics, key1=value1,key2=value2. {_AS_TRACES}",
        parse_header_list,
        env=(ENV_OTLP_METRICS_HEADERS,),
        toml=("otlp.metrics_headers",),
        secret=True,
        show=_show_masked_map,
        redact=_mask_values,
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_compression",
        f"Metrics payload compression: none, gzip or deflate (http only). {_AS_TRACES}",
        choice(("none", "gzip", "deflate")),
        env=(ENV_OTLP_METRICS_COMPRESSION,),
        toml=("otlp.metrics_compression",),
        metavar="{none,gzip,deflate}",
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_timeout",
        f"Metrics export timeout in MILLISECONDS; at least 100. {_AS_TRACES}",
        parse_milliseconds,
        env=(ENV_OTLP_METRICS_TIMEOUT,),
        toml=("otlp.metrics_timeout_ms",),
        metavar="MS",
        show=_show_ms,
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_insecure",
        f"gRPC only: true = plaintext, false = TLS for metrics. {_AS_TRACES}",
        parse_bool,
        env=(ENV_OTLP_METRICS_INSECURE,),
        toml=("otlp.metrics_insecure",),
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_certificate",
        f"CA certificate to verify the metrics collector. {_TLS_FILE} {_AS_TRACES}",
        parse_readable_file,
        env=(ENV_OTLP_METRICS_CERTIFICATE,),
        toml=("otlp.metrics_certificate",),
        metavar="PATH",
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_client_key",
        f"Client private key for mTLS to the metrics collector. {_TLS_FILE} {_AS_TRACES}",
        parse_readable_file,
        env=(ENV_OTLP_METRICS_CLIENT_KEY,),
        toml=("otlp.metrics_client_key",),
        metavar="PATH",
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "otlp_metrics_client_certificate",
        f"Client certificate for mTLS to the metrics collector. {_TLS_FILE} {_AS_TRACES}",
        parse_readable_file,
        env=(ENV_OTLP_METRICS_CLIENT_CERTIFICATE,),
        toml=("otlp.metrics_client_certificate",),
        metavar="PATH",
        default_doc=_AS_TRACES_DOC,
    ),
    SettingSpec(
        "metric_export_interval",
        "MILLISECONDS between OTLP metrics pushes (OpenTelemetry spec; its default is 60000, "
        "letta-otel's 15000 so a failed-step alert fires sooner); at least 100.",
        parse_milliseconds,
        env=(ENV_METRIC_EXPORT_INTERVAL,),
        toml=("metrics.export_interval_ms",),
        metavar="MS",
        show=_show_ms,
        default_doc="15000 (ms)",
    ),
    SettingSpec(
        "health_addr",
        "host:port of the HTTP endpoint serving /healthz, /readyz and /metrics (Prometheus "
        "text); off disables it, port 0 picks a free port. Not started by run --once.",
        _parse_health_addr,
        env=(ENV_HEALTH_ADDR,),
        toml=("health.addr",),
        metavar="HOST:PORT",
        show=lambda v: v or "off",
    ),
    SettingSpec(
        "ready_intervals",
        "/readyz fails when the last successful poll or export is older than this many "
        "poll intervals (1-1000).",
        parse_int_range(1, 1000),
        env=(ENV_READY_INTERVALS,),
        toml=("health.ready_intervals",),
        metavar="N",
    ),
    # --- choosing what to export (letta_otel.selection) --------------------------------
    SettingSpec(
        "filter_agent_ids",
        f"Export only steps of these agents (agent ids). One id is sent to Letta as the "
        f"agent_id query; several are matched here. {_FILTER_HELP}",
        parse_agent_ids,
        env=(ENV_FILTER_AGENT_IDS,),
        toml=("filter.agent_ids",),
        keys=("filter_agent_id",),
        metavar="AGENT_ID",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "filter_agent_tags",
        f"Export only steps of agents carrying any of these tags (looked up per agent, "
        f"cached 10 minutes). {_FILTER_HELP}",
        parse_str_list,
        env=(ENV_FILTER_AGENT_TAGS,),
        toml=("filter.agent_tags",),
        keys=("filter_agent_tag",),
        metavar="TAG",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "filter_models",
        f"Export only steps of these model names (step.model, e.g. gpt-4o-mini). One name is "
        f"sent to Letta as the model query. {_FILTER_HELP}",
        parse_str_list,
        env=(ENV_FILTER_MODELS,),
        toml=("filter.models",),
        keys=("filter_model",),
        metavar="MODEL",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "filter_model_handles",
        f"Export only steps of these model handles (step.model_handle, provider/model, e.g. "
        f"openai/gpt-4o-mini); matched here. {_FILTER_HELP}",
        parse_model_handles,
        env=(ENV_FILTER_MODEL_HANDLES,),
        toml=("filter.model_handles",),
        keys=("filter_model_handle",),
        metavar="HANDLE",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "filter_project_ids",
        f"Export only steps of these Letta Cloud projects (step.project_id). One id is sent "
        f"to Letta as the project_id query. {_FILTER_HELP}",
        parse_str_list,
        env=(ENV_FILTER_PROJECT_IDS,),
        toml=("filter.project_ids",),
        keys=("filter_project_id",),
        metavar="PROJECT_ID",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "filter_step_statuses",
        f"Export only steps with these statuses: success, failed, cancelled, incomplete "
        f"(still pending after pending_timeout). A run's root span goes out when at least "
        f"one of its steps does. {_FILTER_HELP}",
        parse_step_statuses,
        env=(ENV_FILTER_STEP_STATUSES,),
        toml=("filter.step_statuses",),
        keys=("filter_step_status",),
        metavar="STATUS",
        show=show_list,
        repeatable=True,
    ),
    SettingSpec(
        "sample_ratio",
        "Share of successful runs exported, decided per run from its id: 1 (all), 0 (none) "
        "or 1/N (0.5, 0.1, 1/3, 5%). Runs with a failed, cancelled or incomplete step, or "
        "a failed, cancelled or expired status, are always exported whole. Below 1, kept "
        "spans carry SampleRate=N (1 for failures), and a run's steps are exported once the "
        "run has finished.",
        parse_sample_ratio,
        env=(ENV_SAMPLE_RATIO,),
        toml=("sampling.ratio",),
        metavar="RATIO",
        show=format_sample_ratio,
    ),
    # --- backend presets (issue #5): see letta_otel/presets.py -------------------------
    SettingSpec(
        "backend",
        "Backend preset: otlp (none), jaeger, tempo or honeycomb. Sets the endpoint, "
        "protocol, auth headers and attribute limit of any of those you do not set "
        "yourself; preset auth headers merge with OTLP headers (yours win).",
        choice(presets.BACKENDS),
        env=(presets.ENV_BACKEND,),
        toml=("otlp.backend",),
        metavar="{" + ",".join(presets.BACKENDS) + "}",
    ),
    SettingSpec(
        "honeycomb_api_key",
        "Honeycomb ingest API key, sent as x-honeycomb-team; required with backend "
        "honeycomb, ignored otherwise.",
        _parse_api_key,
        env=(presets.ENV_HONEYCOMB_API_KEY,),
        toml=("honeycomb.api_key",),
        secret=True,
        show=_show_masked,
    ),
    SettingSpec(
        "honeycomb_dataset",
        "Honeycomb Classic only: dataset name, sent as x-honeycomb-dataset (backend "
        "honeycomb; ignored otherwise).",
        parse_optional_str,
        env=(presets.ENV_HONEYCOMB_DATASET,),
        toml=("honeycomb.dataset",),
        metavar="DATASET",
    ),
    SettingSpec(
        "honeycomb_region",
        "Honeycomb region: us (api.honeycomb.io) or eu (api.eu1.honeycomb.io). Only with "
        "backend honeycomb.",
        choice(tuple(presets.HONEYCOMB_HOSTS)),
        env=(presets.ENV_HONEYCOMB_REGION,),
        toml=("honeycomb.region",),
        metavar="{" + ",".join(presets.HONEYCOMB_HOSTS) + "}",
    ),
    SettingSpec(
        "tempo_tenant",
        "Grafana Tempo tenant, sent as X-Scope-OrgID. Only with backend tempo.",
        parse_optional_str,
        env=(presets.ENV_TEMPO_TENANT,),
        toml=("tempo.tenant",),
        metavar="TENANT",
    ),
    # --- content capture, redaction and attribute budgets (issue 7) ---------------------
    SettingSpec(
        "capture_message_content",
        "Prompt/completion capture (GenAI semconv): NO_CONTENT, SPAN_ONLY (content as "
        "attributes on chat and tool spans), EVENT_ONLY (a gen_ai.client.inference."
        "operation.details event on chat spans) or SPAN_AND_EVENT. Captured text is redacted "
        "and budgeted; see the README.",
        _parse_capture_mode,
        env=(ENV_CAPTURE_MESSAGE_CONTENT,),
        toml=("content.capture",),
        metavar="MODE",
    ),
    SettingSpec(
        "redact_patterns",
        "Extra regular expressions to redact from captured content and error texts, on top "
        "of the built-in ones (keys, tokens, emails, card numbers): one per line or a JSON "
        "array (a TOML array in the file). Each match becomes [REDACTED].",
        _parse_redact_patterns,
        env=(ENV_REDACT_PATTERNS,),
        toml=("content.redact_patterns",),
        metavar="REGEXES",
        show=_show_patterns,
        default_doc="(none)",
    ),
    SettingSpec(
        "max_attribute_bytes",
        "Largest string attribute value (every attribute, span and event; content is cut "
        "as JSON and stays valid); the tempo preset sets 2048, the honeycomb preset 64KiB "
        f"(>= {MIN_ATTRIBUTE_BYTES} bytes).",
        parse_byte_size(minimum=MIN_ATTRIBUTE_BYTES),
        env=(ENV_MAX_ATTRIBUTE_BYTES,),
        toml=("limits.max_attribute_bytes",),
        metavar="SIZE",
        show=format_bytes,
    ),
    SettingSpec(
        "max_span_bytes",
        "Budget for one span's encoded size: content shrinks, then goes, to fit "
        f"(>= {format_bytes(MIN_SPAN_BYTES)}).",
        parse_byte_size(minimum=MIN_SPAN_BYTES),
        env=(ENV_MAX_SPAN_BYTES,),
        toml=("limits.max_span_bytes",),
        metavar="SIZE",
        show=format_bytes,
    ),
    SettingSpec(
        "max_trace_bytes",
        "Budget for all spans of one run (one trace), across export cycles; past it, spans "
        "go out without captured content (Tempo rejects traces over 5MB) (>= 64KiB).",
        parse_byte_size(minimum=64 * 1024),
        env=(ENV_MAX_TRACE_BYTES,),
        toml=("limits.max_trace_bytes",),
        metavar="SIZE",
        show=format_bytes,
    ),
    SettingSpec(
        "max_attributes",
        "Most attributes per span and per event; content, then other non-core attributes "
        "are dropped first, gen_ai.*/letta.* never (8-100000).",
        parse_int_range(8, 100_000),
        env=(ENV_MAX_ATTRIBUTES,),
        toml=("limits.max_attributes",),
        metavar="N",
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


def _apply_preset(
    parsed: dict[str, _Parsed], sources: _Sources, problems: list[str]
) -> Mapping[str, str]:
    """Fill unset settings from the backend preset; returns its endpoint per protocol."""

    def label(field: str) -> str:
        entry = parsed.get(field)
        return sources.label(_SPECS_BY_FIELD[field], entry.choice if entry else None)

    given = {field: entry.value for field, entry in parsed.items()}
    resolved = presets.resolve(_value(parsed, "backend") or "otlp", given, label=label)
    problems.extend(resolved.problems)
    for field, value in resolved.values.items():
        parsed[field] = _Parsed(value, None)
    if resolved.headers:
        entry = parsed.get("otlp_headers")
        headers = FrozenMap(resolved.headers)
        parsed["otlp_headers"] = _Parsed(headers, entry.choice if entry else None)
    return resolved.endpoints


def _resolve_endpoint(
    parsed: dict[str, _Parsed],
    sources: _Sources,
    problems: list[str],
    defaults: Mapping[str, str] = _DEFAULT_ENDPOINTS,
) -> None:
    """Turn the endpoint input into the final traces URL (see module docstring)."""
    protocol = _value(parsed, "otlp_protocol") or "grpc"
    entry = parsed.get("otlp_traces_endpoint")
    if entry is None or entry.choice is None:
        parsed["otlp_traces_endpoint"] = _Parsed(defaults[protocol], None)
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
    yield from _budget_problems(parsed, label)


def _budget_problems(parsed: Mapping[str, _Parsed], label: Callable[[str], str]) -> Iterator[str]:
    """Nested budgets must nest: an attribute fits in a span, a span in a trace (issue 7)."""
    pairs = (("max_attribute_bytes", "max_span_bytes"), ("max_span_bytes", "max_trace_bytes"))
    for inner, outer in pairs:
        small = _value(parsed, inner) or Settings.model_fields[inner].default
        big = _value(parsed, outer) or Settings.model_fields[outer].default
        if small > big:
            yield (
                f"{label(inner)}: {format_bytes(small)} is more than {label(outer)} "
                f"({format_bytes(big)}); lower the first or raise the second"
            )


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


# ----------------------------------------------- metrics transport resolution (issue #4)

# Each OTLP metrics transport setting and the trace setting it falls back to.
_METRICS_TWINS: tuple[tuple[str, str], ...] = (
    ("otlp_metrics_protocol", "otlp_protocol"),
    ("otlp_metrics_headers", "otlp_headers"),
    ("otlp_metrics_compression", "otlp_compression"),
    ("otlp_metrics_timeout", "otlp_timeout"),
    ("otlp_metrics_insecure", "otlp_insecure"),
    ("otlp_metrics_certificate", "otlp_certificate"),
    ("otlp_metrics_client_key", "otlp_client_key"),
    ("otlp_metrics_client_certificate", "otlp_client_certificate"),
)


def _signal_neutral(spec: SettingSpec) -> SettingSpec:
    """A trace setting's sources that are not traces-only (OTEL_EXPORTER_OTLP_X etc.)."""
    return replace(
        spec,
        env=tuple(e for e in spec.env if not e.startswith("OTEL_EXPORTER_OTLP_TRACES_")),
        toml=tuple(t for t in spec.toml if t != "otlp.traces_endpoint"),
        keys=tuple(k for k in spec.override_keys if k != "otlp_traces_endpoint"),
    )


def _resolve_metrics(parsed: dict[str, _Parsed], sources: _Sources, problems: list[str]) -> None:
    """Fill the metrics transport per the OTel exporter spec, falling back to the traces one.

    Per setting: ``OTEL_EXPORTER_OTLP_METRICS_X`` (or its flag / TOML key), else the
    signal-neutral ``OTEL_EXPORTER_OTLP_X`` (flag / TOML key), else the traces value
    (so a traces-only configuration serves both signals). A None value means "as for
    traces"; the endpoint is always resolved to a URL.
    """
    if _value(parsed, "otlp_metrics") is False:
        return  # no push: nothing to resolve or check
    for field, twin in _METRICS_TWINS:
        if field in parsed or sources.pick(_SPECS_BY_FIELD[field]) is not None:
            continue  # given explicitly (an invalid value is already reported)
        neutral = _signal_neutral(_SPECS_BY_FIELD[twin])
        chosen = sources.pick(neutral)
        if chosen is None or _same(chosen, sources.pick(_SPECS_BY_FIELD[twin])):
            continue  # traces took this very value: inherit it (already checked)
        try:
            value = neutral.parse(chosen.raw)
        except InvalidValue as exc:
            problems.append(_value_problem(sources, neutral, chosen, exc))
            continue
        if value != _value(parsed, twin):
            parsed[field] = _Parsed(value, None)
    _resolve_metrics_endpoint(parsed, sources, problems)


def _metrics_value(parsed: Mapping[str, _Parsed], field: str) -> Any:
    own = _value(parsed, field)
    twin = dict(_METRICS_TWINS)[field]
    return own if own is not None else _value(parsed, twin)


def _resolve_metrics_endpoint(
    parsed: dict[str, _Parsed], sources: _Sources, problems: list[str]
) -> None:
    spec = _SPECS_BY_FIELD["otlp_metrics_endpoint"]
    protocol = _metrics_value(parsed, "otlp_metrics_protocol") or "grpc"
    insecure = _metrics_value(parsed, "otlp_metrics_insecure")
    entry = parsed.get("otlp_metrics_endpoint")
    neutral = _signal_neutral(_SPECS_BY_FIELD["otlp_traces_endpoint"])
    chosen = entry.choice if entry else sources.pick(neutral)
    traces = parsed.get("otlp_traces_endpoint")
    if entry is None and traces and traces.value is None and _same(traces.choice, chosen):
        return  # the shared base endpoint is invalid: reported for traces already
    if chosen is not None:
        label_spec = spec if entry else neutral
        try:
            url = parse_endpoint_url(
                parse_required_str(chosen.raw), protocol=protocol, insecure=insecure, base=False
            )
        except InvalidValue as exc:
            problems.append(_value_problem(sources, label_spec, chosen, exc))
            return
        if entry is None and protocol != "grpc":  # a base URL: the signal path is appended
            url = url.rstrip("/") + "/v1/metrics"
        parsed["otlp_metrics_endpoint"] = _Parsed(url, chosen)
        return
    explicit = traces.value if traces and traces.choice else None
    derived = derive_metrics_endpoint(explicit, _value(parsed, "otlp_protocol") or "grpc", protocol)
    # None: no metrics URL can be told from this traces URL; the daemon says so at start
    # and does not push (failing a working traces-only setup on upgrade would be worse).
    parsed["otlp_metrics_endpoint"] = _Parsed(derived, None)


def _same(a: _Choice | None, b: _Choice | None) -> bool:
    """The same raw value from the same source (the index differs between spec views)."""
    return a is not None and b is not None and a.source == b.source and a.raw == b.raw


def _metrics_problems(parsed: Mapping[str, _Parsed]) -> Iterator[str]:
    """The traces transport checks, for a metrics transport that differs from it."""
    endpoint = _value(parsed, "otlp_metrics_endpoint")
    own = any(field in parsed for field, _ in _METRICS_TWINS)
    if _value(parsed, "otlp_metrics") is False or endpoint is None:
        return
    if (
        not own
        and endpoint.split(":", 1)[0]
        == str(_value(parsed, "otlp_traces_endpoint")).split(":", 1)[0]
    ):
        return  # same transport as traces: already checked there
    protocol = _metrics_value(parsed, "otlp_metrics_protocol") or "grpc"
    where = "the OTLP metrics transport (OTEL_EXPORTER_OTLP_METRICS_*)"
    if _metrics_value(parsed, "otlp_metrics_compression") == "deflate" and protocol == "grpc":
        yield f"{where}: 'deflate' only works with http/protobuf; use gzip"
    plaintext = endpoint.lower().startswith("http://")
    insecure = _metrics_value(parsed, "otlp_metrics_insecure")
    shown = redact_url(endpoint)
    if protocol == "grpc" and insecure is not None and insecure != plaintext:
        yield (
            f"{where}: insecure is {str(insecure).lower()} but the metrics endpoint {shown} "
            "says otherwise; make them agree"
        )
    files = (
        "otlp_metrics_certificate",
        "otlp_metrics_client_key",
        "otlp_metrics_client_certificate",
    )
    given = [f for f in files if _metrics_value(parsed, f) is not None]
    if plaintext and given:
        yield f"{where}: TLS files are set but the metrics endpoint {shown} is plaintext (http://)"
    if ("otlp_metrics_client_key" in given) != ("otlp_metrics_client_certificate" in given):
        yield f"{where}: mTLS needs both the client key and the client certificate"


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
    preset_endpoints = _apply_preset(parsed, sources, problems)
    _resolve_endpoint(parsed, sources, problems, preset_endpoints)
    _resolve_service_name(parsed)
    _resolve_metrics(parsed, sources, problems)
    problems.extend(_cross_field_problems(parsed, sources))
    problems.extend(_metrics_problems(parsed))
    if problems:
        raise ConfigError(problems)
    return _build(parsed)


# --------------------------------------------------------------------------- argparse

_CONFIG_HELP = (
    f"TOML config file (also ${ENV_CONFIG}). Precedence: flag > environment > file > "
    "backend preset > default. Secrets (LETTA_API_KEY, OTLP headers) have no flags because command "
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
            elif spec.repeatable:
                group.add_argument(
                    flag,
                    dest=key,
                    default=None,
                    action="append",
                    metavar=spec.metavar or "VALUE",
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
        "backend preset > default; `OTEL_EXPORTER_OTLP_TRACES_*` beats "
        "`OTEL_EXPORTER_OTLP_*`; an empty variable counts as unset.",
        "",
        "| Setting | Env var | TOML key | Flag | Default | Meaning |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(header + [_markdown_row(spec) for spec in SETTING_SPECS]) + "\n"
