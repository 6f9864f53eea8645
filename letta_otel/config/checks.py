"""Settings that are fine alone but not together: the model's cross-field rules.

:func:`cross_field_problems` runs on a model whose fields are all valid; each problem
names the setting to change through ``name(field)``, which the loader answers with the
env var, flag or TOML key the user set (``Settings(...)`` built directly: the field).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from letta_otel.config.network import redact_url
from letta_otel.config.presets import PRESETS
from letta_otel.config.units import format_bytes
from letta_otel.config.values import format_number

if TYPE_CHECKING:
    from letta_otel.config.settings import Settings

__all__ = ["Namer", "Problem", "Problems", "cross_field_problems"]

Namer = Callable[[str], str]


@dataclass(frozen=True)
class Problem:
    """One problem: ``text(name)`` says it, naming settings with ``name``."""

    field: str
    text: Callable[[Namer], str]


class Problems(ValueError):
    """Every cross-field problem of one model, raised together from its validator."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "; ".join(problem.text(str) for problem in self.problems)


def cross_field_problems(s: Settings) -> Iterator[Problem]:
    yield from _preset_problems(s)
    yield from _traces_problems(s)
    yield from _budget_problems(s)
    if s.letta_deadline < s.letta_timeout:
        yield Problem(
            "letta_deadline",
            lambda n: (
                f"{n('letta_deadline')}: {format_number(s.letta_deadline)}s is shorter "
                f"than {n('letta_timeout')} ({format_number(s.letta_timeout)}s), so a request "
                "could never use its whole timeout; raise the deadline or lower the timeout"
            ),
        )
    yield from _metrics_problems(s)


def _preset_problems(s: Settings) -> Iterator[Problem]:
    preset = PRESETS[s.backend]
    for other in PRESETS.values():
        for option, harmless in other.options.items():
            if other is not preset and getattr(s, option) not in (None, harmless):
                yield _unused_option(option, other.name, s.backend)
    for header, source in preset.headers:
        if header in preset.required and header not in s.otlp_headers:
            yield _required_header(source, header, preset.required[header], s.backend)


def _unused_option(option: str, owner: str, backend: str) -> Problem:
    return Problem(
        option,
        lambda n: (
            f"{n(option)}: only used with the {owner} backend, but {n('backend')} is "
            f"'{backend}'; set it to '{owner}' or unset this setting"
        ),
    )


def _required_header(field: str, header: str, what: str, backend: str) -> Problem:
    return Problem(
        field,
        lambda n: (
            f"{n(field)}: required by the {backend} backend ({n('backend')}); it is "
            f"sent as the {header} header. Set it to your {what}, or put {header} in "
            "OTEL_EXPORTER_OTLP_HEADERS"
        ),
    )


def _traces_problems(s: Settings) -> Iterator[Problem]:
    if s.otlp_compression == "deflate" and s.otlp_protocol == "grpc":
        yield Problem(
            "otlp_compression",
            lambda n: (
                f"{n('otlp_compression')}: 'deflate' only works with the http/protobuf "
                f"protocol; use gzip, or set {n('otlp_protocol')} to http/protobuf"
            ),
        )
    if (s.otlp_client_key is None) != (s.otlp_client_certificate is None):
        missing = "otlp_client_key" if s.otlp_client_key is None else "otlp_client_certificate"
        yield Problem(
            missing,
            lambda n: (
                f"{n(missing)}: mTLS needs both the client key and the client "
                "certificate; set this one too, or unset the other"
            ),
        )
    endpoint: str = s.otlp_traces_endpoint
    plaintext = endpoint.lower().startswith("http://")
    shown = redact_url(endpoint)
    insecure = s.otlp_insecure
    if s.otlp_protocol == "grpc" and insecure is not None and insecure != plaintext:
        wanted = "http://" if insecure else "https://"
        yield Problem(
            "otlp_insecure",
            lambda n: (
                f"{n('otlp_insecure')}: is {str(insecure).lower()} but the endpoint "
                f"{shown} says otherwise; use a {wanted} endpoint, or unset insecure and let the "
                "scheme decide"
            ),
        )
    tls_files = ("otlp_certificate", "otlp_client_key", "otlp_client_certificate")
    given = [field for field in tls_files if getattr(s, field) is not None]
    if plaintext and given:
        yield Problem(
            given[0],
            lambda n: (
                f"{n(given[0])}: TLS files are set but the endpoint {shown} is "
                "plaintext (http://); use an https:// endpoint, or drop the TLS files"
            ),
        )


def _budget_problems(s: Settings) -> Iterator[Problem]:
    """Nested budgets must nest: an attribute fits in a span, a span in a trace (issue 7)."""
    pairs = (("max_attribute_bytes", "max_span_bytes"), ("max_span_bytes", "max_trace_bytes"))
    for inner, outer in pairs:
        small, big = getattr(s, inner), getattr(s, outer)
        if small > big:
            yield _budget_problem(inner, outer, small, big)


def _budget_problem(inner: str, outer: str, small: int, big: int) -> Problem:
    return Problem(
        inner,
        lambda n: (
            f"{n(inner)}: {format_bytes(small)} is more than {n(outer)} "
            f"({format_bytes(big)}); lower the first or raise the second"
        ),
    )


_METRICS_TRANSPORT = (
    "otlp_metrics_protocol",
    "otlp_metrics_headers",
    "otlp_metrics_compression",
    "otlp_metrics_timeout",
    "otlp_metrics_insecure",
    "otlp_metrics_certificate",
    "otlp_metrics_client_key",
    "otlp_metrics_client_certificate",
)


def _as_for_traces(s: Settings, field: str) -> Any:
    own = getattr(s, field)
    return own if own is not None else getattr(s, field.replace("otlp_metrics_", "otlp_"))


def _metrics_problems(s: Settings) -> Iterator[Problem]:
    """The traces transport checks, for a metrics transport that differs from it."""
    endpoint: str | None = s.otlp_metrics_endpoint
    if not s.otlp_metrics or endpoint is None:
        return
    own = any(getattr(s, field) is not None for field in _METRICS_TRANSPORT)
    if not own and endpoint.split(":", 1)[0] == s.otlp_traces_endpoint.split(":", 1)[0]:
        return  # same transport as traces: already checked there
    protocol = _as_for_traces(s, "otlp_metrics_protocol")
    where = "the OTLP metrics transport (OTEL_EXPORTER_OTLP_METRICS_*)"

    def problem(field: str, text: str) -> Problem:
        return Problem(field, lambda _: f"{where}: {text}")

    if _as_for_traces(s, "otlp_metrics_compression") == "deflate" and protocol == "grpc":
        yield problem(
            "otlp_metrics_compression", "'deflate' only works with http/protobuf; use gzip"
        )
    plaintext = endpoint.lower().startswith("http://")
    insecure = _as_for_traces(s, "otlp_metrics_insecure")
    shown = redact_url(endpoint)
    if protocol == "grpc" and insecure is not None and insecure != plaintext:
        yield problem(
            "otlp_metrics_insecure",
            f"insecure is {str(insecure).lower()} but the metrics endpoint {shown} says "
            "otherwise; make them agree",
        )
    files = (
        "otlp_metrics_certificate",
        "otlp_metrics_client_key",
        "otlp_metrics_client_certificate",
    )
    given = [f for f in files if _as_for_traces(s, f) is not None]
    if plaintext and given:
        yield problem(
            given[0], f"TLS files are set but the metrics endpoint {shown} is plaintext (http://)"
        )
    if ("otlp_metrics_client_key" in given) != ("otlp_metrics_client_certificate" in given):
        yield problem(
            "otlp_metrics_client_key", "mTLS needs both the client key and the client certificate"
        )
