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
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from letta_otel.config import Settings
from letta_otel.export.otlp_options import grpc_exporter_args, http_exporter_args

log = logging.getLogger(__name__)


class SpanSink(Protocol):
    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """True only when the backend confirmed every span."""
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

    def shutdown(self) -> None:
        self.exporter.shutdown()


# The SDK's gRPC exporter retries inside one deadline, so its last attempt may get only
# milliseconds: a backend that takes it but answers late reads as a failure and the
# batch is sent again. The daemon retries whole cycles with backoff instead, so each
# attempt gets the full timeout: the exporter's public ``retryable_error_codes`` is
# given a code that never comes back as an error (an empty list would mean "the
# defaults" to the SDK).
_NO_SDK_RETRIES = (grpc.StatusCode.OK,)


def build_exporter(settings: Settings) -> SpanExporter:
    """The SDK exporter for the configured protocol, with every setting passed explicitly."""
    if settings.otlp_protocol == "grpc":
        return GrpcSpanExporter(
            **grpc_exporter_args(settings), retryable_error_codes=_NO_SDK_RETRIES
        )
    return HttpSpanExporter(**http_exporter_args(settings))


def build_sink(settings: Settings) -> SpanSink:
    description = f"{settings.otlp_protocol} {settings.otlp_traces_endpoint}"
    return ExporterSink(build_exporter(settings), description)
