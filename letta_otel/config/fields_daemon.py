"""The settings of the daemon itself, its export batches, its metrics push and health port."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel

from letta_otel.config.fields_connection import TLS_FILE, StrMap
from letta_otel.config.network import (
    DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HEALTH_ADDR,
    ENV_HEALTH_ADDR,
    parse_endpoint,
    parse_header_list,
    parse_health_addr,
    parse_metrics_switch,
    redact_url,
)
from letta_otel.config.spec import (
    SettingSpec,
    mask_values,
    show_lower,
    show_masked_map,
    show_ms,
    show_seconds,
)
from letta_otel.config.units import (
    DURATION_HELP,
    format_bytes,
    format_duration,
    parse_byte_size,
    parse_duration,
    parse_milliseconds,
    parse_seconds,
    seconds_at_least,
)
from letta_otel.config.values import (
    choice,
    parse_bool,
    parse_int_range,
    parse_readable_file,
    parse_state_path,
)

__all__ = ["DaemonFields", "MetricsFields"]

_AS_TRACES = "Unset: OTEL_EXPORTER_OTLP_*, else the traces setting."
_AS_TRACES_DOC = "as for traces"


def _duration(help_text: str, env: str, toml: str, *, allow_zero: bool = False) -> SettingSpec:
    return SettingSpec(
        f"{help_text} {DURATION_HELP}",
        parse_duration(allow_zero=allow_zero),
        env=(env,),
        toml=(toml,),
        metavar="DURATION",
        show=format_duration,
    )


class DaemonFields(BaseModel):
    """The polling loop: state, cadence, logging, how far back, how much at once."""

    state_path: Annotated[
        Path,
        SettingSpec(
            "SQLite state file; its directory must exist. Relative paths (also in the "
            "config file) are relative to the current directory.",
            parse_state_path,
            env=("LETTA_OTEL_STATE_PATH",),
            toml=("daemon.state_path",),
            metavar="PATH",
            default_doc="./letta-otel.db",
        ),
    ] = Path("letta-otel.db")
    poll_interval: Annotated[
        float,
        SettingSpec(
            "Seconds between polls of the Letta server (> 0).",
            parse_seconds,
            env=("LETTA_OTEL_POLL_INTERVAL",),
            toml=("daemon.poll_interval",),
            metavar="SECONDS",
            show=show_seconds,
        ),
    ] = 5.0
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        SettingSpec(
            "Log level: DEBUG, INFO, WARNING or ERROR (case-insensitive).",
            choice(("DEBUG", "INFO", "WARNING", "ERROR"), aliases={"warn": "WARNING"}),
            env=("LETTA_OTEL_LOG_LEVEL",),
            toml=("daemon.log_level",),
            metavar="LEVEL",
        ),
    ] = "INFO"
    log_format: Annotated[
        Literal["text", "json"],
        SettingSpec(
            "Log format: text or json.",
            choice(("text", "json")),
            env=("LETTA_OTEL_LOG_FORMAT",),
            toml=("daemon.log_format",),
            metavar="{text,json}",
        ),
    ] = "text"
    initial_lookback: Annotated[
        timedelta,
        _duration(
            "On first start, how far back to export existing steps (> 0).",
            "LETTA_OTEL_INITIAL_LOOKBACK",
            "daemon.initial_lookback",
        ),
    ] = timedelta(hours=1)
    pending_timeout: Annotated[
        timedelta,
        _duration(
            "How long to wait for an unfinished step before exporting it as is (> 0).",
            "LETTA_OTEL_PENDING_TIMEOUT",
            "daemon.pending_timeout",
        ),
    ] = timedelta(hours=1)
    enrich_grace: Annotated[
        timedelta,
        _duration(
            "How long a late provider trace is waited for (>= 0): a step is exported as "
            "soon as it is terminal; its LLM span follows when Letta writes the trace, or "
            "after this long from the step's metrics alone (0: at once, without waiting).",
            "LETTA_OTEL_ENRICH_GRACE",
            "daemon.enrich_grace",
            allow_zero=True,
        ),
    ] = timedelta(seconds=60)
    reread_window: Annotated[
        timedelta,
        _duration(
            "Once a minute the last part of history this long is listed again, so steps that "
            "became visible late (late commits, runs finishing out of order) are still "
            "exported; duplicates are dropped by id (> 0).",
            "LETTA_OTEL_REREAD_WINDOW",
            "daemon.reread_window",
        ),
    ] = timedelta(minutes=15)
    discovery: Annotated[
        Literal["auto", "steps", "runs"],
        SettingSpec(
            "How new work is found: auto, steps or runs.",
            choice(("auto", "steps", "runs")),
            env=("LETTA_OTEL_DISCOVERY",),
            toml=("daemon.discovery",),
            metavar="{auto,steps,runs}",
        ),
    ] = "auto"
    adopt_letta_trace_id: Annotated[
        bool,
        SettingSpec(
            "Reuse Letta's own trace id for exported spans (true/false).",
            parse_bool,
            env=("LETTA_OTEL_ADOPT_LETTA_TRACE_ID",),
            toml=("daemon.adopt_letta_trace_id",),
            show=show_lower,
        ),
    ] = False
    max_concurrency: Annotated[
        int,
        SettingSpec(
            "Maximum concurrent Letta requests (1-256).",
            parse_int_range(1, 256),
            env=("LETTA_OTEL_MAX_CONCURRENCY",),
            toml=("daemon.max_concurrency",),
            metavar="N",
        ),
    ] = 16
    max_batch_spans: Annotated[
        int,
        SettingSpec(
            "Maximum spans per OTLP export (1-10000).",
            parse_int_range(1, 10_000),
            env=("LETTA_OTEL_MAX_BATCH_SPANS",),
            toml=("export.max_batch_spans",),
            metavar="N",
        ),
    ] = 512
    max_batch_bytes: Annotated[
        int,
        SettingSpec(
            "Maximum encoded size of one OTLP export: 3MB, 3MiB, 512KiB or plain bytes (>= 64KiB).",
            parse_byte_size(minimum=64 * 1024),
            env=("LETTA_OTEL_MAX_BATCH_BYTES",),
            toml=("export.max_batch_bytes",),
            metavar="SIZE",
            show=format_bytes,
        ),
    ] = 3_000_000


def _as_traces(
    help_text: str, parse: Callable[[object], Any], env: str, toml: str, **more: Any
) -> SettingSpec:
    return SettingSpec(
        f"{help_text} {_AS_TRACES}",
        parse,
        env=(env,),
        toml=(toml,),
        default_doc=_AS_TRACES_DOC,
        **more,
    )


class MetricsFields(BaseModel):
    """The metrics push (issue #4): a None transport setting means "as for traces"."""

    otlp_metrics: Annotated[
        bool,
        SettingSpec(
            "Push metrics over OTLP next to the traces (true/false). OTEL_METRICS_EXPORTER is "
            "honoured: otlp pushes, none or prometheus do not. /metrics on the health address "
            "is served either way.",
            parse_metrics_switch,
            env=("LETTA_OTEL_METRICS", "OTEL_METRICS_EXPORTER"),
            toml=("metrics.otlp",),
            metavar="{true,false}",
            show=show_lower,
        ),
    ] = True
    otlp_metrics_protocol: Annotated[
        Literal["grpc", "http/protobuf"] | None,
        _as_traces(
            "OTLP transport for metrics: grpc or http/protobuf.",
            choice(("grpc", "http/protobuf"), hints={"http": "did you mean 'http/protobuf'?"}),
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "otlp.metrics_protocol",
            metavar="{grpc,http/protobuf}",
        ),
    ] = None
    otlp_metrics_endpoint: Annotated[
        str | None,
        SettingSpec(
            "Where metrics are sent, used verbatim. Else OTEL_EXPORTER_OTLP_ENDPOINT + "
            "/v1/metrics (http/protobuf) or as is (grpc); else derived from the traces "
            "endpoint (grpc: the same, http: /v1/traces becomes /v1/metrics); if that "
            "cannot be told, metrics are not pushed (a warning at start says so).",
            parse_endpoint,
            env=("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",),
            toml=("otlp.metrics_endpoint",),
            metavar="URL",
            show=redact_url,
            redact=redact_url,
            default_doc="derived from the traces endpoint",
        ),
    ] = DEFAULT_GRPC_ENDPOINT
    otlp_metrics_headers: Annotated[
        StrMap | None,
        _as_traces(
            "OTLP request headers for metrics, key1=value1,key2=value2.",
            parse_header_list,
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
            "otlp.metrics_headers",
            secret=True,
            show=show_masked_map,
            redact=mask_values,
        ),
    ] = None
    otlp_metrics_compression: Annotated[
        Literal["none", "gzip", "deflate"] | None,
        _as_traces(
            "Metrics payload compression: none, gzip or deflate (http only).",
            choice(("none", "gzip", "deflate")),
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            "otlp.metrics_compression",
            metavar="{none,gzip,deflate}",
        ),
    ] = None
    otlp_metrics_timeout: Annotated[
        float | None,
        _as_traces(
            "Metrics export timeout in MILLISECONDS; at least 100.",
            parse_milliseconds,
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
            "otlp.metrics_timeout_ms",
            metavar="MS",
            show=show_ms,
            native=seconds_at_least(0.1),
        ),
    ] = None
    otlp_metrics_insecure: Annotated[
        bool | None,
        _as_traces(
            "gRPC only: true = plaintext, false = TLS for metrics.",
            parse_bool,
            "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
            "otlp.metrics_insecure",
        ),
    ] = None
    otlp_metrics_certificate: Annotated[
        Path | None,
        _as_traces(
            f"CA certificate to verify the metrics collector. {TLS_FILE}",
            parse_readable_file,
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            "otlp.metrics_certificate",
            metavar="PATH",
        ),
    ] = None
    otlp_metrics_client_key: Annotated[
        Path | None,
        _as_traces(
            f"Client private key for mTLS to the metrics collector. {TLS_FILE}",
            parse_readable_file,
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
            "otlp.metrics_client_key",
            metavar="PATH",
        ),
    ] = None
    otlp_metrics_client_certificate: Annotated[
        Path | None,
        _as_traces(
            f"Client certificate for mTLS to the metrics collector. {TLS_FILE}",
            parse_readable_file,
            "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
            "otlp.metrics_client_certificate",
            metavar="PATH",
        ),
    ] = None
    metric_export_interval: Annotated[
        float,
        SettingSpec(
            "MILLISECONDS between OTLP metrics pushes (OpenTelemetry spec; its default is "
            "60000, letta-otel's 15000 so a failed-step alert fires sooner); at least 100.",
            parse_milliseconds,
            env=("OTEL_METRIC_EXPORT_INTERVAL",),
            toml=("metrics.export_interval_ms",),
            metavar="MS",
            show=show_ms,
            default_doc="15000 (ms)",
            native=seconds_at_least(0.1),
        ),
    ] = 15.0
    health_addr: Annotated[
        str | None,
        SettingSpec(
            "host:port of the HTTP endpoint serving /healthz, /readyz and /metrics "
            "(Prometheus text); off disables it, port 0 picks a free port. Not started by "
            "run --once.",
            parse_health_addr,
            env=(ENV_HEALTH_ADDR,),
            toml=("health.addr",),
            metavar="HOST:PORT",
            show=lambda v: v or "off",
        ),
    ] = DEFAULT_HEALTH_ADDR
    ready_intervals: Annotated[
        int,
        SettingSpec(
            "/readyz fails when the last successful poll or export is older than this many "
            "poll intervals (1-1000).",
            parse_int_range(1, 1000),
            env=("LETTA_OTEL_READY_INTERVALS",),
            toml=("health.ready_intervals",),
            metavar="N",
        ),
    ] = 12
