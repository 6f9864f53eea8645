"""The OTLP exporter options: compression names, plaintext or TLS, PEM files.

The TLS case runs a real gRPC metrics service on 127.0.0.1 with a throw-away
certificate: the metric exporter built from the settings trusts it only when the
certificate file is configured.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from letta_otel.config import load_settings
from letta_otel.export.otlp_options import (
    grpc_compression,
    grpc_credentials,
    grpc_insecure,
    http_compression,
    path_or_none,
)
from letta_otel.metrics_otlp import build_metric_exporter
from letta_otel.telemetry import Telemetry
from tests.system_tools import skip_without


def test_compression_names() -> None:
    assert grpc_compression("gzip") is grpc.Compression.Gzip
    assert grpc_compression("deflate") is grpc.Compression.Deflate
    assert grpc_compression("none") is grpc.Compression.NoCompression
    assert http_compression("gzip") is HttpCompression.Gzip
    assert http_compression("deflate") is HttpCompression.Deflate
    assert http_compression("none") is HttpCompression.NoCompression


def test_plaintext_as_set_else_by_scheme() -> None:
    assert grpc_insecure(None, "http://collector:4317") is True
    assert grpc_insecure(None, "https://collector:4317") is False
    assert grpc_insecure(True, "https://collector:4317") is True
    assert grpc_insecure(False, "http://collector:4317") is False


def test_files(tmp_path: Path) -> None:
    assert grpc_credentials(None, None, None) is None  # gRPC's default trust store
    assert path_or_none(None) is None
    assert path_or_none(tmp_path / "ca.pem") == str(tmp_path / "ca.pem")
    with pytest.raises(FileNotFoundError):
        grpc_credentials(tmp_path / "missing.pem", None, None)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    skip_without("openssl")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.received = 0

    def Export(self, request: Any, context: Any) -> Any:
        self.received += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def tls_service(certificate: tuple[Path, Path]) -> Iterator[tuple[int, _Metrics]]:
    cert, key = certificate
    servicer = _Metrics()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server)
    port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    )
    server.start()
    yield port, servicer
    server.stop(0)


def _push(env: dict[str, str]) -> MetricExportResult:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(
        resource=Resource({}), poll_interval=5, ready_intervals=3, readers=[reader]
    )
    telemetry.exported(True, 1, 0)
    data = reader.get_metrics_data()
    telemetry.shutdown()
    assert data is not None
    exporter = build_metric_exporter(load_settings(env=env))
    try:
        return exporter.export(data)
    finally:
        exporter.shutdown()


def test_grpc_metrics_over_tls_trust_the_configured_certificate(
    tls_service: tuple[int, _Metrics], certificate: tuple[Path, Path]
) -> None:
    port, servicer = tls_service
    cert, _ = certificate
    env = {
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"https://localhost:{port}",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "2000",
    }
    assert _push({**env, "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": str(cert)}).name == "SUCCESS"
    assert servicer.received == 1
    assert _push(env).name == "FAILURE"  # the system's CAs do not know the throw-away one
    assert servicer.received == 1
