"""Tests for the in-process OTLP receiver, driven by the real OTel SDK exporters."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import http.client
import json
import socket
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2  # type: ignore[import-untyped]
from grpc import Compression as GrpcCompression
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from tests.fakes.otlp_receiver import (
    OtlpReceiver,
    ReceivedEvent,
    ReceivedLink,
    ReceivedSpan,
)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
ROOT_ID = 0xB7AD6B7169203331
CHILD_ID = 0x00F067AA0BA902B7
LINK_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
LINK_SPAN_ID = 0x0102030405060708
T0 = 1_700_000_000_123_456_789
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
EXPORT_TIMEOUT = 2.0

RESOURCE = Resource(
    {
        "service.name": "letta-otel-test",
        "service.version": "0.1.0",
        "deployment.environment.name": "ci",
        "host.cpu.count": 8,
    }
)
SCOPE = InstrumentationScope("letta_otel.mapping", "0.1.0", None, {"scope.attr": "s"})


def _ctx(
    trace_id: int, span_id: int, *, remote: bool = False, state: TraceState | None = None
) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=SAMPLED, trace_state=state)


def _spans() -> list[ReadableSpan]:
    root = ReadableSpan(
        name="invoke_agent letta-agent",
        context=_ctx(TRACE_ID, ROOT_ID, state=TraceState([("letta", "r1"), ("vendor", "x")])),
        parent=_ctx(TRACE_ID, 0x1111111111111111, remote=True),
        resource=RESOURCE,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": "agent-4f0c",
            "letta.step.count": 3,
            "letta.cost.usd": 0.0125,
            "letta.streaming": False,
            "gen_ai.response.finish_reasons": ["stop", "length"],
            "letta.token.counts": [12, 30],
            "letta.ratios": [0.5, 1.25],
            "letta.flags": [True, False],
        },
        events=[
            Event("gen_ai.user.message", {"content": "hi there", "index": 0}, timestamp=T0 + 10),
            Event("exception", {"exception.type": "TimeoutError"}, timestamp=T0 + 20),
        ],
        links=[
            Link(
                SpanContext(
                    LINK_TRACE_ID,
                    LINK_SPAN_ID,
                    is_remote=True,
                    trace_flags=SAMPLED,
                    trace_state=TraceState([("vendor", "v1")]),
                ),
                {"link.kind": "follows_from"},
            )
        ],
        kind=SpanKind.SERVER,
        status=Status(StatusCode.ERROR, "tool call failed: timeout"),
        start_time=T0,
        end_time=T0 + 5_000_000_000,
        instrumentation_scope=SCOPE,
    )
    child = ReadableSpan(
        name="chat gpt-4o-mini",
        context=_ctx(TRACE_ID, CHILD_ID),
        parent=_ctx(TRACE_ID, ROOT_ID),
        resource=RESOURCE,
        attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1234},
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.OK),
        start_time=T0 + 1_000,
        end_time=T0 + 2_000_000_000,
        instrumentation_scope=SCOPE,
    )
    return [root, child]


def _expected(protocol: str) -> dict[str, ReceivedSpan]:
    resource = dict(RESOURCE.attributes)
    root = ReceivedSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        parent_span_id="1111111111111111",
        name="invoke_agent letta-agent",
        kind="SERVER",
        start_ns=T0,
        end_ns=T0 + 5_000_000_000,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": "agent-4f0c",
            "letta.step.count": 3,
            "letta.cost.usd": 0.0125,
            "letta.streaming": False,
            "gen_ai.response.finish_reasons": ("stop", "length"),
            "letta.token.counts": (12, 30),
            "letta.ratios": (0.5, 1.25),
            "letta.flags": (True, False),
        },
        events=(
            ReceivedEvent(
                name="gen_ai.user.message",
                time_ns=T0 + 10,
                attributes={"content": "hi there", "index": 0},
            ),
            ReceivedEvent(
                name="exception", time_ns=T0 + 20, attributes={"exception.type": "TimeoutError"}
            ),
        ),
        links=(
            ReceivedLink(
                trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
                span_id="0102030405060708",
                attributes={"link.kind": "follows_from"},
                trace_state="",  # SDK 1.45 does not encode Link trace_state
                flags=HAS_IS_REMOTE | IS_REMOTE,
            ),
        ),
        status_code="ERROR",
        status_message="tool call failed: timeout",
        resource=resource,
        scope_name="letta_otel.mapping",
        scope_version="0.1.0",
        flags=HAS_IS_REMOTE | IS_REMOTE,  # parent context is remote
        dropped_attributes_count=0,
        protocol=protocol,
        trace_state="letta=r1,vendor=x",
        scope_attributes={"scope.attr": "s"},
    )
    child = ReceivedSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="00f067aa0ba902b7",
        parent_span_id="b7ad6b7169203331",
        name="chat gpt-4o-mini",
        kind="CLIENT",
        start_ns=T0 + 1_000,
        end_ns=T0 + 2_000_000_000,
        attributes={"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1234},
        events=(),
        links=(),
        status_code="OK",
        status_message="",
        resource=resource,
        scope_name="letta_otel.mapping",
        scope_version="0.1.0",
        flags=HAS_IS_REMOTE,
        dropped_attributes_count=0,
        protocol=protocol,
        scope_attributes={"scope.attr": "s"},
    )
    return {root.span_id: root, child.span_id: child}


def _assert_spans_equal(got: dict[str, ReceivedSpan], want: dict[str, ReceivedSpan]) -> None:
    assert sorted(got) == sorted(want)
    diffs = [
        f"{span_id}.{f.name}: got {getattr(got[span_id], f.name)!r},"
        f" want {getattr(want[span_id], f.name)!r}"
        for span_id in want
        for f in dataclasses.fields(ReceivedSpan)
        # every field the exporter sent; arrival stamps are the receiver's own
        if f.compare and getattr(got[span_id], f.name) != getattr(want[span_id], f.name)
    ]
    assert not diffs, "\n".join(diffs)
    assert got == want


def _small_span(i: int, *, payload: str = "") -> ReadableSpan:
    return ReadableSpan(
        name=f"span-{i}",
        context=_ctx(TRACE_ID + i, 0x1000 + i),
        resource=RESOURCE,
        attributes={"i": i, "payload": payload},
        start_time=T0 + i,
        end_time=T0 + i + 1,
        instrumentation_scope=SCOPE,
    )


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


ExporterFactory = Callable[..., SpanExporter]


def _grpc_exporter(rx: OtlpReceiver, **kw: Any) -> SpanExporter:
    return GrpcSpanExporter(endpoint=rx.grpc_endpoint, insecure=True, timeout=EXPORT_TIMEOUT, **kw)


def _http_exporter(rx: OtlpReceiver, **kw: Any) -> SpanExporter:
    return HttpSpanExporter(endpoint=rx.http_traces_url, timeout=EXPORT_TIMEOUT, **kw)


def _timed_export(exporter: SpanExporter, spans: Sequence[ReadableSpan]) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = exporter.export(spans)
    return result, time.monotonic() - t0


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("protocol", "make", "compression"),
    [
        ("grpc", _grpc_exporter, None),
        ("grpc", lambda rx: _grpc_exporter(rx, compression=GrpcCompression.Gzip), None),
        ("http", _http_exporter, None),
        ("http", lambda rx: _http_exporter(rx, compression=HttpCompression.Gzip), "gzip"),
        ("http", lambda rx: _http_exporter(rx, compression=HttpCompression.Deflate), "deflate"),
    ],
    ids=["grpc", "grpc-gzip", "http", "http-gzip", "http-deflate"],
)
def test_every_span_field_round_trips(
    receiver: OtlpReceiver,
    protocol: str,
    make: Callable[[OtlpReceiver], SpanExporter],
    compression: str | None,
) -> None:
    exporter = make(receiver)
    try:
        assert exporter.export(_spans()) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()

    got = receiver.wait_for_spans(2, timeout=5)
    assert len(got) == 2
    _assert_spans_equal(receiver.spans_by_id(), _expected(protocol))
    assert list(receiver.traces()) == ["0af7651916cd43dd8448eb211c80319c"]

    (req,) = receiver.requests
    assert req.protocol == protocol
    assert req.accepted
    assert req.n_spans == 2
    assert req.signal == "traces"
    assert req.compression == compression
    if protocol == "http":
        assert req.path == "/v1/traces"
        assert req.headers["content-type"] == "application/x-protobuf"
        assert req.headers["content-length"] == str(req.body_bytes)
        if compression is not None:
            assert req.body_bytes < req.uncompressed_bytes
    else:
        assert req.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        assert req.body_bytes == req.uncompressed_bytes > 0


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_headers_recorded(receiver: OtlpReceiver, make: ExporterFactory) -> None:
    # NB: gRPC metadata keys must be lower-case; grpcio rejects "X-Honeycomb-Dataset" with
    # INTERNAL "Invalid metadata" (the SDK gRPC exporter passes keys through unchanged).
    exporter = make(receiver, headers={"x-honeycomb-team": "k", "x-honeycomb-dataset": "letta"})
    try:
        assert exporter.export([_small_span(1)]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    (req,) = receiver.requests
    assert req.headers["x-honeycomb-team"] == "k"
    assert req.headers["x-honeycomb-dataset"] == "letta"
    assert "OTel-OTLP-Exporter-Python" in req.headers["user-agent"]


def test_helpers_clear_and_wait_timeout(receiver: OtlpReceiver) -> None:
    exporter = _http_exporter(receiver)
    try:
        assert exporter.export([_small_span(1), _small_span(2)]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert sorted(receiver.traces()) == sorted({s.trace_id for s in receiver.spans})
    assert len(receiver.traces()) == 2
    receiver.clear()
    assert receiver.spans == [] and receiver.requests == []
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"expected >= 1 spans within 0.2s, got 0"):
        receiver.wait_for_spans(1, timeout=0.2)
    assert time.monotonic() - t0 < 1


# --------------------------------------------------------------------------- faults
#
# SDK 1.45 behaviour (observed, timeout=2): both exporters retry retryable failures with
# backoff 2**n * U(0.8, 1.2) s and give up as soon as the next backoff would pass the
# deadline, so a permanently retryable failure returns FAILURE after ~1 s (2 attempts).
# gRPC retryable: CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
# UNAVAILABLE, DATA_LOSS; HTTP retryable: 429, 502, 503, 504 (+ connection errors).
# Everything else fails at once. A retry hint (gRPC RetryInfo trailer / HTTP Retry-After)
# replaces the backoff.


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_fail_next_retryable_then_success(receiver: OtlpReceiver, make: ExporterFactory) -> None:
    receiver.fail_next(1)  # UNAVAILABLE / 503
    exporter = make(receiver)
    try:
        result, elapsed = _timed_export(exporter, [_small_span(1)])
    finally:
        exporter.shutdown()
    assert result is SpanExportResult.SUCCESS
    assert 0.7 < elapsed < 1.8  # one ~1 s backoff
    first, second = receiver.requests
    assert not first.accepted and first.status in ("UNAVAILABLE", "503")
    assert second.accepted
    assert [s.name for s in receiver.spans] == ["span-1"]  # rejected copy not stored


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_retry_hint_is_honoured(receiver: OtlpReceiver, make: ExporterFactory) -> None:
    receiver.fail_next(
        2, grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, http_status=429, retry_after=0.05
    )
    exporter = make(receiver)
    try:
        result, elapsed = _timed_export(exporter, [_small_span(1)])
    finally:
        exporter.shutdown()
    assert result is SpanExportResult.SUCCESS
    assert elapsed < 0.6  # 2 x 50 ms instead of ~1 s + ~2 s
    assert [r.accepted for r in receiver.requests] == [False, False, True]
    if make is _http_exporter:
        assert [r.status for r in receiver.requests] == ["429", "429", "200"]
    else:
        assert receiver.requests[0].status == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    ("make", "fault"),
    [
        (_grpc_exporter, {"grpc_code": grpc.StatusCode.INVALID_ARGUMENT}),
        (_grpc_exporter, {"grpc_code": grpc.StatusCode.UNAUTHENTICATED}),
        (_http_exporter, {"http_status": 400}),
        (_http_exporter, {"http_status": 401}),
        (_http_exporter, {"http_status": 500}),
    ],
    ids=["grpc-invalid-argument", "grpc-unauthenticated", "http-400", "http-401", "http-500"],
)
def test_fail_next_non_retryable_fails_fast(
    receiver: OtlpReceiver, make: ExporterFactory, fault: dict[str, Any]
) -> None:
    receiver.fail_next(1, **fault)
    exporter = make(receiver)
    try:
        result, elapsed = _timed_export(exporter, [_small_span(1)])
        assert result is SpanExportResult.FAILURE
        assert elapsed < 0.5
        (req,) = receiver.requests
        assert not req.accepted and req.n_spans == 1
        assert receiver.spans == []
        # budget used up: the next export goes through
        assert exporter.export([_small_span(2)]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [s.name for s in receiver.spans] == ["span-2"]


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_set_failing_exhausts_retries(receiver: OtlpReceiver, make: ExporterFactory) -> None:
    receiver.set_failing(True)
    exporter = make(receiver)
    try:
        result, elapsed = _timed_export(exporter, [_small_span(1)])
        assert result is SpanExportResult.FAILURE
        assert 0.7 < elapsed < 1.8  # attempt, ~1 s backoff, attempt, next backoff > deadline
        assert [r.accepted for r in receiver.requests] == [False, False]
        receiver.set_failing(False)
        assert exporter.export([_small_span(2)]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [s.name for s in receiver.spans] == ["span-2"]


def test_http_fault_response_is_well_formed(receiver: OtlpReceiver) -> None:
    receiver.fail_next(1, http_status=503, retry_after=7, message="backend overloaded")
    body = trace_service_pb2.ExportTraceServiceRequest().SerializeToString()
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=5)
    try:
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        resp = conn.getresponse()
        payload = resp.read()
        assert resp.status == 503
        assert resp.getheader("Retry-After") == "7"
        assert resp.getheader("Content-Type") == "application/x-protobuf"
        assert int(resp.getheader("Content-Length", "-1")) == len(payload)
        status = status_pb2.Status.FromString(payload)
        assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
        assert status.message == "backend overloaded"
        # same keep-alive connection serves the next request
        conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert trace_service_pb2.ExportTraceServiceResponse.FromString(resp.read()) == (
            trace_service_pb2.ExportTraceServiceResponse()
        )
    finally:
        conn.close()


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_pause_resume_same_ports(receiver: OtlpReceiver) -> None:
    grpc_port, http_port = receiver.grpc_port, receiver.http_port
    gexp, hexp = _grpc_exporter(receiver), _http_exporter(receiver)
    try:
        # warm up: pooled HTTP keep-alive connection + connected gRPC channel
        assert gexp.export([_small_span(1)]) is SpanExportResult.SUCCESS
        assert hexp.export([_small_span(2)]) is SpanExportResult.SUCCESS

        receiver.pause()
        assert receiver.paused
        assert _refused(grpc_port) and _refused(http_port)
        # the keep-alive connection was dropped too, so exports really fail
        h_result, h_elapsed = _timed_export(hexp, [_small_span(3)])
        g_result, g_elapsed = _timed_export(gexp, [_small_span(4)])
        assert h_result is SpanExportResult.FAILURE
        assert g_result is SpanExportResult.FAILURE
        assert h_elapsed < 1.8 and g_elapsed < 1.8

        receiver.resume()
        assert (receiver.grpc_port, receiver.http_port) == (grpc_port, http_port)
        assert not _refused(grpc_port) and not _refused(http_port)
        assert hexp.export([_small_span(5)]) is SpanExportResult.SUCCESS
        # the gRPC channel may still be in reconnect backoff: the SDK retries once (~1 s)
        assert gexp.export([_small_span(6)]) is SpanExportResult.SUCCESS
    finally:
        gexp.shutdown()
        hexp.shutdown()
    assert sorted(s.name for s in receiver.spans) == ["span-1", "span-2", "span-5", "span-6"]
    assert all(r.accepted for r in receiver.requests)


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_max_request_bytes_forces_smaller_batches(
    receiver: OtlpReceiver, make: ExporterFactory
) -> None:
    batch = [_small_span(i, payload="x" * 400) for i in range(10)]
    receiver.set_max_request_bytes(2_000)
    exporter = make(receiver)
    try:
        result, elapsed = _timed_export(exporter, batch)
        assert result is SpanExportResult.FAILURE
        rejected = receiver.requests
        assert rejected and not any(r.accepted for r in rejected)
        assert all(r.uncompressed_bytes > 2_000 and r.n_spans == 10 for r in rejected)
        if make is _http_exporter:
            assert [r.status for r in rejected] == ["413"]  # not retryable: fails at once
            assert elapsed < 0.5
        else:
            # RESOURCE_EXHAUSTED is retryable for the gRPC exporter: 2 attempts in ~1 s
            assert {r.status for r in rejected} == {"RESOURCE_EXHAUSTED"}
            assert len(rejected) == 2
        # a caller that splits the batch gets through
        for part in (batch[:3], batch[3:6], batch[6:9], batch[9:]):
            assert exporter.export(part) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert sorted(s.attributes["i"] for s in receiver.spans) == list(range(10))
    receiver.set_max_request_bytes(None)


def test_partial_success_grpc_and_http(receiver: OtlpReceiver) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        name="raw",
    )
    receiver.partial_success(1, "span too old")
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        resp = stub.Export(request, timeout=5)
        assert resp.partial_success.rejected_spans == 1
        assert resp.partial_success.error_message == "span too old"
        resp = stub.Export(request, timeout=5)  # only the next response
        assert not resp.HasField("partial_success")

    receiver.partial_success(2, "quota")
    conn = http.client.HTTPConnection("127.0.0.1", receiver.http_port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/traces",
            request.SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )
        r = conn.getresponse()
        assert r.status == 200
        parsed = trace_service_pb2.ExportTraceServiceResponse.FromString(r.read())
        assert parsed.partial_success.rejected_spans == 2
        assert parsed.partial_success.error_message == "quota"
    finally:
        conn.close()
    assert [s.name for s in receiver.spans] == ["raw", "raw", "raw"]


# --------------------------------------------------------------------------- raw HTTP


def _post(
    rx: OtlpReceiver, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", rx.http_port, timeout=5)
    try:
        conn.request(method, path, body, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_http_otlp_json_with_hex_ids(receiver: OtlpReceiver) -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "json-scope", "version": "2"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "json span",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "a", "value": {"boolValue": True}}
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "b", "value": {"bytesValue": "AAE="}},
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "unknownFutureField": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    body = gzip.compress(json.dumps(doc).encode())
    status, headers, payload = _post(
        receiver,
        "/v1/traces",
        body,
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(payload) == {}
    (span,) = receiver.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind == "CLIENT"
    assert span.start_ns == 1544712660000000000
    assert span.attributes == {"n": 42, "kv": {"a": True}, "b": b"\x00\x01"}
    assert (span.status_code, span.status_message) == ("ERROR", "boom")
    assert (span.scope_name, span.scope_version, span.resource) == (
        "json-scope",
        "2",
        {"service.name": "svc"},
    )
    assert span.protocol == "http"


def test_http_raw_deflate_and_error_statuses(receiver: OtlpReceiver) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="deflated"
    )
    raw = request.SerializeToString()
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, no zlib header
    body = compressor.compress(raw) + compressor.flush()
    pb = {"Content-Type": "application/x-protobuf"}
    assert _post(receiver, "/v1/traces", body, {**pb, "Content-Encoding": "deflate"})[0] == 200
    assert [s.name for s in receiver.spans] == ["deflated"]

    assert _post(receiver, "/v1/logs", raw, pb)[0] == 404
    assert _post(receiver, "/v1/traces", raw, {"Content-Type": "text/plain"})[0] == 415
    assert _post(receiver, "/v1/traces", raw, {**pb, "Content-Encoding": "br"})[0] == 415
    assert _post(receiver, "/v1/traces", b"\xff\xff\xff", pb)[0] == 400
    assert _post(receiver, "/v1/traces", b"", pb, method="GET")[0] == 405
    statuses = [(r.path, r.status, r.accepted) for r in receiver.requests]
    assert statuses == [
        ("/v1/traces", "200", True),
        ("/v1/logs", "404", False),
        ("/v1/traces", "415", False),
        ("/v1/traces", "415", False),
        ("/v1/traces", "400", False),
    ]
    assert len(receiver.spans) == 1


def test_grpc_binary_metadata_is_base64(receiver: OtlpReceiver) -> None:
    request = trace_service_pb2.ExportTraceServiceRequest()
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.Export(request, metadata=(("x-key-bin", b"\x00\xff"), ("x-plain", "v")), timeout=5)
    (req,) = receiver.requests
    assert req.headers["x-key-bin"] == base64.b64encode(b"\x00\xff").decode()
    assert req.headers["x-plain"] == "v"
    assert req.n_spans == 0 and req.accepted


# --------------------------------------------------------------------------- metrics


def _collect_metrics() -> Any:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("letta_otel.metrics", "0.1.0")
    tokens = meter.create_counter("gen_ai.client.token.usage.total", unit="{token}")
    tokens.add(10, {"gen_ai.token.type": "input"})
    tokens.add(5, {"gen_ai.token.type": "input"})
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    for v in (0.2, 1.5, 30.0):
        duration.record(v, {"gen_ai.operation.name": "chat"})
    inflight = meter.create_up_down_counter("letta.runs.inflight")
    inflight.add(3)
    inflight.add(-1)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


@pytest.mark.parametrize(
    "make",
    [
        lambda rx: GrpcMetricExporter(
            endpoint=rx.grpc_endpoint, insecure=True, timeout=EXPORT_TIMEOUT
        ),
        lambda rx: HttpMetricExporter(
            endpoint=rx.http_metrics_url, timeout=EXPORT_TIMEOUT, compression=HttpCompression.Gzip
        ),
    ],
    ids=["grpc", "http"],
)
def test_metrics_round_trip(receiver: OtlpReceiver, make: Callable[[OtlpReceiver], Any]) -> None:
    exporter = make(receiver)
    try:
        assert exporter.export(_collect_metrics()) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
    by_name = {m.name: m for m in receiver.wait_for_metrics("gen_ai.client.operation.duration")}
    hist = by_name["gen_ai.client.operation.duration"]
    metrics = receiver.metrics_by_name()
    (counter,) = metrics["gen_ai.client.token.usage.total"]
    (updown,) = metrics["letta.runs.inflight"]

    assert counter.type == "sum" and counter.is_monotonic is True
    assert counter.unit == "{token}"
    assert counter.aggregation_temporality == "CUMULATIVE"
    assert [(p.attributes, p.value) for p in counter.data_points] == [
        ({"gen_ai.token.type": "input"}, 15)
    ]
    assert counter.resource == dict(RESOURCE.attributes)
    assert (counter.scope_name, counter.scope_version) == ("letta_otel.metrics", "0.1.0")

    assert hist.type == "histogram" and hist.unit == "s"
    (point,) = hist.data_points
    assert point.attributes == {"gen_ai.operation.name": "chat"}
    assert point.count == 3
    assert point.sum == pytest.approx(31.7)
    assert (point.min, point.max) == (0.2, 30.0)
    assert len(point.bucket_counts) == len(point.explicit_bounds) + 1
    assert sum(point.bucket_counts) == 3

    assert updown.type == "sum" and updown.is_monotonic is False
    assert [p.value for p in updown.data_points] == [2]

    (req,) = receiver.requests
    assert req.signal == "metrics" and req.n_data_points == 3 and req.n_spans == 0
    assert req.protocol == hist.protocol


@pytest.mark.parametrize("make", [_grpc_exporter, _http_exporter], ids=["grpc", "http"])
def test_arrival_times_are_recorded(receiver: OtlpReceiver, make: ExporterFactory) -> None:
    """Each span and metric knows when its request arrived (for lag measurements), and
    the stamps stay out of equality."""
    exporter = make(receiver)
    try:
        before, before_wall = time.monotonic(), time.time()
        assert exporter.export([_small_span(1)]) is SpanExportResult.SUCCESS
        after, after_wall = time.monotonic(), time.time()
        time.sleep(0.05)
        assert exporter.export([_small_span(2)]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    first, second = sorted(receiver.wait_for_spans(2, timeout=5), key=lambda s: s.name)
    assert before <= first.received_at <= after
    assert before_wall <= first.received_wall <= after_wall
    assert second.received_at >= first.received_at + 0.05
    (req, _) = receiver.requests
    assert (req.received_at, req.received_wall) == (first.received_at, first.received_wall)
    assert dataclasses.replace(first, received_at=0.0, received_wall=0.0) == first

    metric_exporter = GrpcMetricExporter(
        endpoint=receiver.grpc_endpoint, insecure=True, timeout=EXPORT_TIMEOUT
    )
    try:
        sent = time.time()
        assert metric_exporter.export(_collect_metrics()) is MetricExportResult.SUCCESS
    finally:
        metric_exporter.shutdown()
    metrics = receiver.wait_for_metrics("gen_ai.client.operation.duration")
    assert all(sent <= m.received_wall <= time.time() for m in metrics)


# --------------------------------------------------------------------------- lifecycle


def test_loopback_only_and_stop_is_idempotent() -> None:
    rx = OtlpReceiver().start()
    grpc_port, http_port = rx.grpc_port, rx.http_port
    assert rx.grpc_endpoint == f"http://127.0.0.1:{grpc_port}"
    assert rx.http_endpoint == f"http://127.0.0.1:{http_port}"
    assert rx.http_traces_url == f"http://127.0.0.1:{http_port}/v1/traces"
    for port in (grpc_port, http_port):
        # a wildcard (0.0.0.0) listener would also accept on 127.0.0.2
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=1).close()
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    rx.stop()
    rx.stop()
    assert _refused(grpc_port) and _refused(http_port)
    with pytest.raises(RuntimeError):
        rx.pause()
