"""The OpenTelemetry rules that combine several inputs, applied before the fields are parsed.

The model runs :func:`resolve_inputs` on what it is given (by the sources, or directly as
``Settings(...)`` arguments), so both ways yield the same settings:

* **backend preset** — fills the settings nobody gave (precedence flag > env > file >
  preset > default); its auth headers merge with explicit headers (those win);
* **traces endpoint** — a base endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``[otlp]
  endpoint``, ``--otlp-endpoint``) gets ``/v1/traces`` for http/protobuf; a traces
  endpoint is used verbatim; none: the preset's (or the default) for the protocol; a
  bare gRPC ``host:port`` gets the scheme that ``insecure`` implies;
* **service name** — ``service.name`` in the resource attributes is lifted out; it names
  the service unless ``OTEL_SERVICE_NAME`` comes from the same or a higher source;
* **metrics transport** — each ``otlp_metrics_*`` setting nobody gave falls back to the
  signal-neutral ``OTEL_EXPORTER_OTLP_*`` value when that differs from what traces use
  (None = "as for traces"); the metrics endpoint is the neutral base endpoint plus
  ``/v1/metrics``, else derived from the traces endpoint (None when it cannot be told).

Values that fail to parse are left for the field validators, which report them; here
they count as not given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from letta_otel.config.network import EndpointInput, derive_metrics_endpoint
from letta_otel.config.presets import PRESETS
from letta_otel.config.sources import METRICS_TWINS, neutral_key
from letta_otel.config.spec import Given, SettingSpec
from letta_otel.config.values import FrozenMap, InvalidValue

__all__ = ["resolve_inputs"]

_SERVICE_NAME = "service.name"


class _Inputs:
    """The model's input, with lenient typed reads of single settings."""

    def __init__(self, data: Mapping[str, Any], specs: Mapping[str, SettingSpec]) -> None:
        self.specs = specs
        self.neutral = {
            twin: data[neutral_key(twin)] for _, twin in METRICS_TWINS if neutral_key(twin) in data
        }
        self.given = {k: v for k, v in data.items() if k in specs}
        self.data = dict(self.given)

    def peek(self, field: str, default: Any = None) -> Any:
        """The typed value of ``field`` as it stands, or ``default`` if unset or invalid."""
        value = self.data.get(field)
        if value is None:
            return default
        try:
            parsed = self.specs[field].read(value)
        except InvalidValue:
            return default
        return default if parsed is None else parsed

    def put(self, field: str, raw: object, like: object = None) -> None:
        """Set ``field`` to a derived ``raw`` value, keeping the origin of ``like``."""
        self.data[field] = like.carrying(raw) if isinstance(like, Given) else raw


def resolve_inputs(data: Mapping[str, Any], specs: Mapping[str, SettingSpec]) -> dict[str, Any]:
    """``data`` (field -> raw or :class:`Given`) with the rules above applied."""
    unknown = {k: v for k, v in data.items() if k not in specs and not k.endswith("@neutral")}
    inputs = _Inputs(data, specs)
    _apply_preset(inputs)
    _resolve_traces_endpoint(inputs)
    _lift_service_name(inputs)
    _resolve_metrics(inputs)
    return {**inputs.data, **unknown}  # unknown keys stay: the model reports them


def _apply_preset(inputs: _Inputs) -> None:
    preset = PRESETS[inputs.peek("backend", "otlp")]
    for field, value in preset.values.items():
        if inputs.data.get(field) is None:
            inputs.put(field, value)
    found: dict[str, str] = {}
    for header, source in preset.headers:
        value = inputs.peek(source)
        if value is not None:
            found[header] = value.get_secret_value() if isinstance(value, SecretStr) else value
    explicit = inputs.data.get("otlp_headers")
    headers = inputs.peek("otlp_headers", FrozenMap())
    if found and (explicit is None or headers):  # an invalid explicit value is reported as is
        inputs.put("otlp_headers", FrozenMap({**found, **headers}), like=explicit)


def _resolve_traces_endpoint(inputs: _Inputs) -> None:
    protocol = inputs.peek("otlp_protocol", "grpc")
    insecure = inputs.peek("otlp_insecure")
    given = inputs.data.get("otlp_traces_endpoint")
    if given is None:
        backend = inputs.peek("backend", "otlp")
        region = inputs.peek("honeycomb_region") if backend == "honeycomb" else None
        url: object = PRESETS[backend].endpoint(protocol, region)
        base = False
    else:
        url = given.raw if isinstance(given, Given) else given
        base = isinstance(given, Given) and given.index == 1
    inputs.put("otlp_traces_endpoint", EndpointInput(url, protocol, insecure, base), like=given)


def _lift_service_name(inputs: _Inputs) -> None:
    attributes = inputs.peek("resource_attributes")
    if attributes is None or _SERVICE_NAME not in attributes:
        return
    given = inputs.data["resource_attributes"]
    remaining = FrozenMap({k: v for k, v in attributes.items() if k != _SERVICE_NAME})
    inputs.put("resource_attributes", remaining, like=given)
    lifted = attributes[_SERVICE_NAME].strip()
    explicit = inputs.data.get("service_name")
    if lifted and (explicit is None or _rank(given) < _rank(explicit)):
        inputs.put("service_name", lifted, like=given)


def _rank(value: object) -> int:
    """Lower wins; a value passed to ``Settings`` directly outranks every source."""
    return value.rank if isinstance(value, Given) else -1


def _resolve_metrics(inputs: _Inputs) -> None:
    if inputs.peek("otlp_metrics", True):
        for field, twin in METRICS_TWINS[:-1]:
            neutral = inputs.neutral.get(twin)
            if (
                field in inputs.data
                or neutral is None
                or neutral.same_choice(inputs.given.get(twin))
            ):
                continue  # given itself, or traces took this very value: inherit it
            try:
                value = inputs.specs[field].read(neutral)
            except InvalidValue:
                inputs.put(field, neutral)  # reported under the name the user gave it
                continue
            if value != inputs.peek(twin):
                inputs.put(field, neutral)
    _resolve_metrics_endpoint(inputs)


def _resolve_metrics_endpoint(inputs: _Inputs) -> None:
    protocol = inputs.peek("otlp_metrics_protocol") or inputs.peek("otlp_protocol", "grpc")
    insecure = inputs.peek("otlp_metrics_insecure", inputs.peek("otlp_insecure"))
    explicit = inputs.data.get("otlp_metrics_endpoint")
    neutral = inputs.neutral.get("otlp_traces_endpoint")
    traces = inputs.given.get("otlp_traces_endpoint")
    if explicit is None and "otlp_metrics_endpoint" in inputs.data:
        return  # None given directly: nowhere to push
    if explicit is not None:
        url = explicit.raw if isinstance(explicit, Given) else explicit
        endpoint = EndpointInput(url, protocol, insecure, base=False, path="/v1/metrics")
        inputs.put("otlp_metrics_endpoint", endpoint, like=explicit)
        return
    traces_url = inputs.peek("otlp_traces_endpoint")
    if inputs.peek("otlp_metrics", True) and neutral is not None:
        if neutral.same_choice(traces) and traces_url is None:
            return  # the shared base endpoint is invalid: reported for traces already
        endpoint = EndpointInput(neutral.raw, protocol, insecure, base=True, path="/v1/metrics")
        inputs.put("otlp_metrics_endpoint", endpoint, like=neutral)
        return
    # Beside the traces URL as resolved (given, or the backend preset's: Honeycomb's
    # metrics go to Honeycomb, not to the local default). None: no metrics URL can be
    # told from this traces URL; the daemon says so at start and does not push (failing
    # a working traces-only setup on upgrade would be worse).
    traces_protocol = inputs.peek("otlp_protocol", "grpc")
    derived = derive_metrics_endpoint(traces_url, traces_protocol, protocol)
    inputs.data["otlp_metrics_endpoint"] = derived
