"""Tests for the configuration layer (letta_otel.config)."""

from __future__ import annotations

import argparse
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from letta_otel.config import (
    ENV_VARS,
    SETTING_SPECS,
    ConfigError,
    Settings,
    SettingSpec,
    add_settings_arguments,
    load_settings,
    overrides_from_args,
    settings_reference_markdown,
)
from letta_otel.config.network import parse_header_list
from letta_otel.config.units import (
    format_bytes,
    format_duration,
    parse_byte_size,
    parse_duration,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_TOML = REPO / "config" / "letta-otel.example.toml"

API_KEY = "sk-let-TOPSECRET-0123456789"
HEADER_SECRET = "Bearer hdr-SECRET-9876"


def load(
    env: dict[str, str] | None = None,
    toml: str | None = None,
    tmp_path: Path | None = None,
    /,
    **overrides: object,
) -> Settings:
    """load_settings with an isolated env, an optional TOML text and flag overrides."""
    config_path = None
    if toml is not None:
        assert tmp_path is not None
        config_path = tmp_path / "letta-otel.toml"
        config_path.write_text(toml)
    return load_settings(env=env or {}, config_path=config_path, overrides=overrides)


def problems_of(
    env: dict[str, str] | None = None,
    toml: str | None = None,
    tmp_path: Path | None = None,
    /,
    **overrides: object,
) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env, toml, tmp_path, **overrides)
    return info.value.problems


def one_problem(
    env: dict[str, str] | None = None,
    toml: str | None = None,
    tmp_path: Path | None = None,
    /,
    **overrides: object,
) -> str:
    problems = problems_of(env, toml, tmp_path, **overrides)
    assert len(problems) == 1, problems
    return problems[0]


# ----------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    s = load()
    assert s == Settings()
    assert s.letta_base_url == "https://api.letta.com"  # Letta Cloud, as the official SDKs
    assert s.letta_api_key is None
    assert s.letta_project is None
    assert s.letta_timeout == 30.0
    assert s.letta_deadline == 120.0
    assert s.otlp_protocol == "grpc"
    assert s.otlp_traces_endpoint == "http://localhost:4317"
    assert dict(s.otlp_headers) == {}
    assert s.otlp_compression == "none"
    assert s.otlp_timeout == 10.0
    assert s.otlp_insecure is None
    assert s.otlp_certificate is None
    assert s.otlp_client_key is None
    assert s.otlp_client_certificate is None
    assert s.service_name == "letta"
    assert dict(s.resource_attributes) == {}
    assert s.state_path == Path("letta-otel.db")
    assert s.poll_interval == 5.0
    assert s.log_level == "INFO"
    assert s.log_format == "text"
    assert s.initial_lookback == timedelta(hours=1)
    assert s.pending_timeout == timedelta(hours=1)
    assert s.enrich_grace == timedelta(seconds=60)
    assert s.discovery == "auto"
    assert s.adopt_letta_trace_id is False
    assert s.max_concurrency == 16
    assert s.max_batch_spans == 512
    assert s.max_batch_bytes == 3_000_000
    assert s.max_rps == 0.0
    assert s.shard is None
    assert s.backfill_max_age == timedelta(days=7)


def test_settings_is_immutable_and_hashable() -> None:
    s = load({"OTEL_EXPORTER_OTLP_HEADERS": "a=b", "OTEL_RESOURCE_ATTRIBUTES": "k=v"})
    with pytest.raises(Exception, match="frozen"):
        s.poll_interval = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.otlp_headers["a"] = "c"  # type: ignore[index]
    assert hash(s) == hash(
        load({"OTEL_EXPORTER_OTLP_HEADERS": "a=b", "OTEL_RESOURCE_ATTRIBUTES": "k=v"})
    )
    assert s.model_dump()["otlp_headers"] == {"a": "b"}


def test_direct_construction_defaults_endpoint_from_protocol() -> None:
    assert Settings(otlp_protocol="http/protobuf").otlp_traces_endpoint == (
        "http://localhost:4318/v1/traces"
    )


def test_every_field_has_exactly_one_spec() -> None:
    assert [spec.field for spec in SETTING_SPECS] == list(Settings.model_fields)


def test_env_vars_lists_every_variable() -> None:
    from_specs = {name for spec in SETTING_SPECS for name in spec.env}
    assert set(ENV_VARS) == from_specs | {"LETTA_OTEL_CONFIG"}
    assert len(ENV_VARS) == len(set(ENV_VARS))
    for spec in SETTING_SPECS:
        otel = [name for name in spec.env if name.startswith("OTEL_EXPORTER_OTLP_")]
        if otel:  # every OTLP exporter setting has its signal-specific variant first
            assert otel[0].startswith(
                ("OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_METRICS_")
            ), spec.field


# ---------------------------------------------------------------------- each env var


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        (
            "LETTA_BASE_URL",
            "https://letta.example.com/",
            "letta_base_url",
            "https://letta.example.com",
        ),
        ("LETTA_PROJECT", " my-project ", "letta_project", "my-project"),
        ("LETTA_OTEL_LETTA_TIMEOUT", "12.5", "letta_timeout", 12.5),
        ("LETTA_OTEL_LETTA_TIMEOUT", "2m", "letta_timeout", 120.0),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "otlp_protocol", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "GRPC", "otlp_protocol", "grpc"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4317",
            "otlp_traces_endpoint",
            "http://collector:4317",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://c:443",
            "otlp_traces_endpoint",
            "https://c:443",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-a=1", "otlp_headers", {"x-a": "1"}),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-b=2", "otlp_headers", {"x-b": "2"}),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "otlp_compression", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP", "otlp_compression", "gzip"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", "otlp_timeout", 2.5),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "30000", "otlp_timeout", 30.0),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true", "otlp_insecure", True),
        ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "TRUE", "otlp_insecure", True),
        ("OTEL_SERVICE_NAME", "my-letta", "service_name", "my-letta"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod",
            "resource_attributes",
            {"deployment.environment": "prod"},
        ),
        ("LETTA_OTEL_POLL_INTERVAL", "0.5", "poll_interval", 0.5),
        ("LETTA_OTEL_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("LETTA_OTEL_LOG_LEVEL", "warn", "log_level", "WARNING"),
        ("LETTA_OTEL_LOG_FORMAT", "JSON", "log_format", "json"),
        ("LETTA_OTEL_INITIAL_LOOKBACK", "2d", "initial_lookback", timedelta(days=2)),
        ("LETTA_OTEL_PENDING_TIMEOUT", "PT30M", "pending_timeout", timedelta(minutes=30)),
        ("LETTA_OTEL_ENRICH_GRACE", "0", "enrich_grace", timedelta(0)),
        ("LETTA_OTEL_DISCOVERY", "runs", "discovery", "runs"),
        ("LETTA_OTEL_ADOPT_LETTA_TRACE_ID", "true", "adopt_letta_trace_id", True),
        ("LETTA_OTEL_ADOPT_LETTA_TRACE_ID", "0", "adopt_letta_trace_id", False),
        ("LETTA_OTEL_MAX_CONCURRENCY", "256", "max_concurrency", 256),
        ("LETTA_OTEL_MAX_BATCH_SPANS", "10000", "max_batch_spans", 10000),
        ("LETTA_OTEL_MAX_BATCH_BYTES", "512KiB", "max_batch_bytes", 512 * 1024),
    ],
)
def test_each_env_var(name: str, value: str, field: str, expected: object) -> None:
    assert name in ENV_VARS
    actual = getattr(load({name: value}), field)
    assert (dict(actual) if isinstance(expected, dict) else actual) == expected


def test_api_key_env_is_secret_str() -> None:
    s = load({"LETTA_API_KEY": f" {API_KEY}\n"})
    assert isinstance(s.letta_api_key, SecretStr)
    assert s.letta_api_key.get_secret_value() == API_KEY


def test_state_path_env(tmp_path: Path) -> None:
    assert load({"LETTA_OTEL_STATE_PATH": str(tmp_path / "s.db")}).state_path == tmp_path / "s.db"


def test_tls_file_env_vars(tmp_path: Path) -> None:
    ca, key, cert = (tmp_path / n for n in ("ca.pem", "client.key", "client.pem"))
    for path in (ca, key, cert):
        path.write_text("-----BEGIN-----\n")
    s = load(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca),
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": str(key),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(cert),
        }
    )
    assert (s.otlp_certificate, s.otlp_client_key, s.otlp_client_certificate) == (ca, key, cert)


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_env_var_counts_as_unset(blank: str) -> None:
    s = load(
        {
            "LETTA_OTEL_POLL_INTERVAL": blank,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": blank,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
    )
    assert s.poll_interval == 5.0
    assert s.otlp_protocol == "http/protobuf"


def test_unrelated_env_vars_are_ignored() -> None:
    assert load({"PATH": "/bin", "LETTA_OTEL_UNKNOWN": "x"}) == Settings()


# -------------------------------------------------------------------------- precedence

PRECEDENCE_CASES = [
    # field (= flag key), env var, (TOML section, key), flag/env/file values, expected
    (
        "poll_interval",
        "LETTA_OTEL_POLL_INTERVAL",
        ("daemon", "poll_interval"),
        ("1", "2", "3"),
        (1.0, 2.0, 3.0),
    ),
    (
        "log_level",
        "LETTA_OTEL_LOG_LEVEL",
        ("daemon", "log_level"),
        ("error", "warning", "debug"),
        ("ERROR", "WARNING", "DEBUG"),
    ),
    (
        "max_batch_bytes",
        "LETTA_OTEL_MAX_BATCH_BYTES",
        ("export", "max_batch_bytes"),
        ("1MB", "2MiB", "100000"),
        (1_000_000, 2 * 1024**2, 100_000),
    ),
    (
        "otlp_timeout",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        ("otlp", "timeout_ms"),
        ("1000", "2000", "3000"),
        (1.0, 2.0, 3.0),
    ),
    (
        "service_name",
        "OTEL_SERVICE_NAME",
        ("service", "name"),
        ("from-flag", "from-env", "from-file"),
        ("from-flag", "from-env", "from-file"),
    ),
    (
        "letta_base_url",
        "LETTA_BASE_URL",
        ("letta", "base_url"),
        ("http://flag:1", "http://env:2", "http://file:3"),
        ("http://flag:1", "http://env:2", "http://file:3"),
    ),
]


@pytest.mark.parametrize("case", PRECEDENCE_CASES, ids=[c[0] for c in PRECEDENCE_CASES])
def test_precedence_flag_env_file_default(
    tmp_path: Path,
    case: tuple[str, str, tuple[str, str], tuple[str, str, str], tuple[object, object, object]],
) -> None:
    field, env_name, toml_key, raw, expected = case
    flag_value, env_value, file_value = raw
    toml = f'[{toml_key[0]}]\n{toml_key[1]} = "{file_value}"\n'
    env = {env_name: env_value}
    flag = {field: flag_value}
    default = Settings.model_fields[field].default
    assert getattr(load(env, toml, tmp_path, **flag), field) == expected[0]
    assert getattr(load(env, toml, tmp_path), field) == expected[1]
    assert getattr(load({}, toml, tmp_path), field) == expected[2]
    assert getattr(load({}, None, tmp_path), field) == default


def test_flag_none_means_not_given() -> None:
    assert load({"LETTA_OTEL_POLL_INTERVAL": "2"}, poll_interval=None).poll_interval == 2.0


def test_only_the_winning_value_is_validated() -> None:
    s = load({"LETTA_OTEL_POLL_INTERVAL": "abc"}, poll_interval="3")
    assert s.poll_interval == 3.0


@pytest.mark.parametrize(
    ("suffix", "traces", "generic", "field", "expected"),
    [
        ("PROTOCOL", "http/protobuf", "grpc", "otlp_protocol", "http/protobuf"),
        ("HEADERS", "a=traces", "a=generic", "otlp_headers", {"a": "traces"}),
        ("COMPRESSION", "gzip", "none", "otlp_compression", "gzip"),
        ("TIMEOUT", "1000", "5000", "otlp_timeout", 1.0),
        ("INSECURE", "true", "false", "otlp_insecure", True),
        (
            "ENDPOINT",
            "http://traces:4317",
            "http://generic:4317",
            "otlp_traces_endpoint",
            "http://traces:4317",
        ),
    ],
)
def test_traces_variant_beats_generic(
    suffix: str, traces: str, generic: str, field: str, expected: object
) -> None:
    s = load(
        {
            f"OTEL_EXPORTER_OTLP_TRACES_{suffix}": traces,
            f"OTEL_EXPORTER_OTLP_{suffix}": generic,
            # The generic value also reaches the metrics push, where e.g. insecure=false
            # would contradict the plaintext default endpoint; traces are the subject here.
            "LETTA_OTEL_METRICS": "false",
        }
    )
    actual = getattr(s, field)
    assert (dict(actual) if isinstance(expected, dict) else actual) == expected


def test_maps_are_replaced_not_merged(tmp_path: Path) -> None:
    toml = '[otlp]\nheaders = { "x-file" = "1" }\n[service]\nresource_attributes = { a = "1" }\n'
    s = load(
        {"OTEL_EXPORTER_OTLP_HEADERS": "x-env=2", "OTEL_RESOURCE_ATTRIBUTES": "b=2"}, toml, tmp_path
    )
    assert dict(s.otlp_headers) == {"x-env": "2"}
    assert dict(s.resource_attributes) == {"b": "2"}


# -------------------------------------------------------------------- endpoint resolution

GRPC, HTTP = "grpc", "http/protobuf"
TRACES, GENERIC = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"


@pytest.mark.parametrize(
    ("protocol", "env", "flags", "expected"),
    [
        # defaults
        (GRPC, {}, {}, "http://localhost:4317"),
        (HTTP, {}, {}, "http://localhost:4318/v1/traces"),
        # generic endpoint: /v1/traces appended for http only
        (GRPC, {GENERIC: "http://c:4317"}, {}, "http://c:4317"),
        (HTTP, {GENERIC: "http://c:4318"}, {}, "http://c:4318/v1/traces"),
        (HTTP, {GENERIC: "http://c:4318/"}, {}, "http://c:4318/v1/traces"),
        (HTTP, {GENERIC: "https://c/otlp"}, {}, "https://c/otlp/v1/traces"),
        (HTTP, {GENERIC: "https://c/otlp/"}, {}, "https://c/otlp/v1/traces"),
        # traces endpoint: verbatim for both protocols
        (GRPC, {TRACES: "http://t:4317"}, {}, "http://t:4317"),
        (HTTP, {TRACES: "http://t:4318"}, {}, "http://t:4318"),
        (HTTP, {TRACES: "https://t/custom/path"}, {}, "https://t/custom/path"),
        (HTTP, {TRACES: "http://t:4318/v1/traces"}, {}, "http://t:4318/v1/traces"),
        # traces beats generic
        (HTTP, {TRACES: "http://t:1/x", GENERIC: "http://g:2"}, {}, "http://t:1/x"),
        (GRPC, {TRACES: "http://t:1", GENERIC: "http://g:2"}, {}, "http://t:1"),
        # gRPC accepts a bare host:port (TLS unless insecure)
        (GRPC, {GENERIC: "collector:4317"}, {}, "https://collector:4317"),
        (
            GRPC,
            {GENERIC: "collector:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
            {},
            "http://collector:4317",
        ),
        (GRPC, {TRACES: "[::1]:4317"}, {}, "https://[::1]:4317"),
        # a flag beats both env forms
        (
            HTTP,
            {TRACES: "http://t:1/x", GENERIC: "http://g:2"},
            {"otlp_endpoint": "http://f:3"},
            "http://f:3/v1/traces",
        ),
        (GRPC, {TRACES: "http://t:1"}, {"otlp_endpoint": "http://f:3"}, "http://f:3"),
        (HTTP, {TRACES: "http://t:1/x"}, {"otlp_traces_endpoint": "http://f:3/y"}, "http://f:3/y"),
        (
            HTTP,
            {},
            {"otlp_traces_endpoint": "http://ft:1/a", "otlp_endpoint": "http://fg:2"},
            "http://ft:1/a",
        ),
    ],
)
def test_endpoint_resolution(
    protocol: str, env: dict[str, str], flags: dict[str, str], expected: str
) -> None:
    s = load({"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, **env}, **flags)
    assert s.otlp_traces_endpoint == expected


@pytest.mark.parametrize(
    ("protocol", "key", "url"),
    [
        (GRPC, "endpoint", "http://collector:4317"),
        (HTTP, "endpoint", "http://collector:4318"),
        (HTTP, "traces_endpoint", "http://collector:4318/v1/traces"),
    ],
)
def test_endpoint_from_file(tmp_path: Path, protocol: str, key: str, url: str) -> None:
    toml = f'[otlp]\nprotocol = "{protocol}"\n{key} = "{url}"\n'
    expected = url + ("/v1/traces" if key == "endpoint" and protocol == HTTP else "")
    assert load({}, toml, tmp_path).otlp_traces_endpoint == expected


def test_env_endpoint_beats_file_traces_endpoint(tmp_path: Path) -> None:
    toml = '[otlp]\ntraces_endpoint = "http://file:4317"\n'
    assert load({GENERIC: "http://env:4317"}, toml, tmp_path).otlp_traces_endpoint == (
        "http://env:4317"
    )


@pytest.mark.parametrize(
    ("protocol", "env", "expected_fragment"),
    [
        (GRPC, {GENERIC: "ftp://c:4317"}, "must be an http:// or https:// URL"),
        (HTTP, {GENERIC: "collector:4318"}, "must be an http:// or https:// URL"),
        (HTTP, {TRACES: "collector:4318/v1/traces"}, "must be an http:// or https:// URL"),
        (GRPC, {TRACES: "http://:4317"}, "has no host"),
        (GRPC, {TRACES: "http://c:99999"}, "invalid port"),
        (GRPC, {TRACES: "http://c:0"}, "invalid port"),
        (GRPC, {TRACES: "http://c:port"}, "invalid port"),
        (HTTP, {TRACES: "http://c 1:4318"}, "whitespace"),
    ],
)
def test_invalid_endpoints(protocol: str, env: dict[str, str], expected_fragment: str) -> None:
    problem = one_problem({"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, **env})
    assert problem.startswith(next(iter(env)))
    assert expected_fragment in problem


def test_endpoint_problem_never_shows_url_password() -> None:
    problem = one_problem({TRACES: "http://user:hunter2@c:99999"})
    assert "hunter2" not in problem
    assert "***@c:99999" in problem


def test_invalid_letta_base_url() -> None:
    problem = one_problem({"LETTA_BASE_URL": "localhost:8283"})
    assert problem == (
        "LETTA_BASE_URL (--letta-base-url): must be an http:// or https:// URL, "
        "e.g. http://localhost:8283, got 'localhost:8283'"
    )


# ---------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("api-key=secret", {"api-key": "secret"}),
        (
            " Authorization = Bearer%20abc%3D%3D , X-Tenant=t1",
            {"authorization": "Bearer abc==", "x-tenant": "t1"},
        ),
        ("a=1,,b=2,", {"a": "1", "b": "2"}),
        ("a=x=y", {"a": "x=y"}),
        ("a=", {"a": ""}),
        ("a=%E2%9C%93", {"a": "\u2713"}),
        ("authorization=Basic dXNlcjpwYXNz", {"authorization": "Basic dXNlcjpwYXNz"}),
        ("a=1,A=2", {"a": "2"}),
    ],
)
def test_header_parsing(raw: str, expected: dict[str, str]) -> None:
    assert dict(load({"OTEL_EXPORTER_OTLP_HEADERS": raw}).otlp_headers) == expected


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (f"authorization {HEADER_SECRET}", ["entry 1 is not key=value"]),
        (f"ok=1,{HEADER_SECRET}", ["entry 2 is not key=value"]),
        (f"=a{HEADER_SECRET}", ["entry 1 has an empty key"]),
        (f"bad key={HEADER_SECRET}", ["entry 1: the key is not a valid header name"]),
        (
            f"x-a={HEADER_SECRET}%0D%0Ainjected: 1",
            ["entry 1 ('x-a'): the value contains a control character"],
        ),
        (f"x-a={HEADER_SECRET}%FF", ["entry 1 ('x-a'): the value's percent-encoding"]),
        (f"a b,c={HEADER_SECRET},=d", ["entry 1 is not key=value", "entry 3 has an empty key"]),
    ],
)
def test_malformed_headers_name_the_entry_but_never_the_value(
    raw: str, fragments: list[str]
) -> None:
    problem = one_problem({"OTEL_EXPORTER_OTLP_TRACES_HEADERS": raw})
    assert problem.startswith("OTEL_EXPORTER_OTLP_TRACES_HEADERS ([otlp] headers): ")
    for fragment in fragments:
        assert fragment in problem
    assert "SECRET" not in problem
    assert "got" not in problem


def test_headers_from_toml_table(tmp_path: Path) -> None:
    toml = f'[otlp]\nheaders = {{ Authorization = "{HEADER_SECRET}", "X-Scope" = "a b" }}\n'
    s = load({}, toml, tmp_path)
    assert dict(s.otlp_headers) == {"authorization": HEADER_SECRET, "x-scope": "a b"}


def test_headers_from_toml_string_use_env_format(tmp_path: Path) -> None:
    s = load({}, '[otlp]\nheaders = "a=1%202"\n', tmp_path)
    assert dict(s.otlp_headers) == {"a": "1 2"}


def test_bad_header_table_never_shows_values(tmp_path: Path) -> None:
    toml = f'[otlp]\nheaders = {{ "x-a" = 5, "x-b" = ["{HEADER_SECRET}"] }}\n'
    problem = one_problem({}, toml, tmp_path)
    assert "the value for 'x-b' must be a string" in problem
    assert "SECRET" not in problem


@given(
    st.dictionaries(
        st.from_regex(r"[a-z0-9][a-z0-9\-_.]{0,15}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
        max_size=5,
    )
)
def test_header_percent_encoding_round_trip(headers: dict[str, str]) -> None:
    raw = ",".join(f"{k}={quote(v, safe='')}" for k, v in headers.items())
    assert dict(parse_header_list(raw)) == headers


# ------------------------------------------------------------------ resource attributes


def test_resource_attributes_percent_decoded() -> None:
    s = load({"OTEL_RESOURCE_ATTRIBUTES": "team=a%2Cb,region=eu%20west"})
    assert dict(s.resource_attributes) == {"team": "a,b", "region": "eu west"}


def test_malformed_resource_attributes_are_shown() -> None:
    problem = one_problem({"OTEL_RESOURCE_ATTRIBUTES": "a=1,oops"})
    assert "OTEL_RESOURCE_ATTRIBUTES (--resource-attributes): entry 2 'oops' is not key=value" in (
        problem
    )
    assert "got 'a=1,oops'" in problem


@pytest.mark.parametrize(
    ("env", "toml", "flags", "expected"),
    [
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}, None, {}, "from-attrs"),
        (
            {
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs",
                "OTEL_SERVICE_NAME": "explicit",
            },
            None,
            {},
            "explicit",
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"},
            '[service]\nname = "file"\n',
            {},
            "from-attrs",
        ),
        (
            {},
            '[service]\nname = "file"\nresource_attributes = { "service.name" = "fa" }\n',
            {},
            "file",
        ),
        ({}, '[service]\nresource_attributes = { "service.name" = "fa" }\n', {}, "fa"),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"},
            None,
            {"service_name": "flag"},
            "flag",
        ),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name="}, None, {}, "letta"),
    ],
)
def test_service_name_from_resource_attributes(
    tmp_path: Path, env: dict[str, str], toml: str | None, flags: dict[str, str], expected: str
) -> None:
    s = load(env, toml, tmp_path, **flags)
    assert s.service_name == expected
    assert "service.name" not in s.resource_attributes


# ------------------------------------------------------------------------ OTLP timeout


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10000", 10.0),
        ("100", 0.1),
        ("2500.5", 2.5005),
        ("10s", 10.0),
        ("1m", 60.0),
        ("250ms", 0.25),
    ],
)
def test_otlp_timeout_is_milliseconds(raw: str, expected: float) -> None:
    assert load({"OTEL_EXPORTER_OTLP_TIMEOUT": raw}).otlp_timeout == pytest.approx(expected)


@pytest.mark.parametrize(("raw", "meant"), [("10", "10000"), ("99", "99000"), ("0.5", "500")])
def test_otlp_timeout_below_100_ms_suggests_seconds_mistake(raw: str, meant: str) -> None:
    problem = one_problem({"OTEL_EXPORTER_OTLP_TIMEOUT": raw})
    assert problem == (
        "OTEL_EXPORTER_OTLP_TIMEOUT (--otlp-timeout): is in milliseconds per the "
        f"OpenTelemetry spec; {raw} ms is too short — did you mean {meant}?"
    )


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "50ms"])
def test_otlp_timeout_invalid(raw: str) -> None:
    assert "OTEL_EXPORTER_OTLP_TIMEOUT" in one_problem({"OTEL_EXPORTER_OTLP_TIMEOUT": raw})


def test_otlp_timeout_in_toml_is_ms(tmp_path: Path) -> None:
    assert load({}, "[otlp]\ntimeout_ms = 2000\n", tmp_path).otlp_timeout == 2.0
    problem = one_problem({}, "[otlp]\ntimeout_ms = 5\n", tmp_path)
    assert problem.startswith("[otlp] timeout_ms in ")
    assert "did you mean 5000?" in problem


def test_otlp_timeout_flag_is_ms() -> None:
    assert load(otlp_timeout="1500").otlp_timeout == 1.5


# ----------------------------------------------------------------- durations and sizes

DURATIONS = [
    ("90s", timedelta(seconds=90)),
    ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)),
    ("2d", timedelta(days=2)),
    ("1w", timedelta(weeks=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1h 30m 15s", timedelta(hours=1, minutes=30, seconds=15)),
    ("1H30M", timedelta(hours=1, minutes=30)),
    ("1.5h", timedelta(hours=1, minutes=30)),
    ("500ms", timedelta(milliseconds=500)),
    ("3600", timedelta(hours=1)),
    ("0.25", timedelta(milliseconds=250)),
    ("PT1H", timedelta(hours=1)),
    ("pt15m", timedelta(minutes=15)),
    ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
    ("P2W", timedelta(weeks=2)),
    ("PT0,5S", timedelta(milliseconds=500)),
]


@pytest.mark.parametrize(("raw", "expected"), DURATIONS)
def test_duration_parsing(raw: str, expected: timedelta) -> None:
    assert parse_duration(allow_zero=False)(raw) == expected
    assert load({"LETTA_OTEL_INITIAL_LOOKBACK": raw}).initial_lookback == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("abc", "must be a duration"),
        ("1x", "must be a duration"),
        ("h", "must be a duration"),
        ("1h1h", "repeats the unit 'h'"),
        ("PT", "must be a duration"),
        ("P", "must be a duration"),
        ("P1Y", "years/months"),
        ("P1M", "years/months"),
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        ("0s", "greater than zero"),
        ("99999d", "out of range"),
    ],
)
def test_invalid_durations(raw: str, fragment: str) -> None:
    problem = one_problem({"LETTA_OTEL_PENDING_TIMEOUT": raw})
    assert problem.startswith("LETTA_OTEL_PENDING_TIMEOUT (--pending-timeout): ")
    assert fragment in problem
    assert f"got {raw!r}" in problem


def test_enrich_grace_accepts_zero_but_not_negative() -> None:
    assert load({"LETTA_OTEL_ENRICH_GRACE": "0s"}).enrich_grace == timedelta(0)
    assert "zero or more" in one_problem({"LETTA_OTEL_ENRICH_GRACE": "-1"})


def test_native_toml_numbers_are_seconds(tmp_path: Path) -> None:
    toml = "[daemon]\ninitial_lookback = 90\npoll_interval = 0.5\n[letta]\ntimeout = 7\n"
    s = load({}, toml, tmp_path)
    assert s.initial_lookback == timedelta(seconds=90)
    assert s.poll_interval == 0.5
    assert s.letta_timeout == 7.0


@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=3000)))
def test_duration_format_round_trip(value: timedelta) -> None:
    assert parse_duration(allow_zero=False)(format_duration(value)) == value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3MB", 3_000_000),
        ("3MiB", 3 * 1024**2),
        ("512KiB", 512 * 1024),
        ("512kib", 512 * 1024),
        ("100kB", 100_000),
        ("1GB", 10**9),
        ("1 GiB", 1024**3),
        ("3000000", 3_000_000),
        ("3_000_000", 3_000_000),
        ("1.5MB", 1_500_000),
        ("65536", 65536),
        ("65536B", 65536),
    ],
)
def test_byte_size_parsing(raw: str, expected: int) -> None:
    assert load({"LETTA_OTEL_MAX_BATCH_BYTES": raw}).max_batch_bytes == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("3M", "ambiguous unit 'M'; write MB (powers of 1000) or MiB"),
        ("3k", "ambiguous unit"),
        ("3TB", "unknown unit"),
        ("lots", "must be a byte size"),
        ("1.5B", "whole number of bytes"),
        ("64000", "must be at least 64KiB (65536 bytes)"),
        ("-1MB", "must be a byte size"),
    ],
)
def test_invalid_byte_sizes(raw: str, fragment: str) -> None:
    problem = one_problem({"LETTA_OTEL_MAX_BATCH_BYTES": raw})
    assert problem.startswith("LETTA_OTEL_MAX_BATCH_BYTES (--max-batch-bytes): ")
    assert fragment in problem


@given(st.integers(min_value=64 * 1024, max_value=10**13))
def test_byte_size_format_round_trip(value: int) -> None:
    assert parse_byte_size(minimum=64 * 1024)(format_bytes(value)) == value


def test_format_bytes_prefers_exact_units() -> None:
    assert [format_bytes(n) for n in (3_000_000, 65536, 1024**2, 70_001)] == [
        "3MB",
        "64KiB",
        "1MiB",
        "70001",
    ]


# ------------------------------------------------------------------ other value rules


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"LETTA_OTEL_POLL_INTERVAL": "0"}, "must be a positive number of seconds"),
        ({"LETTA_OTEL_LETTA_TIMEOUT": "-1"}, "must be a positive number of seconds"),
        ({"LETTA_OTEL_MAX_CONCURRENCY": "0"}, "whole number from 1 to 256"),
        ({"LETTA_OTEL_MAX_CONCURRENCY": "257"}, "whole number from 1 to 256"),
        ({"LETTA_OTEL_MAX_CONCURRENCY": "2.5"}, "whole number from 1 to 256"),
        ({"LETTA_OTEL_MAX_BATCH_SPANS": "10001"}, "whole number from 1 to 10000"),
        ({"LETTA_OTEL_ADOPT_LETTA_TRACE_ID": "maybe"}, "must be true or false"),
        ({"LETTA_OTEL_DISCOVERY": "step"}, "did you mean 'steps'?"),
        ({"LETTA_OTEL_LOG_FORMAT": "yaml"}, "must be one of text, json"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http"}, "did you mean 'http/protobuf'?"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "not supported by the Python"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "must be one of none, gzip, deflate"),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_RESOURCE_ATTRIBUTES": "=x"}, "empty key"),
    ],
)
def test_invalid_values(env: dict[str, str], fragment: str) -> None:
    assert fragment in one_problem(env)


def test_problem_format_matches_the_documented_example() -> None:
    assert one_problem({"LETTA_OTEL_POLL_INTERVAL": "abc"}) == (
        "LETTA_OTEL_POLL_INTERVAL (--poll-interval): must be a positive number of seconds "
        "(e.g. 5, 2.5, 500ms, 1m), got 'abc'"
    )
    assert one_problem(poll_interval="abc").startswith(
        "--poll-interval (LETTA_OTEL_POLL_INTERVAL): must be a positive number"
    )


def test_api_key_with_inner_whitespace_is_reported_without_echo() -> None:
    problem = one_problem({"LETTA_API_KEY": f"{API_KEY} oops"})
    assert problem.startswith("LETTA_API_KEY ([letta] api_key): contains whitespace")
    assert API_KEY not in problem


def test_state_path_parent_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "state.db"
    problem = one_problem({"LETTA_OTEL_STATE_PATH": str(missing)})
    assert f"is in the directory '{missing.parent}', which does not exist" in problem
    assert "is a directory" in one_problem({"LETTA_OTEL_STATE_PATH": str(tmp_path)})


def test_relative_state_path_in_file_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, work_dir = tmp_path / "etc", tmp_path / "work"
    config_dir.mkdir()
    (work_dir / "data").mkdir(parents=True)
    monkeypatch.chdir(work_dir)
    config = config_dir / "c.toml"
    config.write_text('[daemon]\nstate_path = "data/state.db"\n')
    s = load_settings(env={}, config_path=config)
    assert s.state_path == Path("data/state.db")
    assert s.state_path.resolve() == work_dir / "data" / "state.db"


def test_tls_files_must_exist(tmp_path: Path) -> None:
    problem = one_problem(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c:4317",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "ca.pem"),
        }
    )
    assert problem.startswith("OTEL_EXPORTER_OTLP_CERTIFICATE (--otlp-certificate): does not exist")


# ------------------------------------------------------------------ cross-field checks


def test_deflate_needs_http() -> None:
    problem = one_problem({"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"})
    assert problem.startswith("OTEL_EXPORTER_OTLP_COMPRESSION (--otlp-compression): 'deflate'")
    assert "http/protobuf" in problem
    assert (
        load(
            {
                "OTEL_EXPORTER_OTLP_COMPRESSION": "deflate",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            }
        ).otlp_compression
        == "deflate"
    )


def test_mtls_needs_key_and_certificate(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("k")
    problem = one_problem(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(key)}
    )
    assert "CLIENT_CERTIFICATE" in problem
    assert "needs both the client key and the client certificate" in problem
    # a missing file is reported once, not also as "needs both"
    problem = one_problem(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": str(key),
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": str(tmp_path / "missing.pem"),
        }
    )
    assert problem.startswith("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (--otlp-client-certificate)")
    assert "does not exist" in problem


@pytest.mark.parametrize(
    ("endpoint", "insecure", "ok"),
    [
        ("https://c:4317", "true", False),
        ("http://c:4317", "false", False),
        ("http://c:4317", "true", True),
        ("https://c:4317", "false", True),
        ("c:4317", "true", True),
        ("c:4317", "false", True),
    ],
)
def test_grpc_insecure_must_not_contradict_scheme(endpoint: str, insecure: str, ok: bool) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_INSECURE": insecure}
    if ok:
        assert load(env).otlp_insecure is (insecure == "true")
    else:
        assert one_problem(env).startswith("OTEL_EXPORTER_OTLP_INSECURE (--otlp-insecure): is ")


def test_insecure_is_ignored_for_http() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    assert load(env).otlp_traces_endpoint == "https://c/v1/traces"


def test_tls_files_with_plaintext_endpoint(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    problem = one_problem({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(ca)})
    assert "TLS files are set but the endpoint http://localhost:4317 is plaintext" in problem


# -------------------------------------------------------------- all problems at once


def test_many_problems_become_one_error(tmp_path: Path) -> None:
    toml = "[daemon]\npolll_interval = 5\n[otlp]\ntimeout_ms = 7\n"
    env = {
        "LETTA_BASE_URL": "ftp://letta",
        "LETTA_OTEL_POLL_INTERVAL": "abc",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift",
        "OTEL_EXPORTER_OTLP_HEADERS": f"broken{HEADER_SECRET}",
        "LETTA_OTEL_MAX_BATCH_BYTES": "1KiB",
        "LETTA_OTEL_INITIAL_LOOKBACK": "forever",
        "LETTA_OTEL_LOG_LEVEL": "loud",
        "LETTA_API_KEY": API_KEY,
    }
    with pytest.raises(ConfigError) as info:
        load(env, toml, tmp_path, max_concurrency="1000", discovery="magic")
    problems = info.value.problems
    expected_starts = [
        f"config file {tmp_path / 'letta-otel.toml'}: unknown key 'polll_interval' in [daemon]",
        "LETTA_BASE_URL (--letta-base-url): ",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL (--otlp-protocol): ",
        "OTEL_EXPORTER_OTLP_HEADERS ([otlp] headers): ",
        f"[otlp] timeout_ms in {tmp_path / 'letta-otel.toml'} (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT)",
        "LETTA_OTEL_POLL_INTERVAL (--poll-interval): ",
        "LETTA_OTEL_LOG_LEVEL (--log-level): ",
        "LETTA_OTEL_INITIAL_LOOKBACK (--initial-lookback): ",
        "--discovery (LETTA_OTEL_DISCOVERY): ",
        "--max-concurrency (LETTA_OTEL_MAX_CONCURRENCY): ",
        "LETTA_OTEL_MAX_BATCH_BYTES (--max-batch-bytes): ",
    ]
    assert len(problems) == len(expected_starts), problems
    for problem, start in zip(problems, expected_starts, strict=True):
        assert problem.startswith(start), (problem, start)
    text = str(info.value)
    assert text.startswith(f"invalid configuration ({len(expected_starts)} problems):\n  - ")
    assert text.count("\n  - ") == len(expected_starts)
    assert API_KEY not in text and "SECRET" not in text
    # deterministic
    with pytest.raises(ConfigError) as again:
        load(env, toml, tmp_path, max_concurrency="1000", discovery="magic")
    assert again.value.problems == problems


def test_single_problem_wording() -> None:
    with pytest.raises(ConfigError) as info:
        load({"LETTA_OTEL_POLL_INTERVAL": "-1"})
    assert str(info.value).startswith("invalid configuration (1 problem):\n  - LETTA_OTEL_POLL")


def test_unknown_override_key() -> None:
    problem = one_problem(polll_interval="3")
    assert problem == "override 'polll_interval': not a setting — did you mean 'poll_interval'?"


def test_programmatic_override_of_secret_and_native_values() -> None:
    s = load(
        letta_api_key=API_KEY,
        poll_interval=2,
        initial_lookback=timedelta(minutes=5),
        adopt_letta_trace_id=True,
        otlp_headers={"X-A": "1"},
    )
    assert s.letta_api_key is not None
    assert s.letta_api_key.get_secret_value() == API_KEY
    assert (s.poll_interval, s.initial_lookback, s.adopt_letta_trace_id) == (
        2.0,
        timedelta(minutes=5),
        True,
    )
    assert dict(s.otlp_headers) == {"x-a": "1"}
    problem = one_problem(letta_api_key=f"{API_KEY}\nx")
    assert problem.startswith("override 'letta_api_key' (LETTA_API_KEY): ")
    assert API_KEY not in problem


# ------------------------------------------------------------------------- TOML file

FULL_TOML = """
[letta]
base_url = "https://letta.internal:8443/"
api_key = "{key}"
project = "proj-1"
timeout = "45s"

[otlp]
endpoint = "https://collector:4318"
protocol = "http/protobuf"
headers = {{ "Authorization" = "{header}" }}
compression = "deflate"
timeout_ms = 20000
insecure = false

[service]
name = "letta-prod"
resource_attributes = {{ "deployment.environment" = "prod", replicas = 3, canary = true }}

[daemon]
state_path = "{state}"
poll_interval = 2.5
log_level = "debug"
log_format = "json"
initial_lookback = "PT2H"
pending_timeout = 600
enrich_grace = "0s"
discovery = "steps"
adopt_letta_trace_id = true
max_concurrency = 16

[export]
max_batch_spans = 1000
max_batch_bytes = "1MiB"
"""


def test_full_toml_file(tmp_path: Path) -> None:
    toml = FULL_TOML.format(key=API_KEY, header=HEADER_SECRET, state=tmp_path / "s.db")
    s = load({}, toml, tmp_path)
    assert s.letta_base_url == "https://letta.internal:8443"
    assert s.letta_api_key is not None
    assert s.letta_api_key.get_secret_value() == API_KEY
    assert s.letta_project == "proj-1"
    assert s.letta_timeout == 45.0
    assert s.otlp_traces_endpoint == "https://collector:4318/v1/traces"
    assert s.otlp_protocol == "http/protobuf"
    assert dict(s.otlp_headers) == {"authorization": HEADER_SECRET}
    assert s.otlp_compression == "deflate"
    assert s.otlp_timeout == 20.0
    assert s.otlp_insecure is False
    assert s.service_name == "letta-prod"
    assert dict(s.resource_attributes) == {
        "deployment.environment": "prod",
        "replicas": "3",
        "canary": "true",
    }
    assert s.state_path == tmp_path / "s.db"
    assert s.poll_interval == 2.5
    assert s.log_level == "DEBUG"
    assert s.log_format == "json"
    assert s.initial_lookback == timedelta(hours=2)
    assert s.pending_timeout == timedelta(minutes=10)
    assert s.enrich_grace == timedelta(0)
    assert s.discovery == "steps"
    assert s.adopt_letta_trace_id is True
    assert s.max_concurrency == 16
    assert s.max_batch_spans == 1000
    assert s.max_batch_bytes == 1024**2


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[daemon]\npolll_interval = 5\n",
            "unknown key 'polll_interval' in [daemon] — did you mean 'poll_interval'?",
        ),
        (
            "[daemon]\nproject = 'x'\n",
            "unknown key 'project' in [daemon] — it belongs in the [letta] section",
        ),
        ("[deamon]\npoll_interval = 5\n", "unknown section [deamon] — did you mean [daemon]?"),
        (
            "[wibble]\na = 1\n",
            "unknown section [wibble] — valid sections are [letta], [otlp], [service], "
            "[daemon], [export], [metrics], [health], [filter], [sampling], [honeycomb], "
            "[tempo], [content], [limits]",
        ),
        (
            "poll_interval = 5\n",
            "unknown key 'poll_interval' in the top level — it belongs in the [daemon] section",
        ),
        ("[daemon]\nfrobnicate = 1\n", "unknown key 'frobnicate' in [daemon] — remove it"),
        ("daemon = 5\n", "'daemon' must be a [daemon] section (a table)"),
    ],
)
def test_unknown_toml_keys(tmp_path: Path, toml: str, expected: str) -> None:
    problem = one_problem({}, toml, tmp_path)
    assert problem.startswith(f"config file {tmp_path / 'letta-otel.toml'}: ")
    assert expected in problem


def test_toml_syntax_error_has_line_number(tmp_path: Path) -> None:
    problem = one_problem({}, "[daemon]\npoll_interval = 5\nlog_level = \n", tmp_path)
    assert "TOML syntax error" in problem
    assert "line 3" in problem
    assert "(--config / LETTA_OTEL_CONFIG)" in problem


def test_missing_and_unreadable_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, config_path=tmp_path / "missing.toml")
    assert info.value.problems == [
        f"config file {tmp_path / 'missing.toml'} (--config / LETTA_OTEL_CONFIG): "
        "does not exist; check the path"
    ]
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, config_path=tmp_path)
    assert "is a directory" in info.value.problems[0]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[daemon]")
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, config_path=binary)
    assert "is not UTF-8" in info.value.problems[0]


def test_bad_file_does_not_hide_other_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"LETTA_OTEL_POLL_INTERVAL": "x"}, config_path=tmp_path / "nope.toml")
    assert len(info.value.problems) == 2


def test_config_path_from_env(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[daemon]\npoll_interval = 9\n")
    assert load_settings(env={"LETTA_OTEL_CONFIG": str(config)}).poll_interval == 9.0
    other = tmp_path / "other.toml"
    other.write_text("[daemon]\npoll_interval = 7\n")
    explicit = load_settings(env={"LETTA_OTEL_CONFIG": str(config)}, config_path=other)
    assert explicit.poll_interval == 7.0


def test_wrong_native_types_in_toml(tmp_path: Path) -> None:
    toml = "[daemon]\nmax_concurrency = true\nadopt_letta_trace_id = 1\nlog_level = 3\n"
    problems = problems_of({}, toml, tmp_path)
    assert [p.split(" in ")[0] for p in problems] == [
        "[daemon] log_level",
        "[daemon] adopt_letta_trace_id",
        "[daemon] max_concurrency",
    ]
    assert problems[0].endswith("must be one of DEBUG, INFO, WARNING, ERROR (a string), got 3")
    assert problems[1].endswith("must be true or false, got 1")
    assert problems[2].endswith("must be a whole number from 1 to 256, got True")


# ------------------------------------------------------------------------ example file


def test_example_toml_loads_as_is_and_yields_defaults() -> None:
    s = load_settings(env={}, config_path=EXAMPLE_TOML)
    assert s == Settings()


def _uncommented_example() -> str:
    return re.sub(r"^#(\w+ = )", r"\1", EXAMPLE_TOML.read_text(), flags=re.MULTILINE)


def test_example_toml_default_lines_are_the_real_defaults(tmp_path: Path) -> None:
    config = tmp_path / "example.toml"
    config.write_text(_uncommented_example())
    assert load_settings(env={}, config_path=config) == Settings()


def test_example_toml_mentions_every_key() -> None:
    text = EXAMPLE_TOML.read_text()
    sections = dict.fromkeys(re.findall(r"^\[(\w+)\]$", text, flags=re.MULTILINE))
    current = ""
    mentioned: set[str] = set()
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            current = m.group(1)
        elif m := re.match(r"# ?(\w+) = ", line):
            mentioned.add(f"{current}.{m.group(1)}")
    expected = [key for spec in SETTING_SPECS for key in spec.toml]
    assert mentioned == set(expected)
    assert list(sections) == list(dict.fromkeys(k.split(".")[0] for k in expected))
    for spec in SETTING_SPECS:
        for name in spec.env:
            short = re.sub(r"^OTEL_EXPORTER_OTLP_(TRACES_)?", "OTEL_EXPORTER_OTLP_[TRACES_]", name)
            assert name in text or short in text, name
    tomllib.loads(text)


# ------------------------------------------------------------------------------ secrets


def _secret_settings() -> Settings:
    return load(
        {
            "LETTA_API_KEY": API_KEY,
            "LETTA_BASE_URL": "https://admin:pw-SECRET-1@letta:8283",
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization={quote(HEADER_SECRET)},x-other=SECRET-2",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://u:pw-SECRET-3@collector:4317",
        }
    )


def test_secrets_never_in_repr_str_or_describe() -> None:
    s = _secret_settings()
    assert dict(s.otlp_headers)["authorization"] == HEADER_SECRET  # really loaded
    for text in (repr(s), str(s), repr(s.describe()), repr(s.model_fields_set)):
        assert API_KEY not in text
        assert "SECRET" not in text, text
    described = s.describe()
    assert described["letta_api_key"] == "***"
    assert described["otlp_headers"] == "authorization=***,x-other=***"
    assert described["otlp_traces_endpoint"] == "https://***@collector:4317"
    assert described["letta_base_url"] == "https://***@letta:8283"


def test_describe_covers_every_setting() -> None:
    described = load().describe()
    assert list(described) == list(Settings.model_fields)
    assert all(isinstance(v, str) for v in described.values())
    assert described["otlp_timeout"] == "10000ms"
    assert described["initial_lookback"] == "1h"
    assert described["max_batch_bytes"] == "3MB"
    assert described["letta_api_key"] == "(not set)"


def test_secrets_never_in_config_errors(tmp_path: Path) -> None:
    toml = f'[letta]\napi_key = "{API_KEY} x"\n[otlp]\nheaders = "{HEADER_SECRET}"\n'
    env = {
        "LETTA_API_KEY": f"{API_KEY}\n{API_KEY}",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x={HEADER_SECRET}%0A",
        "OTEL_EXPORTER_OTLP_HEADERS": HEADER_SECRET,
    }
    for case_env, case_toml in ((env, None), ({}, toml)):
        with pytest.raises(ConfigError) as info:
            load(case_env, case_toml, tmp_path)
        text = str(info.value) + repr(info.value) + repr(info.value.problems)
        assert API_KEY not in text
        assert "SECRET" not in text
        # In the env case the generic headers, shadowed for traces, are what the metrics
        # push would send: reported too.
        assert len(info.value.problems) == (3 if case_env else 2)


# -------------------------------------------------------------------------------- docs


def test_reference_markdown_lists_every_env_var_and_flag() -> None:
    md = settings_reference_markdown()
    for name in ENV_VARS:
        assert f"`{name}`" in md, name
    for spec in SETTING_SPECS:
        assert f"`{spec.field}`" in md
        for flag in spec.flags:
            assert f"`{flag}`" in md
    rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(rows) == len(SETTING_SPECS)
    assert all(row.count(" | ") == 5 for row in rows)
    assert "`--config PATH`" in md


# ---------------------------------------------------------------------------- argparse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="letta-otel")
    add_settings_arguments(parser)
    return parser


def test_flags_default_to_not_given() -> None:
    ns = _parser().parse_args([])
    config, overrides = overrides_from_args(ns)
    assert config is None
    assert overrides == {}


def test_expected_flags_exist_and_secrets_have_none() -> None:
    help_text = _parser().format_help()
    for flag in (
        "--config",
        "--letta-base-url",
        "--letta-project",
        "--letta-timeout",
        "--otlp-endpoint",
        "--otlp-traces-endpoint",
        "--otlp-protocol",
        "--otlp-compression",
        "--otlp-timeout",
        "--otlp-insecure",
        "--no-otlp-insecure",
        "--otlp-certificate",
        "--otlp-client-key",
        "--otlp-client-certificate",
        "--service-name",
        "--resource-attributes",
        "--state-path",
        "--poll-interval",
        "--log-level",
        "--log-format",
        "--initial-lookback",
        "--pending-timeout",
        "--enrich-grace",
        "--discovery",
        "--adopt-letta-trace-id",
        "--no-adopt-letta-trace-id",
        "--max-concurrency",
        "--max-batch-spans",
        "--max-batch-bytes",
    ):
        assert flag in help_text, flag
    assert "--letta-api-key" not in help_text
    assert "--otlp-headers" not in help_text
    assert "`ps`" in help_text


def test_flags_round_trip_through_load_settings(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[daemon]\nlog_level = "error"\n')
    ns = _parser().parse_args(
        [
            "--config",
            str(config),
            "--poll-interval",
            "2",
            "--otlp-protocol",
            "http/protobuf",
            "--otlp-endpoint",
            "http://collector:4318",
            "--otlp-timeout",
            "3000",
            "--no-otlp-insecure",
            "--adopt-letta-trace-id",
            "--max-batch-bytes",
            "1MiB",
            "--initial-lookback",
            "15m",
        ]
    )
    config_path, overrides = overrides_from_args(ns)
    assert config_path == config
    assert overrides == {
        "poll_interval": "2",
        "otlp_protocol": "http/protobuf",
        "otlp_endpoint": "http://collector:4318",
        "otlp_timeout": "3000",
        "otlp_insecure": False,
        "adopt_letta_trace_id": True,
        "max_batch_bytes": "1MiB",
        "initial_lookback": "15m",
    }
    s = load_settings(
        env={
            "LETTA_OTEL_POLL_INTERVAL": "9",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:1/x",
        },
        config_path=config_path,
        overrides=overrides,
    )
    assert s.poll_interval == 2.0
    assert s.log_level == "ERROR"
    assert s.otlp_traces_endpoint == "http://collector:4318/v1/traces"
    assert s.otlp_timeout == 3.0
    assert s.otlp_insecure is False
    assert s.adopt_letta_trace_id is True
    assert s.max_batch_bytes == 1024**2
    assert s.initial_lookback == timedelta(minutes=15)


def test_bad_flag_values_are_collected_not_argparse_errors() -> None:
    ns = _parser().parse_args(["--poll-interval", "soon", "--max-concurrency", "many"])
    _, overrides = overrides_from_args(ns)
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides=overrides)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "--poll-interval (LETTA_OTEL_POLL_INTERVAL)",
        "--max-concurrency (LETTA_OTEL_MAX_CONCURRENCY)",
    ]


def test_flags_coexist_with_other_arguments() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--once", action="store_true")
    add_settings_arguments(parser)
    ns = parser.parse_args(["--once", "--log-level", "debug"])
    assert ns.once is True
    assert overrides_from_args(ns) == (None, {"log_level": "debug"})


# ------------------------------------------------------------------------- robustness


@given(st.dictionaries(st.sampled_from(ENV_VARS[:-1]), st.text(max_size=40), max_size=6))
def test_arbitrary_env_values_never_raise_anything_but_config_error(env: dict[str, str]) -> None:
    env = {k: v.replace("\0", "") for k, v in env.items()}
    try:
        load(env)
    except ConfigError as exc:
        assert exc.problems
        assert API_KEY not in str(exc)


@given(
    st.sampled_from([s for s in SETTING_SPECS if s.toml]),
    st.one_of(
        st.text(max_size=20),
        st.integers(),
        st.floats(),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    ),
)
def test_arbitrary_native_values_never_raise_anything_but_config_error(
    spec: SettingSpec, value: object
) -> None:
    try:
        load_settings(env={}, overrides={spec.field: value})
    except ConfigError as exc:
        assert exc.problems


def test_rate_limit_shard_and_backfill_age() -> None:
    s = load(
        {
            "LETTA_OTEL_MAX_RPS": "12.5",
            "LETTA_OTEL_SHARD": " 2 / 3 ",
            "LETTA_OTEL_BACKFILL_MAX_AGE": "24h",
        }
    )
    assert s.max_rps == 12.5
    assert s.shard is not None and (s.shard.index, s.shard.count) == (2, 3)
    assert str(s.shard) == "2/3"
    assert s.backfill_max_age == timedelta(hours=24)
    assert s.describe()["shard"] == "2/3"
    with pytest.raises(ConfigError) as info:
        load({"LETTA_OTEL_MAX_RPS": "-1", "LETTA_OTEL_SHARD": "4/3"})
    text = str(info.value)
    assert "LETTA_OTEL_MAX_RPS" in text and "LETTA_OTEL_SHARD" in text and "K/N" in text
