"""Network values: URLs, OTLP endpoints, ``key=value`` header lists, listen addresses."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from letta_otel.config.values import (
    FrozenMap,
    InvalidValue,
    format_number,
    is_number,
    parse_bool,
    parse_required_str,
    require_text,
)

DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_HTTP_METRICS_ENDPOINT = "http://localhost:4318/v1/metrics"
DEFAULT_ENDPOINTS: Mapping[str, str] = {
    "grpc": DEFAULT_GRPC_ENDPOINT,
    "http/protobuf": DEFAULT_HTTP_ENDPOINT,
}
ENV_HEALTH_ADDR = "LETTA_OTEL_HEALTH_ADDR"
DEFAULT_HEALTH_ADDR = "127.0.0.1:9464"
LETTA_CLOUD_URL = "https://api.letta.com"
LETTA_CLOUD_HOST = "api.letta.com"

# ------------------------------------------------------------------------------ URLs


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (safe to log)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _check_url(url: str, example: str) -> None:
    if any(ch.isspace() for ch in url):
        raise InvalidValue("must not contain whitespace")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise InvalidValue(f"is not a valid URL, e.g. {example}") from exc
    if parts.scheme.lower() not in ("http", "https") or "://" not in url:
        raise InvalidValue(f"must be an http:// or https:// URL, e.g. {example}")
    if not parts.hostname:
        raise InvalidValue(f"has no host name, e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise InvalidValue(f"has an invalid port (must be 1-65535), e.g. {example}")


def parse_http_url(raw: object) -> str:
    """An http(s) URL; a trailing slash is removed."""
    example = "http://localhost:8283"
    url = require_text(raw, f"an http:// or https:// URL, e.g. {example}")
    _check_url(url, example)
    return url.rstrip("/")


_BARE_AUTHORITY = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d+")


def parse_endpoint_url(
    url: str, *, protocol: str, insecure: bool | None, base: bool, path: str = "/v1/traces"
) -> str:
    """Validate an OTLP endpoint and resolve it to the signal's URL (OTel exporter spec).

    A ``base`` endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``) gets the signal ``path``
    appended for http/protobuf; otherwise the URL is used verbatim.  gRPC also accepts a
    bare ``host:port`` (as the Python gRPC exporter does, where it means TLS unless
    insecure): it is normalised to ``https://host:port``, or ``http://host:port`` when
    insecure is true, so the scheme always states the transport security.
    """
    grpc = protocol == "grpc"
    if grpc:
        example = "http://localhost:4317"
    else:
        example = "http://localhost:4318" if base else f"http://localhost:4318{path}"
    if grpc and _BARE_AUTHORITY.fullmatch(url):
        url = f"{'http' if insecure else 'https'}://{url}"
    _check_url(url, example)
    if base and not grpc:
        return url.rstrip("/") + path
    return url


@dataclass(frozen=True, slots=True)
class EndpointInput:
    """An OTLP endpoint as configured, with what its resolution depends on."""

    url: object
    protocol: str
    insecure: bool | None
    base: bool  # OTEL_EXPORTER_OTLP_ENDPOINT and its flag/key: the signal path is appended
    path: str = "/v1/traces"

    def __str__(self) -> str:
        return str(self.url)


def parse_endpoint(raw: object) -> str | None:
    """The final URL of an :class:`EndpointInput` (None stays None: nothing to push to)."""
    if raw is None:
        return None
    if not isinstance(raw, EndpointInput):
        raw = EndpointInput(raw, "grpc", None, base=False)
    url = parse_required_str(raw.url)
    return parse_endpoint_url(
        url, protocol=raw.protocol, insecure=raw.insecure, base=raw.base, path=raw.path
    )


# --------------------------------------------------------------------- key=value lists

# RFC 9110 token characters (a valid HTTP header name)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _kv_entries(text: str) -> Iterator[tuple[int, str]]:
    for position, entry in enumerate(text.split(","), start=1):
        if entry.strip():
            yield position, entry


def parse_kv_list(raw: object, *, secret_values: bool) -> FrozenMap:
    """The OTel ``key1=value1,key2=value2`` list; values are percent-decoded.

    Also accepts a mapping (TOML table) whose values are used as given.  With
    ``secret_values`` no value (nor an unparseable entry) ever appears in a message.
    """
    if isinstance(raw, Mapping):
        return _kv_from_mapping(raw, secret_values=secret_values)
    text = require_text(raw, "a comma-separated list of key=value pairs")
    result: dict[str, str] = {}
    errors: list[str] = []
    for position, entry in _kv_entries(text):
        key, sep, value = entry.partition("=")
        key = key.strip()
        where = f"entry {position}" + (f" ('{key}')" if _TOKEN.fullmatch(key) else "")
        if not sep:
            shown = "" if secret_values else f" '{entry.strip()}'"
            errors.append(f"entry {position}{shown} is not key=value")
            continue
        if not key:
            errors.append(f"entry {position} has an empty key")
            continue
        try:
            decoded = unquote(value.strip(), errors="strict")
        except UnicodeDecodeError:
            errors.append(f"{where}: the value's percent-encoding is not valid UTF-8")
            continue
        problem = _kv_problem(key, decoded, header=secret_values)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        result[key.lower() if secret_values else key] = decoded
    if errors:
        raise InvalidValue(
            "; ".join(errors),
            show_value=not secret_values,
            hint="the format is key1=value1,key2=value2 with percent-encoded values "
            "(e.g. a space as %20)",
        )
    return FrozenMap(result)


def _kv_problem(key: str, value: str, *, header: bool) -> str | None:
    if header and not _TOKEN.fullmatch(key):
        return "the key is not a valid header name (letters, digits and -_.!#$&'*+^`|~)"
    if _CONTROL.search(value):
        return "the value contains a control character (e.g. a line break)"
    return None


def _scalar_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return format_number(float(value))
    return value if isinstance(value, str) else None


def _kv_from_mapping(raw: Mapping[object, object], *, secret_values: bool) -> FrozenMap:
    result: dict[str, str] = {}
    errors: list[str] = []
    for key, given in raw.items():
        name = str(key).strip()
        value = _scalar_text(given)
        if value is None:
            errors.append(f"the value for '{name}' must be a string")
            continue
        problem = _kv_problem(name, value, header=secret_values)
        if problem:
            errors.append(f"'{name}': {problem}")
            continue
        result[name.lower() if secret_values else name] = value
    if errors:
        raise InvalidValue("; ".join(errors), show_value=False)
    return FrozenMap(result)


def parse_header_list(raw: object) -> FrozenMap:
    """OTLP headers: keys trimmed and lower-cased, values percent-decoded, never shown."""
    return parse_kv_list(raw, secret_values=True)


def is_letta_cloud(base_url: str) -> bool:
    """Whether ``base_url`` is Letta Cloud, which needs an API key."""
    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return False
    return host is not None and host.lower().rstrip(".") == LETTA_CLOUD_HOST


def default_metrics_endpoint(protocol: str) -> str:
    return DEFAULT_GRPC_ENDPOINT if protocol == "grpc" else DEFAULT_HTTP_METRICS_ENDPOINT


def derive_metrics_endpoint(
    traces_endpoint: str | None, traces_protocol: str, metrics_protocol: str
) -> str | None:
    """The metrics URL beside a traces URL, or None when it cannot be told.

    No traces endpoint: the default for the metrics protocol. Same protocol: gRPC
    uses the same address, http/protobuf swaps a final ``/v1/traces`` for
    ``/v1/metrics``. A different protocol or another path cannot be guessed.
    """
    if traces_endpoint is None:
        return default_metrics_endpoint(metrics_protocol)
    if traces_protocol != metrics_protocol:
        return None
    if metrics_protocol == "grpc":
        return traces_endpoint
    base, sep, rest = traces_endpoint.rstrip("/").rpartition("/v1/traces")
    return f"{base}/v1/metrics" if sep and not rest else None


# ------------------------------------------------------------- metrics and health

METRICS_EXPORTERS = ("otlp", "prometheus", "none")


def parse_metrics_switch(raw: object) -> bool:
    """true/false, or an ``OTEL_METRICS_EXPORTER`` list: push over OTLP when it names otlp.

    ``prometheus`` alone turns the push off: letta-otel serves /metrics for scraping
    whenever the health address is on, whatever this says.
    """
    if isinstance(raw, bool):
        return raw
    text = raw.strip().lower() if isinstance(raw, str) else None
    if text in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return parse_bool(text)
    names = {n.strip() for n in (text or "").split(",") if n.strip()}
    unknown = sorted(names - set(METRICS_EXPORTERS))
    if not names or unknown or ("none" in names and len(names) > 1):
        hint = "console and logging are not supported" if unknown else None
        raise InvalidValue(
            "must be true or false, or an OTEL_METRICS_EXPORTER value: otlp, prometheus or none",
            hint=hint,
        )
    return "otlp" in names


def parse_health_addr(raw: object) -> str | None:
    """``host:port`` to listen on (``[::1]:9464`` for IPv6; port 0 = any free port); off = None."""
    example = "127.0.0.1:9464, 0.0.0.0:9464 or off"
    if not isinstance(raw, str):
        raise InvalidValue(f"must be a string, e.g. {example}")
    text = raw.strip()
    if text.lower() in ("", "off", "none", "false", "no", "disabled"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidValue(f"must be host:port or off, e.g. {example}")
    if not host:
        raise InvalidValue(
            "has no host; give one (0.0.0.0 listens on every interface, 127.0.0.1 only locally)"
        )
    if host.startswith("[") != host.endswith("]") or any(c.isspace() for c in host):
        raise InvalidValue(f"has an invalid host, e.g. {example}")
    return f"{host}:{int(port)}"


def split_health_addr(addr: str) -> tuple[str, int]:
    """``'[::1]:9464'`` -> ``('::1', 9464)``."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def parse_resource_attributes(raw: object) -> FrozenMap:
    """OTel resource attributes: like headers, but keys keep their case and values show."""
    return parse_kv_list(raw, secret_values=False)
