"""The configuration model enforces its rules however it is built; Letta Cloud by default.

``Settings(...)`` built directly must refuse what ``load_settings`` refuses; the config
package imports nothing above it; without ``LETTA_API_KEY`` Letta Cloud is refused for the
commands that call Letta, a self-hosted server is not; ``letta_deadline`` is a setting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from letta_otel import cli
from letta_otel.config import ConfigError, Settings, load_settings
from letta_otel.doctor import check_config

API_KEY = "sk-let-SECRET-model-0123456789"
HONEYCOMB_KEY = "hcaik_SECRET-direct"


def _refused(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    return str(info.value)


# ------------------------------------------------------------- direct construction


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"poll_interval": 0}, "must be a positive number of seconds"),
        ({"letta_timeout": -1}, "must be a positive number of seconds"),
        ({"max_concurrency": 1000}, "whole number from 1 to 256"),
        ({"max_batch_bytes": 1024}, "must be at least 64KiB"),
        ({"initial_lookback": timedelta(0)}, "greater than zero"),
        ({"log_level": "loud"}, "must be one of DEBUG, INFO, WARNING, ERROR"),
        ({"otlp_protocol": "http"}, "must be one of grpc, http/protobuf"),
        ({"otlp_traces_endpoint": "ftp://c:4317"}, "must be an http:// or https:// URL"),
        ({"otlp_timeout": 0.01}, "at least 0.1"),
        ({"letta_base_url": "localhost:8283"}, "must be an http:// or https:// URL"),
        ({"sample_ratio": 0.3}, "must be 0, 1 or 1/N"),
        ({"filter_agent_ids": ("my-agent",)}, "is not a Letta agent id"),
        ({"redact_patterns": ("(unclosed",)}, "pattern #1"),
        ({"shard": "4/3"}, "K/N"),
        ({"state_path": Path("/nonexistent-dir/state.db")}, "does not exist"),
    ],
)
def test_direct_construction_enforces_the_value_rules(
    values: dict[str, object], fragment: str
) -> None:
    assert fragment in _refused(**values)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"otlp_compression": "deflate"}, "'deflate' only works with the http/protobuf"),
        (
            {"otlp_traces_endpoint": "https://c:4317", "otlp_insecure": True},
            "otlp_insecure: is true but the endpoint https://c:4317 says otherwise",
        ),
        (
            {"max_attribute_bytes": 64 * 1024, "max_span_bytes": 32 * 1024},
            "max_attribute_bytes: 64KiB is more than max_span_bytes (32KiB)",
        ),
        ({"letta_timeout": 90, "letta_deadline": 60}, "letta_deadline: 60s is shorter than"),
        ({"backend": "honeycomb"}, "honeycomb_api_key: required by the honeycomb backend"),
        ({"tempo_tenant": "team-a"}, "tempo_tenant: only used with the tempo backend"),
    ],
)
def test_direct_construction_enforces_the_cross_field_rules(
    values: dict[str, object], fragment: str
) -> None:
    assert fragment in _refused(**values)


def test_direct_construction_applies_the_same_otel_rules_as_loading() -> None:
    s = Settings(
        backend="honeycomb",
        honeycomb_api_key=SecretStr(HONEYCOMB_KEY),
        resource_attributes={"service.name": "from-attrs", "team": "a"},
    )
    assert s == load_settings(
        env={
            "LETTA_OTEL_BACKEND": "honeycomb",
            "HONEYCOMB_API_KEY": HONEYCOMB_KEY,
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,team=a",
        }
    )
    assert s.otlp_traces_endpoint == "https://api.honeycomb.io:443"
    assert dict(s.otlp_headers) == {"x-honeycomb-team": HONEYCOMB_KEY}
    assert (s.otlp_compression, s.max_attribute_bytes) == ("gzip", 65536)
    assert (s.service_name, dict(s.resource_attributes)) == ("from-attrs", {"team": "a"})


def test_direct_construction_takes_python_units_and_ignores_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LETTA_OTEL_POLL_INTERVAL", "99")
    s = Settings(otlp_timeout=2.5, metric_export_interval=60, initial_lookback="2h")
    assert (s.otlp_timeout, s.metric_export_interval) == (2.5, 60.0)  # seconds, not ms
    assert s.initial_lookback == timedelta(hours=2)
    assert s.poll_interval == 5.0


def test_direct_construction_never_echoes_a_secret() -> None:
    text = _refused(letta_api_key=f"{API_KEY} oops", otlp_headers=f"x={API_KEY}%0A")
    assert "SECRET" not in text
    assert "letta_api_key" in text and "otlp_headers" in text


def test_every_problem_of_a_direct_construction_is_reported() -> None:
    text = _refused(poll_interval=0, max_concurrency=0, log_format="yaml")
    assert text.startswith("3 validation errors for Settings")


# ------------------------------------------------------------------ import boundary


def test_configuration_imports_nothing_above_it() -> None:
    code = (
        "import json, sys, letta_otel.config; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('letta_otel'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    above = ("mapping", "selection", "letta", "export", "state", "bridge", "daemon", "telemetry")
    for name in above:
        assert not any(
            m == f"letta_otel.{name}" or m.startswith(f"letta_otel.{name}.") for m in loaded
        ), (
            name,
            loaded,
        )
    assert set(loaded) <= {"letta_otel"} | {m for m in loaded if m.startswith("letta_otel.config")}


# ------------------------------------------------------------- Letta Cloud by default

CLOUD_PROBLEM = "LETTA_API_KEY ([letta] api_key): not set, but Letta Cloud (https://api.letta.com"


def test_letta_cloud_is_the_default_and_needs_a_key_for_commands() -> None:
    assert load_settings(env={}).letta_base_url == "https://api.letta.com"  # loading alone: fine
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, require_letta_api_key=True)
    (problem,) = info.value.problems
    assert problem.startswith(CLOUD_PROBLEM)
    assert "LETTA_BASE_URL" in problem and "http://localhost:8283" in problem  # self-hosted hint
    assert "app.letta.com" in problem  # where to get a key


@pytest.mark.parametrize(
    "env",
    [
        {"LETTA_API_KEY": API_KEY},
        {"LETTA_BASE_URL": "http://localhost:8283"},
        {"LETTA_BASE_URL": "https://letta.internal.example"},
    ],
    ids=["cloud-with-key", "self-hosted", "self-hosted-https"],
)
def test_a_key_or_a_self_hosted_server_satisfies_commands(env: dict[str, str]) -> None:
    load_settings(env=env, require_letta_api_key=True)


def test_missing_cloud_key_is_reported_with_the_other_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            env={"LETTA_BASE_URL": "https://API.letta.com/", "LETTA_OTEL_POLL_INTERVAL": "x"},
            require_letta_api_key=True,
        )
    first, second = info.value.problems
    assert first.startswith("LETTA_OTEL_POLL_INTERVAL")
    assert second.startswith(
        CLOUD_PROBLEM.replace("https://api.letta.com", "https://API.letta.com")
    )


@pytest.mark.parametrize("command", [["run", "--once"], ["backfill", "--since", "2026-01-01"]])
def test_commands_exit_2_naming_the_missing_key(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in ("LETTA_API_KEY", "LETTA_BASE_URL", "LETTA_OTEL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "invalid configuration (1 problem)" in err and CLOUD_PROBLEM in err
    assert "Traceback" not in err


def test_doctor_fails_its_configuration_check_naming_the_missing_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, checks = check_config(None, {}, env={})
    assert settings is None
    (check,) = checks
    assert (check.name, check.status) == ("configuration", "fail")
    assert "LETTA_API_KEY" in check.message
    for key in ("LETTA_API_KEY", "LETTA_BASE_URL", "LETTA_OTEL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    assert cli.main(["doctor"]) == 2
    out = capsys.readouterr().out
    assert "[FAIL] configuration: invalid (LETTA_API_KEY" in out


# -------------------------------------------------------------------- Letta deadline


def test_letta_deadline_from_every_source(tmp_path: Path) -> None:
    assert load_settings(env={}).letta_deadline == 120.0
    assert load_settings(env={"LETTA_OTEL_LETTA_DEADLINE": "5m"}).letta_deadline == 300.0
    config = tmp_path / "c.toml"
    config.write_text("[letta]\ndeadline = 90\n")
    assert load_settings(env={}, config_path=config).letta_deadline == 90.0
    flagged = load_settings(
        env={"LETTA_OTEL_LETTA_DEADLINE": "5m"},
        config_path=config,
        overrides={"letta_deadline": "45s"},
    )
    assert flagged.letta_deadline == 45.0
    assert flagged.describe()["letta_deadline"] == "45s"


def test_letta_deadline_must_cover_the_timeout() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"LETTA_OTEL_LETTA_TIMEOUT": "90", "LETTA_OTEL_LETTA_DEADLINE": "1m"})
    (problem,) = info.value.problems
    assert problem.startswith(
        "LETTA_OTEL_LETTA_DEADLINE (--letta-deadline): 60s is shorter than "
        "LETTA_OTEL_LETTA_TIMEOUT (--letta-timeout) (90s)"
    )
    assert load_settings(env={"LETTA_OTEL_LETTA_DEADLINE": "30s"}).letta_deadline == 30.0
    with pytest.raises(ConfigError) as info:
        load_settings(env={"LETTA_OTEL_LETTA_DEADLINE": "soon"})
    assert info.value.problems[0].startswith("LETTA_OTEL_LETTA_DEADLINE (--letta-deadline): ")
