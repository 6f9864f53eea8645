"""The OTLP sink: hand-built spans in, a definite yes or no out.

The SDK's ``BatchSpanProcessor`` swallows the export result, so the daemon calls
``SpanExporter.export()`` itself and only a ``SUCCESS`` lets the checkpoint move.
Each wrapper here does one thing; the daemon composes them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from letta_otel.export.encode import encode_request
from letta_otel.settings import Settings

log = logging.getLogger(__name__)


class SpanSink(Protocol):
    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """True only when the backend confirmed every span."""
        ...

    @property
    def takes_encoded(self) -> bool:
        """Whether ``export`` sends the entries of ``encode.EncodedSpans`` as they are
        (then the caller may encode spans early, e.g. to size batches exactly)."""
        ...

    def shutdown(self) -> None: ...


@dataclass
class ExporterSink:
    """Adapts an SDK ``SpanExporter`` to ``SpanSink``: SUCCESS → True, all else False."""

    exporter: SpanExporter
    description: str = "OTLP"

    def __post_init__(self) -> None:
        # SDK exporters are not documented as thread-safe; the daemon exports from a
        # worker thread, so serialise calls.
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        with self._lock:
            try:
                result = self.exporter.export(spans)
            except Exception as exc:  # an exporter bug must not kill the daemon
                log.exception(
                    "exporting %d spans to %s raised %s",
                    len(spans),
                    self.description,
                    type(exc).__name__,
                )
                return False
        return result is SpanExportResult.SUCCESS

    @property
    def takes_encoded(self) -> bool:
        return isinstance(self.exporter, FastGrpcSpanExporter)

    def shutdown(self) -> None:
        self.exporter.shutdown()


# The SDK's gRPC exporter retries inside one deadline, so its last attempt may get only
# milliseconds: a backend that takes it but answers late reads as a failure and the
# batch is sent again. The daemon retries whole cycles with backoff instead, so each
# attempt gets the full timeout. (An empty list means "the defaults" to the SDK, hence
# a code that never comes back as an error.)
_NO_SDK_RETRIES = (grpc.StatusCode.OK,)
_TRACE_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _BytesTraceStub:
    """``TraceServiceStub`` whose requests are already-encoded protobuf bytes."""

    def __init__(self, channel: grpc.Channel) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
            ExportTraceServiceResponse,
        )

        self.Export = channel.unary_unary(
            _TRACE_EXPORT_METHOD,
            request_serializer=None,  # bytes pass through
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class FastGrpcSpanExporter(GrpcSpanExporter):
    """The SDK's gRPC span exporter with the request encoded by ``encode.encode_request``.

    Sending, retries (with RetryInfo), reconnection, headers, compression and TLS stay
    the SDK's; only the per-span protobuf object building (a quarter of the bridge's
    CPU) is replaced by writing the identical wire bytes directly; spans given as
    ``EncodedSpans`` are not encoded again.
    """

    def _initialize_channel_and_stub(self) -> None:
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        self._client = _BytesTraceStub(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        return encode_request(data)


def _grpc_compression(name: str) -> grpc.Compression:
    return {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}.get(
        name, grpc.Compression.NoCompression
    )


def _http_compression(name: str) -> HttpCompression:
    return {"gzip": HttpCompression.Gzip, "deflate": HttpCompression.Deflate}.get(
        name, HttpCompression.NoCompression
    )


def _grpc_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    if settings.otlp_certificate is None and settings.otlp_client_key is None:
        return None

    def read(path: object) -> bytes | None:
        return None if path is None else open(str(path), "rb").read()

    return grpc.ssl_channel_credentials(
        root_certificates=read(settings.otlp_certificate),
        private_key=read(settings.otlp_client_key),
        certificate_chain=read(settings.otlp_client_certificate),
    )


def build_exporter(settings: Settings) -> SpanExporter:
    """The SDK exporter for the configured protocol, with every setting passed explicitly."""
    headers = dict(settings.otlp_headers)
    if settings.otlp_protocol == "grpc":
        insecure = settings.otlp_insecure
        if insecure is None:
            insecure = settings.otlp_traces_endpoint.startswith("http://")
        return FastGrpcSpanExporter(
            endpoint=settings.otlp_traces_endpoint,
            insecure=insecure,
            credentials=None if insecure else _grpc_credentials(settings),
            headers=headers,
            timeout=settings.otlp_timeout,
            compression=_grpc_compression(settings.otlp_compression),
            retryable_error_codes=_NO_SDK_RETRIES,
        )
    return HttpSpanExporter(
        endpoint=settings.otlp_traces_endpoint,
        certificate_file=_str_or_none(settings.otlp_certificate),
        client_key_file=_str_or_none(settings.otlp_client_key),
        client_certificate_file=_str_or_none(settings.otlp_client_certificate),
        headers=headers,
        timeout=settings.otlp_timeout,
        compression=_http_compression(settings.otlp_compression),
    )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def build_sink(settings: Settings) -> SpanSink:
    description = f"{settings.otlp_protocol} {settings.otlp_traces_endpoint}"
    return ExporterSink(build_exporter(settings), description)
