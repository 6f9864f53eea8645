"""Settings of issue 7: capture mode, redaction patterns and attribute budgets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from letta_otel import cli
from letta_otel.assemble import build_content_policy, build_context
from letta_otel.config import Settings
from letta_otel.mapping.capture import CaptureMode
from tests.test_settings import load, one_problem, problems_of

CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
PATTERNS = "LETTA_OTEL_REDACT_PATTERNS"


def test_defaults_capture_nothing_with_backend_friendly_budgets() -> None:
    s = load()
    assert s.capture_message_content == "NO_CONTENT"
    assert s.redact_patterns == ()
    assert (s.max_attribute_bytes, s.max_span_bytes, s.max_trace_bytes, s.max_attributes) == (
        16 * 1024,
        256 * 1024,
        4_000_000,
        128,
    )
    policy = build_content_policy(s)
    assert policy.mode is CaptureMode.NO_CONTENT and not policy.capture
    assert build_context(s).content == policy


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("span_only", "SPAN_ONLY"),
        (" EVENT_ONLY ", "EVENT_ONLY"),
        ("Span_And_Event", "SPAN_AND_EVENT"),
        ("false", "NO_CONTENT"),
    ],
)
def test_capture_mode_from_env(raw: str, mode: str) -> None:
    assert load({CAPTURE: raw}).capture_message_content == mode


def test_capture_mode_true_is_refused_with_a_hint() -> None:
    problem = one_problem({CAPTURE: "true"})
    assert problem.startswith(CAPTURE)
    assert "use SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT" in problem


def test_capture_mode_from_flag_and_file(tmp_path: Path) -> None:
    assert load(capture_message_content="SPAN_ONLY").capture_message_content == "SPAN_ONLY"
    toml = '[content]\ncapture = "EVENT_ONLY"\n'
    assert load({}, toml, tmp_path).capture_message_content == "EVENT_ONLY"
    # flag > env > file
    s = load({CAPTURE: "SPAN_AND_EVENT"}, toml, tmp_path, capture_message_content="SPAN_ONLY")
    assert s.capture_message_content == "SPAN_ONLY"


@pytest.mark.parametrize(
    "raw",
    [
        "ACCT-\\d{8}\n(?i)customer id: \\w+\n",
        '["ACCT-\\\\d{8}", "(?i)customer id: \\\\w+"]',
        "  ACCT-\\d{8}  \n\n(?i)customer id: \\w+",
    ],
    ids=["lines", "json-array", "blank-lines-and-indent"],
)
def test_redact_patterns_from_env(raw: str) -> None:
    assert load({PATTERNS: raw}).redact_patterns == ("ACCT-\\d{8}", "(?i)customer id: \\w+")


def test_a_single_pattern_that_looks_like_json_is_still_a_pattern() -> None:
    assert load({PATTERNS: "[0-9]{6}"}).redact_patterns == ("[0-9]{6}",)


def test_redact_patterns_from_toml_array(tmp_path: Path) -> None:
    toml = "[content]\nredact_patterns = ['ACCT-\\d{8}', 'x+y']\n"
    assert load({}, toml, tmp_path).redact_patterns == ("ACCT-\\d{8}", "x+y")


def test_bad_pattern_is_named_by_index_and_never_echoed() -> None:
    problem = one_problem({PATTERNS: "fine\nsk-live-SECRET-(oops"})
    assert problem.startswith(f"{PATTERNS} (--redact-patterns): pattern #2")
    assert "not a valid regular expression" in problem
    assert "SECRET" not in problem and "fine" not in problem


def test_pattern_matching_empty_text_is_refused() -> None:
    problem = one_problem({PATTERNS: "a*"})
    assert "pattern #1" in problem and "empty string" in problem


def test_toml_patterns_must_be_strings(tmp_path: Path) -> None:
    problem = one_problem({}, "[content]\nredact_patterns = ['ok', 5]\n", tmp_path)
    assert "redact_patterns" in problem and "non-empty strings" in problem


def test_patterns_are_not_shown_in_the_startup_line() -> None:
    s = load({PATTERNS: "ACCT-SECRET-\\d+"})
    assert s.describe()["redact_patterns"] == "1 pattern(s), not shown"
    assert "ACCT-SECRET" not in " ".join(s.describe().values())


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "2048"}, "max_attribute_bytes", 2048),
        ({"LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "64KiB"}, "max_attribute_bytes", 65536),
        ({"LETTA_OTEL_MAX_SPAN_BYTES": "1MiB"}, "max_span_bytes", 1024 * 1024),
        ({"LETTA_OTEL_MAX_TRACE_BYTES": "5MB"}, "max_trace_bytes", 5_000_000),
        ({"LETTA_OTEL_MAX_ATTRIBUTES": "64"}, "max_attributes", 64),
    ],
)
def test_budgets_from_env(env: dict[str, str], field: str, value: int) -> None:
    assert getattr(load(env), field) == value


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "100"}, "at least 256"),
        ({"LETTA_OTEL_MAX_SPAN_BYTES": "4KiB"}, "at least 8KiB"),
        ({"LETTA_OTEL_MAX_TRACE_BYTES": "10kB"}, "at least 64KiB"),
        ({"LETTA_OTEL_MAX_ATTRIBUTES": "2"}, "from 8 to 100000"),
        ({"LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "2k"}, "ambiguous unit"),
    ],
)
def test_bad_budgets_name_the_setting(env: dict[str, str], fragment: str) -> None:
    (name,) = env
    problem = one_problem(env)
    assert problem.startswith(name) and fragment in problem


def test_budgets_must_nest() -> None:
    problems = problems_of(
        {"LETTA_OTEL_MAX_ATTRIBUTE_BYTES": "64KiB", "LETTA_OTEL_MAX_SPAN_BYTES": "32KiB"}
    )
    assert problems == [
        "LETTA_OTEL_MAX_ATTRIBUTE_BYTES (--max-attribute-bytes): 64KiB is more than "
        "LETTA_OTEL_MAX_SPAN_BYTES (--max-span-bytes) (32KiB); lower the first or raise the second"
    ]
    problem = one_problem({"LETTA_OTEL_MAX_SPAN_BYTES": "8MiB"})
    assert "LETTA_OTEL_MAX_TRACE_BYTES" in problem


def test_policy_from_settings() -> None:
    s = Settings(
        capture_message_content="SPAN_AND_EVENT",
        redact_patterns=("ACCT-\\d+",),
        max_attribute_bytes=2048,
        max_span_bytes=65536,
        max_attributes=64,
    )
    policy = build_content_policy(s)
    assert policy.on_spans and policy.on_events
    assert policy.limits.max_attribute_bytes == 2048
    assert policy.limits.max_span_bytes == 65536
    assert policy.limits.max_attributes == 64
    assert policy.redactor.text("ACCT-123 ok") == ("[REDACTED] ok", 1)


def test_cli_exits_2_on_a_bad_pattern(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PATTERNS, "(unclosed-secret-value")
    assert cli.main(["run", "--once"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"LETTA_OTEL_REDACT_PATTERNS .*pattern #1", err)
    assert "unclosed-secret-value" not in err
