"""The settings of what is exported and how: filters, sampling, backend presets, content
capture and budgets, and scale-out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, SecretStr

from letta_otel.config import content
from letta_otel.config.content import (
    DEFAULT_MAX_ATTRIBUTE_BYTES,
    DEFAULT_MAX_ATTRIBUTES,
    DEFAULT_MAX_SPAN_BYTES,
    DEFAULT_MAX_TRACE_BYTES,
    MIN_ATTRIBUTE_BYTES,
    MIN_SPAN_BYTES,
    MIN_TRACE_BYTES,
)
from letta_otel.config.presets import (
    BACKENDS,
    ENV_BACKEND,
    ENV_HONEYCOMB_API_KEY,
    ENV_HONEYCOMB_DATASET,
    ENV_HONEYCOMB_REGION,
    ENV_MAX_ATTRIBUTE_BYTES,
    ENV_TEMPO_TENANT,
    HONEYCOMB_HOSTS,
)
from letta_otel.config.selection import (
    format_sample_ratio,
    parse_agent_ids,
    parse_model_handles,
    parse_sample_ratio,
    parse_step_statuses,
    parse_str_list,
    show_list,
)
from letta_otel.config.shard import Shard, parse_shard
from letta_otel.config.spec import SettingSpec, show_masked
from letta_otel.config.units import (
    DURATION_HELP,
    format_bytes,
    format_duration,
    parse_byte_size,
    parse_duration,
)
from letta_otel.config.values import (
    choice,
    format_number,
    parse_api_key,
    parse_int_range,
    parse_optional_str,
    parse_rps,
)

__all__ = ["BackendFields", "ContentFields", "ScaleFields", "SelectionFields"]

_FILTER_HELP = "Comma-separated; the flag can be repeated; set filters must all match."


def _filter(help_text: str, parse: Callable[[object], Any], name: str, flag: str) -> SettingSpec:
    return SettingSpec(
        f"{help_text} {_FILTER_HELP}",
        parse,
        env=(f"LETTA_OTEL_FILTER_{name.upper()}",),
        toml=(f"filter.{name}",),
        keys=(f"filter_{flag}",),
        metavar=flag.upper(),
        show=show_list,
        repeatable=True,
    )


class SelectionFields(BaseModel):
    """Choosing what to export (letta_otel.selection): filters and run-level sampling."""

    filter_agent_ids: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps of these agents (agent ids). One id is sent to Letta as the "
            "agent_id query; several are matched here.",
            parse_agent_ids,
            "agent_ids",
            "agent_id",
        ),
    ] = ()
    filter_agent_tags: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps of agents carrying any of these tags (looked up per agent, "
            "cached 10 minutes).",
            parse_str_list,
            "agent_tags",
            "agent_tag",
        ),
    ] = ()
    filter_models: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps of these model names (step.model, e.g. gpt-4o-mini). One name "
            "is sent to Letta as the model query.",
            parse_str_list,
            "models",
            "model",
        ),
    ] = ()
    filter_model_handles: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps of these model handles (step.model_handle, provider/model, "
            "e.g. openai/gpt-4o-mini); matched here.",
            parse_model_handles,
            "model_handles",
            "model_handle",
        ),
    ] = ()
    filter_project_ids: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps of these Letta Cloud projects (step.project_id). One id is "
            "sent to Letta as the project_id query.",
            parse_str_list,
            "project_ids",
            "project_id",
        ),
    ] = ()
    filter_step_statuses: Annotated[
        tuple[str, ...],
        _filter(
            "Export only steps with these statuses: success, failed, cancelled, incomplete "
            "(still pending after pending_timeout). A run's root span goes out when at least "
            "one of its steps does.",
            parse_step_statuses,
            "step_statuses",
            "step_status",
        ),
    ] = ()
    sample_ratio: Annotated[
        float,
        SettingSpec(
            "Share of successful runs exported, decided per run from its id: 1 (all), 0 "
            "(none) or 1/N (0.5, 0.1, 1/3, 5%). Runs with a failed, cancelled or incomplete "
            "step, or a failed, cancelled or expired status, are always exported whole. "
            "Below 1, kept spans carry SampleRate=N (1 for failures), and a run's steps are "
            "exported once the run has finished.",
            parse_sample_ratio,
            env=("LETTA_OTEL_SAMPLE_RATIO",),
            toml=("sampling.ratio",),
            metavar="RATIO",
            show=format_sample_ratio,
        ),
    ] = 1.0


class BackendFields(BaseModel):
    """Backend presets (issue #5): see :mod:`letta_otel.config.presets`."""

    backend: Annotated[
        Literal["otlp", "jaeger", "tempo", "honeycomb"],
        SettingSpec(
            "Backend preset: otlp (none), jaeger, tempo or honeycomb. Sets the endpoint, "
            "protocol, auth headers and attribute limit of any of those you do not set "
            "yourself; preset auth headers merge with OTLP headers (yours win).",
            choice(BACKENDS),
            env=(ENV_BACKEND,),
            toml=("otlp.backend",),
            metavar="{" + ",".join(BACKENDS) + "}",
        ),
    ] = "otlp"
    honeycomb_api_key: Annotated[
        SecretStr | None,
        SettingSpec(
            "Honeycomb ingest API key, sent as x-honeycomb-team; required with backend "
            "honeycomb, ignored otherwise.",
            parse_api_key,
            env=(ENV_HONEYCOMB_API_KEY,),
            toml=("honeycomb.api_key",),
            secret=True,
            show=show_masked,
        ),
    ] = None
    honeycomb_dataset: Annotated[
        str | None,
        SettingSpec(
            "Honeycomb Classic only: dataset name, sent as x-honeycomb-dataset (backend "
            "honeycomb; ignored otherwise).",
            parse_optional_str,
            env=(ENV_HONEYCOMB_DATASET,),
            toml=("honeycomb.dataset",),
            metavar="DATASET",
        ),
    ] = None
    honeycomb_region: Annotated[
        Literal["us", "eu"],
        SettingSpec(
            "Honeycomb region: us (api.honeycomb.io) or eu (api.eu1.honeycomb.io). Only with "
            "backend honeycomb.",
            choice(tuple(HONEYCOMB_HOSTS)),
            env=(ENV_HONEYCOMB_REGION,),
            toml=("honeycomb.region",),
            metavar="{" + ",".join(HONEYCOMB_HOSTS) + "}",
        ),
    ] = "us"
    tempo_tenant: Annotated[
        str | None,
        SettingSpec(
            "Grafana Tempo tenant, sent as X-Scope-OrgID. Only with backend tempo.",
            parse_optional_str,
            env=(ENV_TEMPO_TENANT,),
            toml=("tempo.tenant",),
            metavar="TENANT",
        ),
    ] = None


def _size(help_text: str, minimum: int, env: str, toml: str) -> SettingSpec:
    return SettingSpec(
        help_text,
        parse_byte_size(minimum=minimum),
        env=(env,),
        toml=(toml,),
        metavar="SIZE",
        show=format_bytes,
    )


class ContentFields(BaseModel):
    """Content capture, redaction and attribute budgets (issue 7)."""

    capture_message_content: Annotated[
        Literal["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"],
        SettingSpec(
            "Prompt/completion capture (GenAI semconv): NO_CONTENT, SPAN_ONLY (content as "
            "attributes on chat and tool spans), EVENT_ONLY (a gen_ai.client.inference."
            "operation.details event on chat spans) or SPAN_AND_EVENT. Captured text is "
            "redacted and budgeted; see docs/content-capture.md.",
            content.parse_capture_mode,
            env=("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",),
            toml=("content.capture",),
            metavar="MODE",
        ),
    ] = "NO_CONTENT"
    redact_patterns: Annotated[
        tuple[str, ...],
        SettingSpec(
            "Extra regular expressions to redact from captured content and error texts, on "
            "top of the built-in ones (keys, tokens, emails, card numbers): one per line or a "
            "JSON array (a TOML array in the file). Each match becomes [REDACTED].",
            content.parse_redact_patterns,
            env=("LETTA_OTEL_REDACT_PATTERNS",),
            toml=("content.redact_patterns",),
            metavar="REGEXES",
            show=content.show_patterns,
            default_doc="(none)",
        ),
    ] = ()
    max_attribute_bytes: Annotated[
        int,
        _size(
            "Largest string attribute value (every attribute, span and event; content is cut "
            "as JSON and stays valid); the tempo preset sets 2048, the honeycomb preset 64KiB "
            f"(>= {MIN_ATTRIBUTE_BYTES} bytes).",
            MIN_ATTRIBUTE_BYTES,
            ENV_MAX_ATTRIBUTE_BYTES,
            "limits.max_attribute_bytes",
        ),
    ] = DEFAULT_MAX_ATTRIBUTE_BYTES
    max_span_bytes: Annotated[
        int,
        _size(
            "Budget for one span's encoded size: content shrinks, then goes, to fit "
            f"(>= {format_bytes(MIN_SPAN_BYTES)}).",
            MIN_SPAN_BYTES,
            "LETTA_OTEL_MAX_SPAN_BYTES",
            "limits.max_span_bytes",
        ),
    ] = DEFAULT_MAX_SPAN_BYTES
    max_trace_bytes: Annotated[
        int,
        _size(
            "Budget for all spans of one run (one trace), across export cycles; past it, "
            "spans go out without captured content (Tempo rejects traces over 5MB) "
            f"(>= {format_bytes(MIN_TRACE_BYTES)}).",
            MIN_TRACE_BYTES,
            "LETTA_OTEL_MAX_TRACE_BYTES",
            "limits.max_trace_bytes",
        ),
    ] = DEFAULT_MAX_TRACE_BYTES
    max_attributes: Annotated[
        int,
        SettingSpec(
            "Most attributes per span and per event; content, then other non-core "
            "attributes are dropped first, gen_ai.*/letta.* never (8-100000).",
            parse_int_range(8, 100_000),
            env=("LETTA_OTEL_MAX_ATTRIBUTES",),
            toml=("limits.max_attributes",),
            metavar="N",
        ),
    ] = DEFAULT_MAX_ATTRIBUTES


class ScaleFields(BaseModel):
    """Throughput, scale-out and backfill (issue 6)."""

    max_rps: Annotated[
        float,
        SettingSpec(
            "Client-side limit on Letta requests per second, retries included, to stay "
            "inside a Letta Cloud quota; 0 = no limit (0-10000).",
            parse_rps,
            env=("LETTA_OTEL_MAX_RPS",),
            toml=("daemon.max_rps",),
            metavar="RPS",
            show=lambda v: "off" if not v else format_number(v),
        ),
    ] = 0.0
    shard: Annotated[
        Shard | None,
        SettingSpec(
            "Handle only the agents of shard K of N (e.g. 2/3): N replicas with separate "
            "state files split the work without overlap. Agent to shard: sha256 of the agent "
            "id, see docs/operations.md. Unset = all agents.",
            parse_shard,
            env=("LETTA_OTEL_SHARD",),
            toml=("daemon.shard",),
            metavar="K/N",
        ),
    ] = None
    backfill_max_age: Annotated[
        timedelta,
        SettingSpec(
            "letta-otel backfill refuses a --since older than this unless --force (some "
            "backends drop old spans: Dynatrace after 60 min, Sumo Logic after 24 h) (> 0). "
            f"{DURATION_HELP}",
            parse_duration(allow_zero=False),
            env=("LETTA_OTEL_BACKFILL_MAX_AGE",),
            toml=("backfill.max_age",),
            metavar="DURATION",
            show=format_duration,
        ),
    ] = timedelta(days=7)
