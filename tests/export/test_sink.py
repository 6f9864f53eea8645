"""The span sink: the SDK exporters, built from the settings, against a real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from letta_otel.config import Settings
from letta_otel.export.sink import build_sink
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.mapping.test_spans import map_scenario
from tests.samples import SCENARIOS


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def _settings(receiver: OtlpReceiver, protocol: str, **extra: object) -> Settings:
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_traces_url
    return Settings(
        otlp_protocol=protocol,  # type: ignore[arg-type]
        otlp_traces_endpoint=endpoint,
        otlp_timeout=5.0,
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_spans_arrive_whole_through_the_sdk_exporters(
    receiver: OtlpReceiver, protocol: str, compression: str
) -> None:
    spans = [s for name in SCENARIOS[:3] for s in map_scenario(name)]
    sink = build_sink(_settings(receiver, protocol, otlp_compression=compression))
    try:
        assert sink.export(spans) is True
    finally:
        sink.shutdown()
    got = receiver.spans_by_id()
    assert len(got) == len(spans)
    for span in spans:
        assert span.context is not None
        received = got[f"{span.context.span_id:016x}"]
        assert received.name == span.name
        assert received.attributes == dict(span.attributes or {})


def test_a_grpc_export_is_one_attempt_even_on_a_code_the_sdk_would_retry(
    receiver: OtlpReceiver,
) -> None:
    """The daemon retries whole cycles with backoff; inside an export the SDK must not
    retry, or its last attempt gets only what is left of the timeout (an answer that
    comes late then reads as a failure and the batch is sent twice)."""
    spans = map_scenario(SCENARIOS[0])
    sink = build_sink(_settings(receiver, "grpc"))
    try:
        for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
            receiver.fail_next(1, grpc_code=code, retry_after=0.05)
            before = len(receiver.requests)
            assert sink.export(spans) is False
            assert len(receiver.requests) == before + 1, code
        assert sink.export(spans) is True
    finally:
        sink.shutdown()
    assert [r.accepted for r in receiver.requests] == [False, False, True]
