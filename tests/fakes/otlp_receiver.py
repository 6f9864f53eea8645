"""A real, in-process OTLP receiver (gRPC + HTTP) for tests.

``OtlpReceiver`` listens on two free ports on 127.0.0.1 only:

* gRPC (grpcio) serving ``opentelemetry.proto.collector.trace.v1.TraceService`` and
  ``opentelemetry.proto.collector.metrics.v1.MetricsService``;
* HTTP/1.1 (stdlib ``ThreadingHTTPServer``, keep-alive) serving ``POST /v1/traces`` and
  ``POST /v1/metrics`` with ``application/x-protobuf`` or OTLP/JSON (``application/json``),
  honouring ``Content-Encoding: gzip`` / ``deflate``.

Everything received is decoded into plain frozen dataclasses (``ReceivedSpan``,
``ReceivedMetric``, ``ReceivedRequest``) so tests can assert on what a backend actually got.
Fault knobs (``fail_next``, ``set_failing``, ``pause``/``resume``, ``set_max_request_bytes``,
``partial_success``) simulate a misbehaving backend.

Rules applied to each export request, in this order (all thread-safe):

1. undecodable / wrong path / wrong content type -> rejected (HTTP 400/404/415, gRPC cannot
   reach the servicer with a bad body);
2. ``fail_next`` budget (consumed one per request, either protocol/signal), then
   ``set_failing`` -> rejected with the configured gRPC code / HTTP status (+ retry hint);
3. ``set_max_request_bytes`` limit, compared with the *uncompressed* protobuf size
   (the OTLP spec's "before compression" size) -> gRPC RESOURCE_EXHAUSTED / HTTP 413;
4. otherwise accepted: decoded data is stored and the proper ``Export*ServiceResponse`` is
   returned, carrying a pending ``partial_success`` if one was armed.

Rejected requests are recorded in ``requests`` with ``accepted=False``; their spans/metrics
are not stored.

gRPC caveat: grpcio decompresses before the servicer runs and hides ``grpc-encoding``, so for
gRPC requests ``compression`` is always None and ``body_bytes`` is the uncompressed size.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import gzip
import json
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "OtlpReceiver",
    "ReceivedDataPoint",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedMetric",
    "ReceivedRequest",
    "ReceivedSpan",
]

Protocol = Literal["grpc", "http"]
Signal = Literal["traces", "metrics", "unknown"]

HOST = "127.0.0.1"
GRPC_TRACES_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GRPC_METRICS_PATH = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
HTTP_TRACES_PATH = "/v1/traces"
HTTP_METRICS_PATH = "/v1/metrics"
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True, kw_only=True)
class ReceivedEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]
    dropped_attributes_count: int = 0


@dataclass(frozen=True, kw_only=True)
class ReceivedLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0


@dataclass(frozen=True, kw_only=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: tuple[ReceivedEvent, ...]
    links: tuple[ReceivedLink, ...]
    status_code: str
    status_message: str
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    flags: int
    dropped_attributes_count: int
    protocol: str
    trace_state: str = ""
    dropped_events_count: int = 0
    dropped_links_count: int = 0
    scope_attributes: dict[str, Any] | None = None
    # When the export request carrying it reached the receiver (0.0 if not stamped):
    # time.monotonic() and time.time(). Not part of equality: two receptions of the same
    # span are the same span.
    received_at: float = field(default=0.0, compare=False)
    received_wall: float = field(default=0.0, compare=False)


@dataclass(frozen=True, kw_only=True)
class ReceivedDataPoint:
    """One metric data point, flattened across metric types.

    gauge/sum: ``value``; histogram: ``sum``/``count``/``bucket_counts``/``explicit_bounds``/
    ``min``/``max``; exponential histogram: ``sum``/``count``/``min``/``max``/``scale``/
    ``zero_count`` and positive buckets in ``bucket_counts``; summary: ``sum``/``count``/
    ``quantiles`` ((quantile, value), ...).
    """

    attributes: dict[str, Any]
    start_ns: int
    time_ns: int
    value: int | float | None = None
    sum: float | None = None
    count: int | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    scale: int | None = None
    zero_count: int | None = None
    quantiles: tuple[tuple[float, float], ...] = ()
    flags: int = 0


@dataclass(frozen=True, kw_only=True)
class ReceivedMetric:
    name: str
    description: str
    unit: str
    type: str  # "gauge" | "sum" | "histogram" | "exponential_histogram" | "summary" | "empty"
    data_points: tuple[ReceivedDataPoint, ...]
    aggregation_temporality: str | None  # "DELTA" | "CUMULATIVE" | "UNSPECIFIED" | None
    is_monotonic: bool | None  # only for "sum"
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    protocol: str
    # As for ReceivedSpan: when its export request arrived (monotonic, wall clock).
    received_at: float = field(default=0.0, compare=False)
    received_wall: float = field(default=0.0, compare=False)


@dataclass(frozen=True, kw_only=True)
class ReceivedRequest:
    protocol: str  # "grpc" | "http"
    path: str  # HTTP path, or the gRPC method path
    headers: dict[str, str]  # lower-case keys; gRPC metadata (``-bin`` values base64)
    compression: str | None  # "gzip" | "deflate" | None (gRPC: from grpc-encoding if visible)
    n_spans: int
    body_bytes: int  # bytes on the wire (HTTP: possibly compressed body; gRPC: message size)
    accepted: bool
    signal: str = "traces"  # "traces" | "metrics" | "unknown"
    uncompressed_bytes: int = 0
    n_data_points: int = 0
    status: str = "OK"  # HTTP status code as str, or gRPC status code name
    received_at: float = 0.0  # time.monotonic()
    received_wall: float = 0.0  # time.time()


# --------------------------------------------------------------------------- decoding


def _hex(b: bytes) -> str:
    return b.hex()


def any_value_to_python(value: common_pb2.AnyValue) -> Any:
    """Decode an OTLP ``AnyValue`` to Python (arrays -> tuple, kvlist -> dict)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(any_value_to_python(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return kvs_to_dict(value.kvlist_value.values)
    return getattr(value, which)


def kvs_to_dict(kvs: Iterable[common_pb2.KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value_to_python(kv.value) for kv in kvs}


def _enum_name(
    name_fn: Callable[[int], str], number: int, prefix: str, default: str | None = None
) -> str:
    try:
        return name_fn(number).removeprefix(prefix)
    except ValueError:
        return default if default is not None else str(number)


def decode_trace_request(
    request: trace_service_pb2.ExportTraceServiceRequest,
    protocol: str,
    *,
    received_at: float = 0.0,
    received_wall: float = 0.0,
) -> list[ReceivedSpan]:
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = kvs_to_dict(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope_attrs = kvs_to_dict(ss.scope.attributes)
            for s in ss.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=_hex(s.trace_id),
                        span_id=_hex(s.span_id),
                        parent_span_id=_hex(s.parent_span_id) or None,
                        name=s.name,
                        kind=_enum_name(trace_pb2.Span.SpanKind.Name, s.kind, "SPAN_KIND_"),
                        start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                        attributes=kvs_to_dict(s.attributes),
                        events=tuple(
                            ReceivedEvent(
                                name=e.name,
                                time_ns=e.time_unix_nano,
                                attributes=kvs_to_dict(e.attributes),
                                dropped_attributes_count=e.dropped_attributes_count,
                            )
                            for e in s.events
                        ),
                        links=tuple(
                            ReceivedLink(
                                trace_id=_hex(link.trace_id),
                                span_id=_hex(link.span_id),
                                attributes=kvs_to_dict(link.attributes),
                                trace_state=link.trace_state,
                                flags=link.flags,
                                dropped_attributes_count=link.dropped_attributes_count,
                            )
                            for link in s.links
                        ),
                        status_code=_enum_name(
                            trace_pb2.Status.StatusCode.Name, s.status.code, "STATUS_CODE_"
                        ),
                        status_message=s.status.message,
                        resource=resource,
                        scope_name=ss.scope.name,
                        scope_version=ss.scope.version,
                        flags=s.flags,
                        dropped_attributes_count=s.dropped_attributes_count,
                        protocol=protocol,
                        trace_state=s.trace_state,
                        dropped_events_count=s.dropped_events_count,
                        dropped_links_count=s.dropped_links_count,
                        scope_attributes=scope_attrs,
                        received_at=received_at,
                        received_wall=received_wall,
                    )
                )
    return out


def _number_value(p: metrics_pb2.NumberDataPoint) -> int | float | None:
    which = p.WhichOneof("value")
    if which == "as_int":
        return int(p.as_int)
    if which == "as_double":
        return float(p.as_double)
    return None


def _opt_float(msg: Message, name: str) -> float | None:
    return float(getattr(msg, name)) if msg.HasField(name) else None


def _temporality(number: int) -> str:
    return _enum_name(metrics_pb2.AggregationTemporality.Name, number, "AGGREGATION_TEMPORALITY_")


def _decode_metric(
    m: metrics_pb2.Metric,
    resource: dict[str, Any],
    scope: common_pb2.InstrumentationScope,
    protocol: str,
    *,
    received_at: float = 0.0,
    received_wall: float = 0.0,
) -> ReceivedMetric:
    which = m.WhichOneof("data")
    points: list[ReceivedDataPoint] = []
    temporality: str | None = None
    monotonic: bool | None = None
    if which in ("gauge", "sum"):
        data = m.gauge if which == "gauge" else m.sum
        if which == "sum":
            temporality = _temporality(m.sum.aggregation_temporality)
            monotonic = m.sum.is_monotonic
        points = [
            ReceivedDataPoint(
                attributes=kvs_to_dict(p.attributes),
                start_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                value=_number_value(p),
                flags=p.flags,
            )
            for p in data.data_points
        ]
    elif which == "histogram":
        temporality = _temporality(m.histogram.aggregation_temporality)
        points = [
            ReceivedDataPoint(
                attributes=kvs_to_dict(p.attributes),
                start_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                sum=_opt_float(p, "sum"),
                count=p.count,
                bucket_counts=tuple(p.bucket_counts),
                explicit_bounds=tuple(p.explicit_bounds),
                min=_opt_float(p, "min"),
                max=_opt_float(p, "max"),
                flags=p.flags,
            )
            for p in m.histogram.data_points
        ]
    elif which == "exponential_histogram":
        temporality = _temporality(m.exponential_histogram.aggregation_temporality)
        points = [
            ReceivedDataPoint(
                attributes=kvs_to_dict(p.attributes),
                start_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                sum=_opt_float(p, "sum"),
                count=p.count,
                bucket_counts=tuple(p.positive.bucket_counts),
                min=_opt_float(p, "min"),
                max=_opt_float(p, "max"),
                scale=p.scale,
                zero_count=p.zero_count,
                flags=p.flags,
            )
            for p in m.exponential_histogram.data_points
        ]
    elif which == "summary":
        points = [
            ReceivedDataPoint(
                attributes=kvs_to_dict(p.attributes),
                start_ns=p.start_time_unix_nano,
                time_ns=p.time_unix_nano,
                sum=p.sum,
                count=p.count,
                quantiles=tuple((q.quantile, q.value) for q in p.quantile_values),
                flags=p.flags,
            )
            for p in m.summary.data_points
        ]
    return ReceivedMetric(
        name=m.name,
        description=m.description,
        unit=m.unit,
        type=which or "empty",
        data_points=tuple(points),
        aggregation_temporality=temporality,
        is_monotonic=monotonic,
        resource=resource,
        scope_name=scope.name,
        scope_version=scope.version,
        protocol=protocol,
        received_at=received_at,
        received_wall=received_wall,
    )


def decode_metrics_request(
    request: metrics_service_pb2.ExportMetricsServiceRequest,
    protocol: str,
    *,
    received_at: float = 0.0,
    received_wall: float = 0.0,
) -> list[ReceivedMetric]:
    out: list[ReceivedMetric] = []
    for rm in request.resource_metrics:
        resource = kvs_to_dict(rm.resource.attributes)
        for sm in rm.scope_metrics:
            out.extend(
                _decode_metric(
                    m,
                    resource,
                    sm.scope,
                    protocol,
                    received_at=received_at,
                    received_wall=received_wall,
                )
                for m in sm.metrics
            )
    return out


def _count_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _count_points(request: metrics_service_pb2.ExportMetricsServiceRequest) -> int:
    n = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                which = m.WhichOneof("data")
                if which is not None:
                    n += len(getattr(m, which).data_points)
    return n


_HEX_ID_KEYS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)


def _otlp_json_ids_to_base64(obj: Any) -> Any:
    """OTLP/JSON encodes trace/span ids as hex; protobuf JSON mapping expects base64."""
    if isinstance(obj, dict):
        result: dict[str, Any] = {}
        for key, value in obj.items():
            converted = value
            if key in _HEX_ID_KEYS and isinstance(value, str) and value:
                # not hex: already base64 (non-conformant client); let protobuf decode it
                with contextlib.suppress(ValueError):
                    converted = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            result[key] = _otlp_json_ids_to_base64(converted)
        return result
    if isinstance(obj, list):
        return [_otlp_json_ids_to_base64(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class _Fault:
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after: float | None
    message: str


@dataclass(frozen=True)
class _Outcome:
    accepted: bool
    fault: _Fault | None = None
    partial: tuple[int, str] | None = None


def _grpc_status_number(code: grpc.StatusCode) -> int:
    value = cast(tuple[int, str], code.value)
    return value[0]


def _trace_response(
    partial: tuple[int, str] | None,
) -> trace_service_pb2.ExportTraceServiceResponse:
    response = trace_service_pb2.ExportTraceServiceResponse()
    if partial is not None:
        response.partial_success.rejected_spans = partial[0]
        response.partial_success.error_message = partial[1]
    return response


def _metrics_response(
    partial: tuple[int, str] | None,
) -> metrics_service_pb2.ExportMetricsServiceResponse:
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    if partial is not None:
        response.partial_success.rejected_data_points = partial[0]
        response.partial_success.error_message = partial[1]
    return response


# --------------------------------------------------------------------------- gRPC


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        outcome = self._receiver._ingest_grpc("traces", GRPC_TRACES_PATH, request, context)
        return _trace_response(outcome.partial)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        outcome = self._receiver._ingest_grpc("metrics", GRPC_METRICS_PATH, request, context)
        return _metrics_response(outcome.partial)


def _grpc_metadata(pairs: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in pairs or ():
        text = base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        k = key.lower()
        headers[k] = f"{headers[k]}, {text}" if k in headers else text
    return headers


# --------------------------------------------------------------------------- HTTP


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so it can really go away on pause."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, port: int, receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._conn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__((HOST, port), _HttpHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"otlp-http-conn-{client_address}",
            daemon=True,
        )
        with self._conn_lock:
            self._conns.add(request)
            self._workers.add(thread)
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conns.discard(request)
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # connections cut by pause()/stop() or by the client are expected: stay quiet
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close_all(self, join_timeout: float = 5.0) -> None:
        """Stop accepting, drop every open (keep-alive) connection, join worker threads."""
        self.shutdown()  # stops serve_forever (must run in another thread)
        self.server_close()
        with self._conn_lock:
            conns = list(self._conns)
            workers = list(self._workers)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + join_timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    def do_POST(self) -> None:
        self.server.receiver._handle_http(self)

    def _method_not_allowed(self) -> None:
        self._drain_body()
        self.send_reply(405, "text/plain", b"method not allowed\n", {"Allow": "POST"})

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _method_not_allowed

    def _drain_body(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.read_body()

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length > 0 else b""

    def send_reply(
        self, status: int, content_type: str, body: bytes, extra: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity", "none"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate
    raise LookupError(encoding)


def _format_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class _HttpReject(Exception):
    def __init__(self, status: int, code: grpc.StatusCode, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.code = code


def _http_signal(path: str) -> Signal:
    path = path.rstrip("/")
    if path == HTTP_TRACES_PATH:
        return "traces"
    if path == HTTP_METRICS_PATH:
        return "metrics"
    return "unknown"


def _decode_http_request(
    signal: Signal, path: str, ctype: str, encoding: str | None, body: bytes
) -> Message:
    """Decompress and decode an OTLP/HTTP body, or raise ``_HttpReject``."""
    if signal == "unknown":
        raise _HttpReject(404, grpc.StatusCode.UNIMPLEMENTED, f"unknown path {path}")
    if ctype not in (_PROTOBUF, _JSON):
        raise _HttpReject(
            415, grpc.StatusCode.INVALID_ARGUMENT, f"unsupported content type {ctype!r}"
        )
    try:
        raw = _decompress(body, encoding)
    except LookupError:
        raise _HttpReject(
            415, grpc.StatusCode.INVALID_ARGUMENT, f"unsupported encoding {encoding!r}"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise _HttpReject(
            400, grpc.StatusCode.INVALID_ARGUMENT, f"cannot decompress body: {exc}"
        ) from exc
    request: Message = (
        trace_service_pb2.ExportTraceServiceRequest()
        if signal == "traces"
        else metrics_service_pb2.ExportMetricsServiceRequest()
    )
    try:
        if ctype == _JSON:
            json_format.ParseDict(
                _otlp_json_ids_to_base64(json.loads(raw)), request, ignore_unknown_fields=True
            )
        else:
            request.ParseFromString(raw)
    except (DecodeError, json_format.ParseError, ValueError) as exc:
        raise _HttpReject(
            400, grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode {ctype}: {exc}"
        ) from exc
    return request


def _send_http_status(
    h: _HttpHandler,
    reply_type: str,
    status: int,
    code: grpc.StatusCode,
    text: str,
    *,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Error reply: a ``google.rpc.Status`` body, as the OTLP/HTTP spec asks."""
    st = status_pb2.Status(code=_grpc_status_number(code), message=text)
    payload = (
        json_format.MessageToJson(st).encode() if reply_type == _JSON else st.SerializeToString()
    )
    h.send_reply(status, reply_type, payload, extra)


# --------------------------------------------------------------------------- receiver


class OtlpReceiver:
    """OTLP/gRPC + OTLP/HTTP receiver on 127.0.0.1 free ports. Use as a context manager."""

    def __init__(self, *, grpc_workers: int = 8) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._lifecycle = threading.RLock()
        self._grpc_workers = grpc_workers
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[ReceivedMetric] = []
        self._requests: list[ReceivedRequest] = []
        # fault state (guarded by _lock)
        self._fail_remaining = 0
        self._fail_fault: _Fault | None = None
        self._failing: _Fault | None = None
        self._max_request_bytes: int | None = None
        self._partial: tuple[int, str] | None = None
        # servers (guarded by _lifecycle)
        self._grpc_server: Any = None
        self._grpc_executor: futures.ThreadPoolExecutor | None = None
        self._http_server: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None
        self._grpc_port = 0
        self._http_port = 0
        self._started = False
        self._paused = False
        self._stopped = False

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        with self._lifecycle:
            if self._stopped:
                raise RuntimeError("OtlpReceiver cannot be restarted after stop()")
            if not self._started:
                self._start_listeners(grpc_port=0, http_port=0)
                self._started = True
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop both listeners and join their threads. Idempotent."""
        with self._lifecycle:
            if self._stopped:
                return
            self._stopped = True
            self._stop_listeners()
            with self._lock:
                self._changed.notify_all()

    def pause(self) -> None:
        """Really stop both listeners (clients get connection refused); ports are kept."""
        with self._lifecycle:
            self._require_running()
            if self._paused:
                return
            self._stop_listeners()
            self._paused = True

    def resume(self, bind_timeout: float = 10.0) -> None:
        """Restart both listeners on the same ports as before ``pause()``."""
        with self._lifecycle:
            self._require_running()
            if not self._paused:
                return
            self._start_listeners(
                grpc_port=self._grpc_port, http_port=self._http_port, bind_timeout=bind_timeout
            )
            self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def _require_running(self) -> None:
        if not self._started or self._stopped:
            raise RuntimeError("OtlpReceiver is not running")

    def _start_listeners(self, *, grpc_port: int, http_port: int, bind_timeout: float = 0) -> None:
        deadline = time.monotonic() + bind_timeout
        while True:
            try:
                server, executor, bound = self._make_grpc_server(grpc_port)
                break
            except RuntimeError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        server.start()
        self._grpc_server, self._grpc_executor, self._grpc_port = server, executor, bound
        try:
            while True:
                try:
                    http_server = _HttpServer(http_port, self)
                    break
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self._stop_grpc()
            raise
        self._http_server = http_server
        self._http_port = http_server.server_address[1]
        self._http_thread = threading.Thread(
            target=http_server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-http-{self._http_port}",
            daemon=True,
        )
        self._http_thread.start()

    def _make_grpc_server(self, port: int) -> tuple[Any, futures.ThreadPoolExecutor, int]:
        executor = futures.ThreadPoolExecutor(
            max_workers=self._grpc_workers, thread_name_prefix="otlp-grpc"
        )
        server = grpc.server(
            executor,
            options=[
                # exclusive bind: no silent port sharing with a stale/foreign listener
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceServicer(self), server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsServicer(self), server
        )
        try:
            bound = int(server.add_insecure_port(f"{HOST}:{port}"))
        except RuntimeError:  # grpcio raises when the address is taken
            bound = 0
        if bound == 0 or (port and bound != port):
            server.stop(None)
            executor.shutdown(wait=True)
            raise RuntimeError(f"failed to bind gRPC server to {HOST}:{port}")
        return server, executor, bound

    def _stop_grpc(self) -> None:
        if self._grpc_server is not None:
            # stop() returns an Event set once all RPCs are done and the listener is closed
            self._grpc_server.stop(grace=0.2).wait(5)
            self._grpc_server = None
        if self._grpc_executor is not None:
            self._grpc_executor.shutdown(wait=True)  # grpc does not own the executor
            self._grpc_executor = None

    def _stop_listeners(self) -> None:
        if self._http_server is not None:
            self._http_server.close_all()
            if self._http_thread is not None:
                self._http_thread.join(5)
            self._http_server = None
            self._http_thread = None
        self._stop_grpc()

    # ----------------------------------------------------------------- endpoints

    @property
    def grpc_port(self) -> int:
        return self._grpc_port

    @property
    def http_port(self) -> int:
        return self._http_port

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{HOST}:{self._grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{HOST}:{self._http_port}"

    @property
    def http_traces_url(self) -> str:
        return self.http_endpoint + HTTP_TRACES_PATH

    @property
    def http_metrics_url(self) -> str:
        return self.http_endpoint + HTTP_METRICS_PATH

    # ----------------------------------------------------------------- data access

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    @property
    def metrics(self) -> list[ReceivedMetric]:
        with self._lock:
            return list(self._metrics)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def spans_by_id(self) -> dict[str, ReceivedSpan]:
        return {s.span_id: s for s in self.spans}

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        result: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans:
            result.setdefault(span.trace_id, []).append(span)
        return result

    def metrics_by_name(self) -> dict[str, list[ReceivedMetric]]:
        result: dict[str, list[ReceivedMetric]] = {}
        for metric in self.metrics:
            result.setdefault(metric.name, []).append(metric)
        return result

    def clear(self) -> None:
        """Forget received spans, metrics and requests (fault knobs are kept)."""
        with self._lock:
            self._spans.clear()
            self._metrics.clear()
            self._requests.clear()

    def reset_faults(self) -> None:
        with self._lock:
            self._fail_remaining = 0
            self._fail_fault = None
            self._failing = None
            self._max_request_bytes = None
            self._partial = None

    def _wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return ready()
                self._changed.wait(remaining)
            return True

    def wait_for_spans(self, n: int, timeout: float = 10) -> list[ReceivedSpan]:
        """Block until at least ``n`` spans were accepted; return all spans received."""
        if self._wait(lambda: len(self._spans) >= n, timeout):
            return self.spans
        raise AssertionError(
            f"OtlpReceiver: expected >= {n} spans within {timeout}s, got {len(self.spans)}."
            f" {self._describe()}"
        )

    def wait_for_metrics(self, name: str, timeout: float = 10) -> list[ReceivedMetric]:
        """Block until a metric called ``name`` was accepted; return all metrics of that name."""
        if self._wait(lambda: any(m.name == name for m in self._metrics), timeout):
            return self.metrics_by_name()[name]
        names = sorted({m.name for m in self.metrics})
        raise AssertionError(
            f"OtlpReceiver: no metric {name!r} within {timeout}s; metrics seen: {names}."
            f" {self._describe()}"
        )

    def wait_for_requests(self, n: int, timeout: float = 10) -> list[ReceivedRequest]:
        """Block until at least ``n`` requests (accepted or not) were recorded."""
        if self._wait(lambda: len(self._requests) >= n, timeout):
            return self.requests
        raise AssertionError(
            f"OtlpReceiver: expected >= {n} requests within {timeout}s. {self._describe()}"
        )

    def _describe(self) -> str:
        with self._lock:
            reqs = list(self._requests)
            names = [s.name for s in self._spans[:20]]
            faults = (
                f"fail_next={self._fail_remaining}, failing={self._failing is not None},"
                f" max_request_bytes={self._max_request_bytes}"
            )
        lines = [
            f"{r.protocol} {r.path} status={r.status} accepted={r.accepted}"
            f" spans={r.n_spans} points={r.n_data_points} bytes={r.body_bytes}"
            for r in reqs[-10:]
        ]
        return (
            f"grpc={self.grpc_endpoint} http={self.http_endpoint} paused={self._paused};"
            f" faults: {faults}; span names (first 20): {names};"
            f" {len(reqs)} request(s), last 10: {lines or 'none'}"
        )

    # ----------------------------------------------------------------- fault knobs

    def fail_next(
        self,
        n: int,
        *,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        http_status: int = 503,
        retry_after: float | None = None,
        message: str = "injected failure",
    ) -> None:
        """Reject the next ``n`` export requests (either protocol/signal).

        gRPC: abort with ``grpc_code`` (plus a ``google.rpc.RetryInfo`` trailer when
        ``retry_after`` is given, which the SDK honours); HTTP: ``http_status`` (plus
        ``Retry-After``). Replaces any previous ``fail_next`` budget.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._fail_remaining = n
            self._fail_fault = _Fault(grpc_code, http_status, retry_after, message)

    def set_failing(
        self,
        on: bool,
        *,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        http_status: int = 503,
        retry_after: float | None = None,
        message: str = "injected failure (failing mode)",
    ) -> None:
        """Reject every export request until called again with ``on=False``."""
        with self._lock:
            self._failing = _Fault(grpc_code, http_status, retry_after, message) if on else None

    def set_max_request_bytes(self, n: int | None) -> None:
        """Reject requests whose uncompressed protobuf size exceeds ``n`` bytes (None: off).

        gRPC: RESOURCE_EXHAUSTED; HTTP: 413.
        """
        with self._lock:
            self._max_request_bytes = n

    def partial_success(self, rejected_spans: int, message: str) -> None:
        """Attach OTLP ``partial_success`` to the next *accepted* response (either signal).

        For metrics the number is sent as ``rejected_data_points``. The received data is still
        stored in full (the receiver cannot know which items the caller means to "reject").
        """
        with self._lock:
            self._partial = (rejected_spans, message)

    @property
    def fail_remaining(self) -> int:
        with self._lock:
            return self._fail_remaining

    # ----------------------------------------------------------------- ingestion

    def _decide(self, uncompressed_bytes: int) -> _Outcome:
        """Fault decision; caller holds ``self._lock``."""
        if self._fail_remaining > 0 and self._fail_fault is not None:
            self._fail_remaining -= 1
            return _Outcome(accepted=False, fault=self._fail_fault)
        if self._failing is not None:
            return _Outcome(accepted=False, fault=self._failing)
        limit = self._max_request_bytes
        if limit is not None and uncompressed_bytes > limit:
            return _Outcome(
                accepted=False,
                fault=_Fault(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    413,
                    None,
                    f"request of {uncompressed_bytes} bytes exceeds limit of {limit} bytes",
                ),
            )
        partial, self._partial = self._partial, None
        return _Outcome(accepted=True, partial=partial)

    def _ingest(
        self,
        *,
        protocol: Protocol,
        signal: Signal,
        path: str,
        headers: dict[str, str],
        compression: str | None,
        body_bytes: int,
        message: Message,
        status_for: Callable[[_Outcome], str],
    ) -> _Outcome:
        # Stamped before decoding: the arrival, not the end of our own work.
        arrived, arrived_wall = time.monotonic(), time.time()
        uncompressed = message.ByteSize()
        spans: list[ReceivedSpan] = []
        metrics: list[ReceivedMetric] = []
        n_spans = n_points = 0
        if signal == "traces":
            treq = cast(trace_service_pb2.ExportTraceServiceRequest, message)
            n_spans = _count_spans(treq)
            spans = decode_trace_request(
                treq, protocol, received_at=arrived, received_wall=arrived_wall
            )
        else:
            mreq = cast(metrics_service_pb2.ExportMetricsServiceRequest, message)
            n_points = _count_points(mreq)
            metrics = decode_metrics_request(
                mreq, protocol, received_at=arrived, received_wall=arrived_wall
            )
        with self._changed:
            outcome = self._decide(uncompressed)
            if outcome.accepted:
                self._spans.extend(spans)
                self._metrics.extend(metrics)
            self._requests.append(
                ReceivedRequest(
                    protocol=protocol,
                    path=path,
                    headers=headers,
                    compression=compression,
                    n_spans=n_spans,
                    body_bytes=body_bytes,
                    accepted=outcome.accepted,
                    signal=signal,
                    uncompressed_bytes=uncompressed,
                    n_data_points=n_points,
                    status=status_for(outcome),
                    received_at=arrived,
                    received_wall=arrived_wall,
                )
            )
            self._changed.notify_all()
        return outcome

    def _record_bad(
        self,
        *,
        path: str,
        headers: dict[str, str],
        compression: str | None,
        body: bytes,
        status: int,
        signal: Signal,
    ) -> None:
        with self._changed:
            self._requests.append(
                ReceivedRequest(
                    protocol="http",
                    path=path,
                    headers=headers,
                    compression=compression,
                    n_spans=0,
                    body_bytes=len(body),
                    accepted=False,
                    signal=signal,
                    status=str(status),
                    received_at=time.monotonic(),
                    received_wall=time.time(),
                )
            )
            self._changed.notify_all()

    def _ingest_grpc(
        self, signal: Signal, path: str, request: Message, context: grpc.ServicerContext
    ) -> _Outcome:
        headers = _grpc_metadata(context.invocation_metadata())
        encoding = headers.get("grpc-encoding")
        outcome = self._ingest(
            protocol="grpc",
            signal=signal,
            path=path,
            headers=headers,
            compression=encoding if encoding and encoding != "identity" else None,
            body_bytes=request.ByteSize(),
            message=request,
            status_for=lambda o: "OK" if o.fault is None else o.fault.grpc_code.name,
        )
        fault = outcome.fault
        if fault is not None:
            if fault.retry_after is not None:
                delay = Duration()
                delay.FromNanoseconds(int(fault.retry_after * 1e9))
                info = error_details_pb2.RetryInfo(retry_delay=delay)
                context.set_trailing_metadata(((_RETRY_INFO_KEY, info.SerializeToString()),))
            context.abort(fault.grpc_code, fault.message)  # raises
        return outcome

    def _handle_http(self, h: _HttpHandler) -> None:
        path = urlsplit(h.path).path
        headers: dict[str, str] = {}
        for key, value in h.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]}, {value}" if k in headers else value
        signal = _http_signal(path)
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        encoding = headers.get("content-encoding", "").strip().lower() or None
        reply_type = _JSON if ctype == _JSON else _PROTOBUF
        body = b""
        try:
            try:
                body = h.read_body()
            except (ValueError, OSError) as exc:
                h.close_connection = True
                raise _HttpReject(400, grpc.StatusCode.INVALID_ARGUMENT, "bad framing") from exc
            request = _decode_http_request(signal, path, ctype, encoding, body)
        except _HttpReject as reject:
            self._record_bad(
                path=path,
                headers=headers,
                compression=encoding,
                body=body,
                status=reject.status,
                signal=signal,
            )
            _send_http_status(h, reply_type, reject.status, reject.code, str(reject))
            return

        outcome = self._ingest(
            protocol="http",
            signal=signal,
            path=path,
            headers=headers,
            compression=encoding if encoding not in (None, "identity", "none") else None,
            body_bytes=len(body),
            message=request,
            status_for=lambda o: "200" if o.fault is None else str(o.fault.http_status),
        )
        fault = outcome.fault
        if fault is not None:
            extra = (
                {"Retry-After": _format_retry_after(fault.retry_after)}
                if fault.retry_after is not None
                else None
            )
            _send_http_status(
                h, reply_type, fault.http_status, fault.grpc_code, fault.message, extra=extra
            )
            return
        response = (
            _trace_response(outcome.partial)
            if signal == "traces"
            else _metrics_response(outcome.partial)
        )
        payload = (
            json_format.MessageToJson(response).encode()
            if reply_type == _JSON
            else response.SerializeToString()
        )
        h.send_reply(200, reply_type, payload)
