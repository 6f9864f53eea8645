"""An OTLP/gRPC sink for the kit's Letta server's OWN telemetry (runs in the kit's venv).

Letta 0.16.8 fills ``Step.trace_id`` only while its own OpenTelemetry tracer is on, which
it turns on when ``LETTA_OTEL_EXPORTER_OTLP_ENDPOINT`` is set; that tracer then exports
over OTLP/gRPC. This sink accepts those exports on 127.0.0.1 so that the ids are filled and
the server logs no export errors. It answers every ``Export`` of the trace, metrics and
logs services with an empty response (an empty protobuf message is zero bytes), so it needs
nothing but grpcio to answer; with ``--out`` it also writes one JSON line per span (trace
id, span id, name, Letta's ``step_id`` attribute), decoded with opentelemetry-proto, which
Letta's own dependencies bring into the venv.

    python otlp_sink.py --port 14317 [--out letta-own-spans.jsonl]
"""

from __future__ import annotations

import argparse
import json
import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}


class Sink:
    def __init__(self, out: str | None) -> None:
        self.out = out
        self.lock = threading.Lock()

    def handler(self, signal: str) -> Any:
        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            if signal == "traces" and self.out:
                self.write_spans(request)
            return b""

        # No (de)serializers: the request arrives as bytes and b"" is the empty response.
        return grpc.unary_unary_rpc_method_handler(export)

    def write_spans(self, request: bytes) -> None:
        decoded = trace_service_pb2.ExportTraceServiceRequest.FromString(request)
        lines = []
        for resource_spans in decoded.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {kv.key: kv.value.string_value for kv in span.attributes}
                    lines.append(
                        json.dumps(
                            {
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex() or None,
                                "name": span.name,
                                "step_id": attributes.get("step_id") or None,
                            }
                        )
                    )
        with self.lock, open(self.out or "", "a") as handle:
            handle.writelines(line + "\n" for line in lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", default=None, help="append one JSON line per span received")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the sink binds to loopback only")
    sink = Sink(args.out)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    for service, signal in SERVICES.items():
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {"Export": sink.handler(signal)}),)
        )
    if server.add_insecure_port(f"{args.host}:{args.port}") == 0:
        parser.error(f"cannot bind {args.host}:{args.port}")
    server.start()
    print(f"OTLP/gRPC sink on {args.host}:{args.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
