"""Filter and sampling settings: every source, repeatable flags, clear errors (exit 2)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from letta_otel import cli
from letta_otel.config import (
    ConfigError,
    Settings,
    add_settings_arguments,
    load_settings,
    overrides_from_args,
)

A1 = "agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5"
A2 = "agent-df73fa68-abaa-4d0c-8a06-b4df607e0381"


def _problem(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    (problem,) = info.value.problems
    return problem


def _from_flags(*argv: str) -> Settings:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    config, overrides = overrides_from_args(parser.parse_args(list(argv)))
    return load_settings(env={}, config_path=config, overrides=overrides)


def test_defaults_select_everything() -> None:
    s = load_settings(env={})
    assert s.filter_agent_ids == s.filter_agent_tags == s.filter_models == ()
    assert s.filter_model_handles == s.filter_project_ids == s.filter_step_statuses == ()
    assert s.sample_ratio == 1.0
    described = s.describe()
    assert described["filter_agent_ids"] == "(any)"
    assert described["sample_ratio"] == "1"


def test_environment_lists() -> None:
    s = load_settings(
        env={
            "LETTA_OTEL_FILTER_AGENT_IDS": f" {A1} , {A2},,{A1}",
            "LETTA_OTEL_FILTER_AGENT_TAGS": "prod,eu",
            "LETTA_OTEL_FILTER_MODELS": "gpt-4o-mini",
            "LETTA_OTEL_FILTER_MODEL_HANDLES": "openai/gpt-4o-mini,anthropic/claude-3-5",
            "LETTA_OTEL_FILTER_PROJECT_IDS": "proj-a",
            "LETTA_OTEL_FILTER_STEP_STATUSES": "Failed,cancelled,incomplete",
            "LETTA_OTEL_SAMPLE_RATIO": "0.1",
        }
    )
    assert s.filter_agent_ids == (A1, A2)  # trimmed, empties and duplicates dropped
    assert s.filter_agent_tags == ("prod", "eu")
    assert s.filter_models == ("gpt-4o-mini",)
    assert s.filter_model_handles == ("openai/gpt-4o-mini", "anthropic/claude-3-5")
    assert s.filter_project_ids == ("proj-a",)
    assert s.filter_step_statuses == ("failed", "cancelled", "incomplete")
    assert s.sample_ratio == pytest.approx(0.1)
    assert s.describe()["sample_ratio"] == "0.1 (1 in 10)"


def test_repeatable_flags_and_comma_lists() -> None:
    s = _from_flags(
        "--filter-agent-id",
        A1,
        "--filter-agent-id",
        A2,
        "--filter-step-status",
        "failed,cancelled",
        "--filter-model-handle",
        "openai/gpt-4o-mini",
        "--sample-ratio",
        "1/4",
    )
    assert s.filter_agent_ids == (A1, A2)
    assert s.filter_step_statuses == ("failed", "cancelled")
    assert s.filter_model_handles == ("openai/gpt-4o-mini",)
    assert s.sample_ratio == 0.25


def test_toml_arrays_and_flag_precedence(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[filter]\nagent_ids = ["{A1}"]\nagent_tags = "a, b"\nstep_statuses = ["failed"]\n'
        "[sampling]\nratio = 0.5\n"
    )
    s = load_settings(env={}, config_path=config)
    assert (s.filter_agent_ids, s.filter_agent_tags) == ((A1,), ("a", "b"))
    assert (s.filter_step_statuses, s.sample_ratio) == (("failed",), 0.5)
    flagged = load_settings(
        env={"LETTA_OTEL_SAMPLE_RATIO": "0.25"},
        config_path=config,
        overrides={"filter_agent_id": [A2], "sample_ratio": "5%"},
    )
    assert flagged.filter_agent_ids == (A2,)  # the flag replaces the whole list
    assert flagged.sample_ratio == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1.0),
        ("0", 0.0),
        ("0.5", 0.5),
        (" 1 / 3 ", 1 / 3),
        ("10%", 0.1),
        ("0.001", 0.001),
        ("1/1000", 0.001),
        ("0.05", 0.05),
    ],
)
def test_sample_ratio_accepts_one_in_n(raw: str, expected: float) -> None:
    assert load_settings(env={"LETTA_OTEL_SAMPLE_RATIO": raw}).sample_ratio == pytest.approx(
        expected, rel=1e-12
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("0.3", "nearest: 1/3 or 1/4"),
        ("33%", "nearest: 1/3 or 1/4"),
        ("0.7", "nearest: 1 or 1/2"),
        ("1.5", "must be between 0 and 1"),
        ("-0.1", "must be between 0 and 1"),
        ("half", "must be a ratio"),
        ("1/0", "must be a ratio"),
    ],
)
def test_sample_ratio_errors_explain_why(raw: str, fragment: str) -> None:
    problem = _problem({"LETTA_OTEL_SAMPLE_RATIO": raw})
    assert problem.startswith("LETTA_OTEL_SAMPLE_RATIO (--sample-ratio): ")
    assert fragment in problem
    assert "SampleRate" in problem


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            {"LETTA_OTEL_FILTER_AGENT_IDS": f"{A1},my-agent"},
            ["LETTA_OTEL_FILTER_AGENT_IDS (--filter-agent-id)", "'my-agent' is not a Letta agent"],
        ),
        (
            {"LETTA_OTEL_FILTER_STEP_STATUSES": "error"},
            ["--filter-step-status", "'error' is not a step status", "did you mean 'failed'?"],
        ),
        (
            {"LETTA_OTEL_FILTER_STEP_STATUSES": "pending"},
            ["'pending' is not a step status", "'incomplete' selects"],
        ),
        (
            {"LETTA_OTEL_FILTER_STEP_STATUSES": "sucess"},
            ["did you mean 'success'?"],
        ),
        (
            {"LETTA_OTEL_FILTER_MODEL_HANDLES": "gpt-4o-mini"},
            ["'gpt-4o-mini' is not a model handle", "models setting"],
        ),
    ],
)
def test_filter_errors_name_the_setting(env: dict[str, str], fragments: list[str]) -> None:
    problem = _problem(env)
    for fragment in fragments:
        assert fragment in problem


def test_toml_list_of_non_strings_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[filter]\nmodels = [1, 2]\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, config_path=config)
    (problem,) = info.value.problems
    assert problem.startswith(f"[filter] models in {config}")
    assert "must be a list of strings" in problem


def test_cli_exits_2_with_every_problem_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("LETTA_OTEL_SAMPLE_RATIO", "LETTA_OTEL_FILTER_AGENT_IDS", "LETTA_OTEL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LETTA_BASE_URL", "http://localhost:8283")  # self-hosted: no key needed
    code = cli.main(["run", "--once", "--sample-ratio", "0.3", "--filter-agent-id", "agent-nope"])
    assert code == 2
    err = capsys.readouterr().err
    assert "invalid configuration (2 problems)" in err
    assert "--sample-ratio (LETTA_OTEL_SAMPLE_RATIO)" in err
    assert "--filter-agent-id (LETTA_OTEL_FILTER_AGENT_IDS)" in err
    assert "Traceback" not in err
