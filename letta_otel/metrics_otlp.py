"""The OTLP metrics exporter: the SDK's own, each push's result counted.

The periodic reader (:func:`letta_otel.telemetry.build_telemetry`) pushes through
:func:`build_metric_exporter`, built for the metrics transport (:func:`metrics_transport`:
the traces' settings unless the metrics ones are set) with every setting passed
explicitly; each push's result feeds ``letta_otel.export.*{signal=metrics}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from letta_otel.config import Settings
from letta_otel.export.otlp_options import grpc_exporter_args, http_exporter_args

log = logging.getLogger(__name__)


class PushCounter:
    """Reports the result of each OTLP metrics push (``letta_otel.export.*{signal=metrics}``)."""

    def __init__(self, on_result: Callable[[bool], None]) -> None:
        self._on_result = on_result
        self.discard = False  # set when the process ends before doing any work
        self.held = False  # set while start-up waits for the OTLP endpoint or Letta

    def export(self, push: Callable[[], MetricExportResult]) -> MetricExportResult:
        """Run one push (unless discarding or held) and report whether it succeeded."""
        if self.discard or self.held:
            return MetricExportResult.SUCCESS
        try:
            result = push()
        except Exception:
            log.warning("the OTLP metrics exporter raised", exc_info=True)
            result = MetricExportResult.FAILURE
        self._on_result(result is MetricExportResult.SUCCESS)
        return result


# The SDK's OTLP metric exporters, each push reported to a PushCounter. Subclasses
# rather than a wrapper: the periodic reader takes its temporality and aggregation
# preferences from the exporter it is given, and so they stay the SDK exporter's own
# (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, ..._DEFAULT_HISTOGRAM_AGGREGATION).


class CountingGrpcMetricExporter(GrpcMetricExporter):
    def __init__(self, pushes: PushCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pushes = pushes

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.pushes.export(partial(super().export, metrics_data, timeout_millis, **kwargs))


class CountingHttpMetricExporter(HttpMetricExporter):
    def __init__(self, pushes: PushCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pushes = pushes

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.pushes.export(partial(super().export, metrics_data, timeout_millis, **kwargs))


CountingMetricExporter = CountingGrpcMetricExporter | CountingHttpMetricExporter


def metrics_transport(settings: Settings) -> Settings:
    """``settings`` with the trace transport swapped for the metrics one.

    The unset (None) metrics settings mean "as for traces"; the result is read the same
    way for both signals (:mod:`letta_otel.export.otlp_options`).
    """
    own = {
        "otlp_protocol": settings.otlp_metrics_protocol,
        "otlp_headers": settings.otlp_metrics_headers,
        "otlp_compression": settings.otlp_metrics_compression,
        "otlp_timeout": settings.otlp_metrics_timeout,
        "otlp_insecure": settings.otlp_metrics_insecure,
        "otlp_certificate": settings.otlp_metrics_certificate,
        "otlp_client_key": settings.otlp_metrics_client_key,
        "otlp_client_certificate": settings.otlp_metrics_client_certificate,
    }
    update: dict[str, Any] = {k: v for k, v in own.items() if v is not None}
    update["otlp_traces_endpoint"] = settings.otlp_metrics_endpoint
    return settings.model_copy(update=update)


def build_metric_exporter(
    settings: Settings, pushes: PushCounter | None = None
) -> CountingMetricExporter:
    """The SDK OTLP metric exporter for the metrics transport, every setting explicit.

    Each push's result goes to ``pushes`` (by default, nowhere).
    """
    t = metrics_transport(settings)
    pushes = pushes or PushCounter(_ignore_result)
    if t.otlp_protocol == "grpc":
        return CountingGrpcMetricExporter(pushes, **grpc_exporter_args(t))
    return CountingHttpMetricExporter(pushes, **http_exporter_args(t))


def _ignore_result(_: bool) -> None:
    pass
