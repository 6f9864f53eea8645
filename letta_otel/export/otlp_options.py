"""How the OTLP settings become the SDK exporters' constructor arguments.

Shared by the span exporter and the metric exporter, so that both signals read
``*_COMPRESSION``, ``*_INSECURE`` and the TLS files the same way. Every value is
passed to the SDK explicitly: the SDK's own environment lookups never decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import grpc
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression

_GRPC_COMPRESSION: Final = {
    "gzip": grpc.Compression.Gzip,
    "deflate": grpc.Compression.Deflate,
}
_HTTP_COMPRESSION: Final = {
    "gzip": HttpCompression.Gzip,
    "deflate": HttpCompression.Deflate,
}


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
