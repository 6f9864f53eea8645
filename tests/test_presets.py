"""Backend presets resolved without overrides, and how explicit settings override them."""

from __future__ import annotations

from pathlib import Path

import pytest

from letta_otel.config import ConfigError, Settings, load_settings, presets
from letta_otel.config.content import DEFAULT_MAX_ATTRIBUTE_BYTES

# Without a preset the per-attribute limit is the general default (content capture, #7).
DEFAULT_LIMIT = DEFAULT_MAX_ATTRIBUTE_BYTES
KEY = "hcaik_SECRET-honeycomb-key-0123456789"


def load(env: dict[str, str], toml: str | None = None, tmp_path: Path | None = None) -> Settings:
    config = None
    if toml is not None:
        assert tmp_path is not None
        config = tmp_path / "c.toml"
        config.write_text(toml)
    return load_settings(env=env, config_path=config)


def resolved(s: Settings) -> tuple[str, str, dict[str, str], str, int | None]:
    return (
        s.otlp_protocol,
        s.otlp_traces_endpoint,
        dict(s.otlp_headers),
        s.otlp_compression,
        s.max_attribute_bytes,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            {},
            ("grpc", "http://localhost:4317", {}, "none", DEFAULT_LIMIT),
            id="otlp-default",
        ),
        pytest.param(
            {"LETTA_OTEL_BACKEND": "jaeger"},
            ("grpc", "http://localhost:4317", {}, "none", DEFAULT_LIMIT),
            id="jaeger-grpc",
        ),
        pytest.param(
            {"LETTA_OTEL_BACKEND": "jaeger", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("http/protobuf", "http://localhost:4318/v1/traces", {}, "none", DEFAULT_LIMIT),
            id="jaeger-http",
        ),
        pytest.param(
            {"LETTA_OTEL_BACKEND": "tempo"},
            ("grpc", "http://localhost:4317", {}, "none", 2048),
            id="tempo-single-tenant",
        ),
        pytest.param(
            {
                "LETTA_OTEL_BACKEND": "tempo",
                "LETTA_OTEL_TEMPO_TENANT": "team-a",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            (
                "http/protobuf",
                "http://localhost:4318/v1/traces",
                {"x-scope-orgid": "team-a"},
                "none",
                2048,
            ),
            id="tempo-tenant-http",
        ),
        pytest.param(
            {"LETTA_OTEL_BACKEND": "honeycomb", "HONEYCOMB_API_KEY": KEY},
            ("grpc", "https://api.honeycomb.io:443", {"x-honeycomb-team": KEY}, "gzip", 65536),
            id="honeycomb-us-grpc",
        ),
        pytest.param(
            {
                "LETTA_OTEL_BACKEND": "HoneyComb",
                "HONEYCOMB_API_KEY": KEY,
                "HONEYCOMB_DATASET": "letta",
                "LETTA_OTEL_HONEYCOMB_REGION": "EU",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            (
                "http/protobuf",
                "https://api.eu1.honeycomb.io/v1/traces",
                {"x-honeycomb-team": KEY, "x-honeycomb-dataset": "letta"},
                "gzip",
                65536,
            ),
            id="honeycomb-eu-http-classic",
        ),
    ],
)
def test_each_preset_resolves(
    env: dict[str, str], expected: tuple[str, str, dict[str, str], str, int | None]
) -> None:
    assert resolved(load(env)) == expected


def test_every_backend_is_covered_and_documented() -> None:
    assert presets.BACKENDS == ("otlp", "jaeger", "tempo", "honeycomb")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in presets.BACKENDS:
        assert f"LETTA_OTEL_BACKEND={name}" in readme, name


def test_explicit_settings_beat_the_preset_per_setting(tmp_path: Path) -> None:
    s = load(
        {
            "LETTA_OTEL_BACKEND": "honeycomb",
            "HONEYCOMB_API_KEY": KEY,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
            "LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "4KiB",
        },
        '[otlp]\ncompression = "none"\n',
        tmp_path,
    )
    assert s.otlp_traces_endpoint == "http://127.0.0.1:4317"  # env beats preset
    assert s.otlp_compression == "none"  # file beats preset
    assert s.max_attribute_bytes == 4096
    assert s.otlp_protocol == "grpc"  # still the preset's
    assert dict(s.otlp_headers) == {"x-honeycomb-team": KEY}


def test_flag_beats_env_beats_preset_for_the_backend_itself() -> None:
    s = load_settings(
        env={"LETTA_OTEL_BACKEND": "tempo"},
        overrides={"backend": "jaeger", "otlp_protocol": "http/protobuf"},
    )
    assert (s.backend, s.otlp_traces_endpoint, s.max_attribute_bytes) == (
        "jaeger",
        "http://localhost:4318/v1/traces",
        DEFAULT_LIMIT,
    )


def test_preset_auth_headers_merge_with_explicit_headers_and_explicit_wins() -> None:
    s = load(
        {
            "LETTA_OTEL_BACKEND": "honeycomb",
            "HONEYCOMB_API_KEY": KEY,
            "HONEYCOMB_DATASET": "from-env",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-extra=1,X-Honeycomb-Dataset=explicit",
        }
    )
    assert dict(s.otlp_headers) == {
        "x-honeycomb-team": KEY,
        "x-honeycomb-dataset": "explicit",
        "x-extra": "1",
    }


def test_an_explicit_team_header_replaces_the_api_key() -> None:
    s = load(
        {"LETTA_OTEL_BACKEND": "honeycomb", "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=abc"}
    )
    assert dict(s.otlp_headers) == {"x-honeycomb-team": "abc"}


def test_honeycomb_without_api_key_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load({"LETTA_OTEL_BACKEND": "honeycomb"})
    (problem,) = info.value.problems
    assert problem.startswith("HONEYCOMB_API_KEY ([honeycomb] api_key): required by the honeycomb")
    assert "LETTA_OTEL_BACKEND" in problem


def test_honeycomb_settings_are_ignored_by_other_backends() -> None:
    # HONEYCOMB_API_KEY / HONEYCOMB_DATASET are shared with other Honeycomb tools.
    s = load({"HONEYCOMB_API_KEY": KEY, "HONEYCOMB_DATASET": "x"})
    assert dict(s.otlp_headers) == {}


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"LETTA_OTEL_TEMPO_TENANT": "team-a"}, "LETTA_OTEL_TEMPO_TENANT"),
        (
            {"LETTA_OTEL_BACKEND": "jaeger", "LETTA_OTEL_HONEYCOMB_REGION": "eu"},
            "LETTA_OTEL_HONEYCOMB_REGION",
        ),
    ],
)
def test_a_preset_option_without_its_backend_is_a_config_error(
    env: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(env)
    (problem,) = info.value.problems
    assert problem.startswith(setting)
    assert "only used with the" in problem


def test_unknown_backend_is_one_clear_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load({"LETTA_OTEL_BACKEND": "zipkin"})
    (problem,) = info.value.problems
    assert problem.startswith("LETTA_OTEL_BACKEND (--backend): must be one of otlp, jaeger")


def test_honeycomb_key_is_secret_everywhere() -> None:
    s = load(
        {"LETTA_OTEL_BACKEND": "honeycomb", "HONEYCOMB_API_KEY": KEY, "HONEYCOMB_DATASET": "d"}
    )
    described = s.describe()
    assert described["honeycomb_api_key"] == "***"
    assert described["otlp_headers"] == "x-honeycomb-team=***,x-honeycomb-dataset=***"
    for text in (repr(s), str(s), repr(described)):
        assert "SECRET" not in text
    with pytest.raises(ConfigError) as info:
        load({"LETTA_OTEL_BACKEND": "honeycomb", "HONEYCOMB_API_KEY": f"{KEY}\n{KEY}"})
    assert "SECRET" not in str(info.value)


def test_toml_sections_configure_presets(tmp_path: Path) -> None:
    s = load(
        {},
        '[otlp]\nbackend = "tempo"\n[tempo]\ntenant = "ops"\n[limits]\nmax_attribute_bytes = 512\n',
        tmp_path,
    )
    assert (s.backend, dict(s.otlp_headers), s.max_attribute_bytes) == (
        "tempo",
        {"x-scope-orgid": "ops"},
        512,
    )


@pytest.mark.parametrize("backend", ["jaeger", "tempo", "honeycomb"])
def test_trace_only_presets_push_no_metrics_unless_asked(backend: str) -> None:
    """Jaeger and Tempo store no metrics and Honeycomb takes them only into a named
    dataset: a preset that pushed them would log a failed push every interval."""
    env = {"LETTA_OTEL_BACKEND": backend, "HONEYCOMB_API_KEY": "hc-key"}
    assert load(env).otlp_metrics is False
    assert load({**env, "LETTA_OTEL_METRICS": "true"}).otlp_metrics is True
    assert load({"LETTA_OTEL_BACKEND": "otlp"}).otlp_metrics is True


@pytest.mark.parametrize(
    ("protocol", "traces", "metrics"),
    [
        ("grpc", "https://api.honeycomb.io:443", "https://api.honeycomb.io:443"),
        (
            "http/protobuf",
            "https://api.honeycomb.io/v1/traces",
            "https://api.honeycomb.io/v1/metrics",
        ),
    ],
)
def test_metrics_go_where_the_preset_sends_traces(protocol: str, traces: str, metrics: str) -> None:
    """Metrics follow the preset's endpoint, never the local default (they went to
    localhost:4317 with the Honeycomb preset before)."""
    settings = load(
        {
            "LETTA_OTEL_BACKEND": "honeycomb",
            "HONEYCOMB_API_KEY": "hc-key",
            "HONEYCOMB_DATASET": "letta-metrics",
            "LETTA_OTEL_METRICS": "true",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }
    )
    assert settings.otlp_traces_endpoint == traces
    assert settings.otlp_metrics_endpoint == metrics
