"""The GenAI names vendored in ``letta_otel.mapping.semconv`` against the v1.41.1 registry.

The registry, span, metric and event definitions of the GenAI semantic conventions
v1.41.1 are kept in ``tests/fixtures/semconv-genai-v1.41.1`` (copied unchanged from the
upstream tag). Every ``gen_ai.*`` constant of the module must be a registered,
non-deprecated attribute, metric or event; every value constant a well-known member of
its attribute; metric units, instruments and bucket boundaries as the conventions give
them. A name renamed or deprecated upstream fails here instead of shipping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from letta_otel.mapping import metrics as mm
from letta_otel.mapping import semconv as sc
from letta_otel.mapping.records import RunRecord
from tests.samples import SCENARIOS, load_scenario

REGISTRY_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "semconv-genai-v1.41.1"

# Constant name prefixes → the attribute whose well-known values they are.
VALUE_CONSTANTS = {
    "OP_": sc.OPERATION_NAME,
    "TOKEN_": sc.TOKEN_TYPE,
    "PROVIDER_": sc.PROVIDER_NAME,
}
# Constants with those prefixes that are not values of that attribute.
NOT_VALUES = {"PROVIDER_NAME", "TOKEN_TYPE", "TOKEN_USAGE_BUCKETS"}


@cache
def _groups(name: str) -> tuple[dict[str, Any], ...]:
    data = yaml.safe_load((REGISTRY_DIR / name).read_text(encoding="utf-8"))
    return tuple(data["groups"])


def _attribute_defs(name: str) -> dict[str, dict[str, Any]]:
    return {
        attr["id"]: attr
        for group in _groups(name)
        for attr in group.get("attributes", ())
        if "id" in attr
    }


def _registry() -> dict[str, dict[str, Any]]:
    return _attribute_defs("model-registry.yaml")


def _deprecated_attributes() -> set[str]:
    return set(_attribute_defs("model-registry-deprecated.yaml"))


def _metrics() -> dict[str, dict[str, Any]]:
    return {g["metric_name"]: g for g in _groups("model-metrics.yaml") if g["type"] == "metric"}


def _events(name: str) -> dict[str, dict[str, Any]]:
    return {g["name"]: g for g in _groups(name) if g["type"] == "event"}


def _referenced() -> set[str]:
    """Attributes that some span, metric or event definition uses."""
    return {
        attr["ref"]
        for name in ("model-spans.yaml", "model-metrics.yaml", "model-events.yaml")
        for group in _groups(name)
        for attr in group.get("attributes", ())
        if "ref" in attr
    }


def _well_known(attribute: str) -> set[str]:
    """The values of ``attribute``'s non-deprecated enum members."""
    members = _registry()[attribute]["type"]["members"]
    return {m["value"] for m in members if "deprecated" not in m}


def _vendored() -> Iterator[tuple[str, Any]]:
    for name, value in vars(sc).items():
        if name.isupper() and not name.startswith("_"):
            yield name, value


def _genai_strings() -> dict[str, str]:
    return {
        name: value
        for name, value in _vendored()
        if isinstance(value, str) and value.startswith("gen_ai.")
    }


def test_the_fixtures_are_the_ones_named() -> None:
    assert sc.SEMCONV_VERSION == "1.41.1"
    assert REGISTRY_DIR.name == f"semconv-genai-v{sc.SEMCONV_VERSION}"
    assert _registry(), "no attributes read from the registry"


def test_every_gen_ai_constant_is_a_registered_attribute_metric_or_event() -> None:
    names = _genai_strings()
    assert len(names) >= 30  # the module's GenAI names were found
    known = set(_registry()) | set(_metrics()) | set(_events("model-events.yaml"))
    unknown = {k: v for k, v in names.items() if v not in known}
    assert not unknown, f"not in the v1.41.1 registry: {unknown}"


def test_no_vendored_attribute_is_deprecated() -> None:
    attributes = {k: v for k, v in _genai_strings().items() if v in _registry()}
    registry, deprecated = _registry(), _deprecated_attributes()
    for name, value in attributes.items():
        assert "deprecated" not in registry[value], (name, value)
        assert value not in deprecated, (name, value)
        assert registry[value].get("stability") != "deprecated", (name, value)


def test_every_vendored_attribute_is_used_by_a_span_metric_or_event_definition() -> None:
    attributes = {v for v in _genai_strings().values() if v in _registry()}
    assert attributes - _referenced() == set()


@pytest.mark.parametrize(("prefix", "attribute"), VALUE_CONSTANTS.items())
def test_value_constants_are_well_known_members(prefix: str, attribute: str) -> None:
    values = {
        name: value
        for name, value in _vendored()
        if name.startswith(prefix) and name not in NOT_VALUES and isinstance(value, str)
    }
    assert values, prefix
    well_known = _well_known(attribute)
    assert {n: v for n, v in values.items() if v not in well_known} == {}


def test_the_operations_and_token_types_used_are_all_there() -> None:
    assert {sc.OP_CHAT, sc.OP_INVOKE_AGENT, sc.OP_EXECUTE_TOOL} == {
        "chat",
        "invoke_agent",
        "execute_tool",
    }
    assert {sc.TOKEN_INPUT, sc.TOKEN_OUTPUT} == _well_known(sc.TOKEN_TYPE)


def test_letta_providers_map_to_well_known_provider_names() -> None:
    """Every entry of the mapping table is a member; other names pass through as they
    are (the conventions allow custom values), and Letta itself is one of those."""
    well_known = _well_known(sc.PROVIDER_NAME)
    for letta_name in (
        "openai",
        "anthropic",
        "azure",
        "bedrock",
        "google_ai",
        "google_vertex",
        "mistral",
        "xai",
        "groq",
        "deepseek",
    ):
        assert sc.genai_provider_name(letta_name) in well_known, letta_name
    assert sc.genai_provider_name("together") == "together"
    assert sc.LETTA_AGENT_PROVIDER not in well_known


@pytest.mark.parametrize(
    ("name", "unit", "instrument"),
    [
        (sc.METRIC_TOKEN_USAGE, sc.METRIC_TOKEN_USAGE_UNIT, sc.METRIC_TOKEN_USAGE_INSTRUMENT),
        (
            sc.METRIC_OPERATION_DURATION,
            sc.METRIC_OPERATION_DURATION_UNIT,
            sc.METRIC_OPERATION_DURATION_INSTRUMENT,
        ),
    ],
)
def test_metric_names_units_and_instruments(name: str, unit: str, instrument: str) -> None:
    metric = _metrics()[name]
    assert (metric["unit"], metric["instrument"]) == (unit, instrument)
    assert metric.get("stability") != "deprecated" and "deprecated" not in metric


def _boundaries(metric: str) -> tuple[float, ...]:
    """The ExplicitBucketBoundaries gen-ai-metrics.md gives in the section of ``metric``."""
    doc = (REGISTRY_DIR / "gen-ai-metrics.md").read_text(encoding="utf-8")
    start = doc.index(f"### Metric: `{metric}`")
    end = doc.find("### Metric: `", start + 1)
    section = doc[start : end if end > 0 else len(doc)]
    found = re.findall(r"ExplicitBucketBoundaries\]\s+of\s+\[([^\]]*)\]", section)
    assert len(found) == 1, f"{metric}: {len(found)} boundary lists"
    return tuple(float(x) for x in found[0].split(","))


@pytest.mark.parametrize(
    ("metric", "buckets"),
    [
        (sc.METRIC_TOKEN_USAGE, sc.TOKEN_USAGE_BUCKETS),
        (sc.METRIC_OPERATION_DURATION, sc.OPERATION_DURATION_BUCKETS),
    ],
)
def test_histogram_bucket_boundaries(metric: str, buckets: tuple[float, ...]) -> None:
    assert tuple(float(b) for b in buckets) == _boundaries(metric)


def test_the_metrics_module_takes_its_genai_names_from_semconv() -> None:
    assert (mm.TOKEN_USAGE, mm.OPERATION_DURATION) == (
        sc.METRIC_TOKEN_USAGE,
        sc.METRIC_OPERATION_DURATION,
    )
    assert (mm.TOKEN_BUCKETS, mm.DURATION_BUCKETS) == (
        sc.TOKEN_USAGE_BUCKETS,
        sc.OPERATION_DURATION_BUCKETS,
    )
    assert (mm.TOKEN_TYPE, mm.TOKEN_INPUT, mm.TOKEN_OUTPUT) == (
        sc.TOKEN_TYPE,
        sc.TOKEN_INPUT,
        sc.TOKEN_OUTPUT,
    )


def _allowed_metric_attributes(metric: str) -> set[str]:
    """The attributes of a metric definition, with those of the groups it extends."""
    groups = {g["id"]: g for g in _groups("model-metrics.yaml")}
    allowed: set[str] = set()
    group: dict[str, Any] | None = _metrics()[metric]
    while group is not None:
        allowed |= {a["ref"] for a in group.get("attributes", ()) if "ref" in a}
        parent = group.get("extends")
        group = groups.get(parent) if parent else None
    return allowed


def test_genai_measurements_carry_only_the_attributes_their_metric_defines() -> None:
    """On the real samples: what ``mapping.metrics`` records on the two GenAI
    histograms (error.type included, on failed calls) is what the conventions list."""
    seen: dict[str, set[str]] = {}
    for name in SCENARIOS:
        scenario = load_scenario(name)
        measurements = [m for r in scenario.steps for m in mm.step_measurements(r)]
        measurements += mm.run_measurements(RunRecord(scenario.run), ("letta.example", 443))
        for m in measurements:
            seen.setdefault(m.instrument, set()).update(m.attributes)
    for metric in (sc.METRIC_TOKEN_USAGE, sc.METRIC_OPERATION_DURATION):
        assert seen.get(metric), metric
        assert seen[metric] - _allowed_metric_attributes(metric) == set(), metric


def test_the_inference_details_event_name() -> None:
    events = _events("model-events.yaml")
    event = events[sc.INFERENCE_DETAILS_EVENT]
    assert event["id"] == f"event.{sc.INFERENCE_DETAILS_EVENT}"
    assert "deprecated" not in event
    assert sc.INFERENCE_DETAILS_EVENT not in _events("model-events-deprecated.yaml")
