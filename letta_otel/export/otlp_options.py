"""How the OTLP settings become the SDK exporters' constructor arguments.

Shared by the span exporter and the metric exporter, so that both signals read
``*_COMPRESSION``, ``*_INSECURE`` and the TLS files the same way. Every value is
passed to the SDK explicitly: the SDK's own environment lookups never decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, TypedDict

import grpc
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

from letta_otel.config import Settings

_GRPC_COMPRESSION: Final = {
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}
_HTTP_COMPRESSION: Final = {
    "gzip": HttpCompression.Gzip,
    "deflate": HttpCompression.Deflate,
}


class GrpcExporterArgs(TypedDict):
    endpoint: str
    insecure: bool
    credentials: grpc.ChannelCredentials | None
    headers: dict[str, str]
    timeout: float
    compression: grpc.Compression


class HttpExporterArgs(TypedDict):
    endpoint: str
    certificate_file: str | None
    client_key_file: str | None
    client_certificate_file: str | None
    headers: dict[str, str]
    timeout: float
    compression: HttpCompression


def grpc_exporter_args(t: Settings) -> GrpcExporterArgs:
    """The OTLP/gRPC exporter's arguments for the transport ``t`` describes (the traces'
    settings; for metrics, :func:`letta_otel.metrics_otlp.metrics_transport`'s)."""
    insecure = grpc_insecure(t.otlp_insecure, t.otlp_traces_endpoint)
    return GrpcExporterArgs(
        endpoint=t.otlp_traces_endpoint,
        insecure=insecure,
        credentials=None
        if insecure
        else grpc_credentials(t.otlp_certificate, t.otlp_client_key, t.otlp_client_certificate),
        headers=dict(t.otlp_headers),
        timeout=t.otlp_timeout,
        compression=grpc_compression(t.otlp_compression),
    )


def http_exporter_args(t: Settings) -> HttpExporterArgs:
    """The OTLP/HTTP exporter's arguments for the transport ``t`` describes."""
    return HttpExporterArgs(
        endpoint=t.otlp_traces_endpoint,
        certificate_file=path_or_none(t.otlp_certificate),
        client_key_file=path_or_none(t.otlp_client_key),
        client_certificate_file=path_or_none(t.otlp_client_certificate),
        headers=dict(t.otlp_headers),
        timeout=t.otlp_timeout,
        compression=http_compression(t.otlp_compression),
    )


def grpc_compression(name: str) -> grpc.Compression:
    """The gRPC compression for a setting value (``none``, ``gzip``, ``deflate``)."""
    return _GRPC_COMPRESSION.get(name, grpc.Compression.NoCompression)


def http_compression(name: str) -> HttpCompression:
    """The OTLP/HTTP compression for a setting value (``none``, ``gzip``, ``deflate``)."""
    return _HTTP_COMPRESSION.get(name, HttpCompression.NoCompression)


def grpc_insecure(insecure: bool | None, endpoint: str) -> bool:
    """Plaintext gRPC? As set, else exactly when the endpoint is ``http://``."""
    return endpoint.startswith("http://") if insecure is None else insecure


def grpc_credentials(
    certificate: Path | None,
    client_key: Path | None,
    client_certificate: Path | None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials from PEM files, or None for the gRPC default (the system's CAs).

    ``certificate`` is the CA bundle to trust; ``client_key`` and ``client_certificate``
    are the client's own pair for mutual TLS (the settings require both or neither).
    """
    if certificate is None and client_key is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=_read(certificate),
        private_key=_read(client_key),
        certificate_chain=_read(client_certificate),
    )


def path_or_none(path: Path | None) -> str | None:
    """A file setting as the OTLP/HTTP exporter takes it (a string path)."""
    return None if path is None else str(path)


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()
