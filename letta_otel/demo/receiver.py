"""A local OTLP/gRPC receiver for the demo: what a collector would get, decoded.

grpcio serves opentelemetry-proto's trace and metrics services on 127.0.0.1 (a free
port) from its own threads, so the bridge's blocking exports (the metric push at
shutdown runs on the event loop's thread) never wait on the loop they block.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from letta_otel.demo.received import Event, Metric, Point, Span

HOST = "127.0.0.1"
# The bridge sends batches of up to 3 MB by default; leave room above grpc's 4 MB default.
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _value(value: common_pb2.AnyValue) -> Any:
    """An OTLP ``AnyValue`` as Python (arrays as tuples, key-value lists as dicts)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(kvs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _enum(names: Any, number: int, prefix: str) -> str:
    try:
        return str(names.Name(number)).removeprefix(prefix)
    except ValueError:
        return str(number)


def decode_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[Span]:
    """The spans of an ``ExportTraceServiceRequest``."""
    return [
        Span(
            trace_id=s.trace_id.hex(),
            span_id=s.span_id.hex(),
            parent_span_id=s.parent_span_id.hex() or None,
            name=s.name,
            kind=_enum(trace_pb2.Span.SpanKind, s.kind, "SPAN_KIND_"),
            start_ns=s.start_time_unix_nano,
            end_ns=s.end_time_unix_nano,
            attributes=_attributes(s.attributes),
            status_code=_enum(trace_pb2.Status.StatusCode, s.status.code, "STATUS_CODE_"),
            status_message=s.status.message,
            events=tuple(Event(e.name, _attributes(e.attributes)) for e in s.events),
        )
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


def _points(kind: str, data: Any) -> tuple[Point, ...]:
    points = []
    for p in data.data_points:
        attributes = _attributes(p.attributes)
        if kind in ("sum", "gauge"):
            number = p.WhichOneof("value")
            value = float(getattr(p, number)) if number else None
            points.append(Point(attributes, p.time_unix_nano, value=value))
        else:
            points.append(Point(attributes, p.time_unix_nano, count=p.count, sum=p.sum))
    return tuple(points)


def decode_metrics(request: metrics_service_pb2.ExportMetricsServiceRequest) -> list[Metric]:
    """The metrics of an ``ExportMetricsServiceRequest``."""
    out = []
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data") or "empty"
                data = getattr(m, kind) if kind != "empty" else None
                points = _points(kind, data) if data is not None else ()
                out.append(Metric(m.name, m.unit, kind, points))
    return out


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver.add_spans(decode_spans(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # the gRPC method's name
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver.add_metrics(decode_metrics(request))
        return metrics_service_pb2.ExportMetricsServiceResponse()


class OtlpReceiver:
    """OTLP/gRPC traces and metrics on ``endpoint``; ``spans``/``metrics`` as received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._metrics: list[Metric] = []
        self._server: Any = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    @property
    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics)

    def add_spans(self, spans: list[Span]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def add_metrics(self, metrics: list[Metric]) -> None:
        with self._lock:
            self._metrics.extend(metrics)

    def start(self) -> OtlpReceiver:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="demo-otlp"),
            options=[
                ("grpc.so_reuseport", 0),  # a free port of our own, never a shared one
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        # The generated registration functions carry no annotations.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Traces(self), server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Metrics(self), server
        )
        port = int(server.add_insecure_port(f"{HOST}:0"))
        if port == 0:
            raise OSError(f"cannot listen on {HOST} for the demo's OTLP receiver")
        server.start()
        self._server, self.port = server, port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None
