"""The example Collector gateway in deploy/ is wired the way the README says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

GATEWAY = Path(__file__).resolve().parents[1] / "deploy" / "otel-collector-gateway.yaml"


def _config() -> dict[str, Any]:
    config = yaml.safe_load(GATEWAY.read_text())
    assert isinstance(config, dict)
    return config


def test_pipeline_wiring() -> None:
    config = _config()
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"] == ["memory_limiter", "tail_sampling", "batch"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in config[kind], f"{kind} {name} is used but not defined"
    for name in config["service"]["extensions"]:
        assert name in config["extensions"]


def test_retry_queue_on_the_exporter() -> None:
    (exporter,) = _config()["exporters"].values()
    assert exporter["sending_queue"]["enabled"] is True
    assert exporter["retry_on_failure"]["enabled"] is True


def test_tail_sampling_keeps_every_failure_and_samples_the_rest() -> None:
    policies = _config()["processors"]["tail_sampling"]["policies"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for policy in policies:
        by_type.setdefault(policy["type"], []).append(policy)
    assert by_type["status_code"][0]["status_code"]["status_codes"] == ["ERROR"]
    kept = {
        (p["string_attribute"]["key"], tuple(p["string_attribute"]["values"]))
        for p in by_type["string_attribute"]
    }
    assert ("letta.step.status", ("failed",)) in kept
    assert 0 < by_type["probabilistic"][0]["probabilistic"]["sampling_percentage"] < 100
    # A policy list is OR-ed: an error trace is kept whatever the probabilistic draw.
    assert not any(p["type"] == "and" for p in policies)
