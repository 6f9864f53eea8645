"""`letta-otel run --once` over real sockets: fake Letta API → bridge → OTLP receiver.

Every test runs against both discovery paths (the working ``/v1/steps/`` route and
the stock server's HTTP 400 with the runs fallback) and checks what the receiver
decoded against the data the fake Letta served: ids, parentage, timestamps and
attribute values, not only counts.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from letta_otel import cli
from letta_otel.letta.enrich import Enricher, StepParts
from letta_otel.letta.models import RUN_TERMINAL_STATUSES, Run, Step
from letta_otel.mapping import ids
from letta_otel.mapping.records import StepRecord
from letta_otel.pipeline import steps as pipeline_steps
from letta_otel.state.store import StateStore
from tests.e2e.conftest import BridgeEnv, RunOnce, run_spans, step_spans
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer, parse_ts
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan


def _ns(text: str) -> int:
    moment = parse_ts(text)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _exported_step_ids(spans: list[ReceivedSpan]) -> Counter[str]:
    return Counter(str(s.attributes["letta.step.id"]) for s in step_spans(spans))


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_once_exports_every_terminal_step_exactly_once(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver, protocol: str
) -> None:
    bridge_env.protocol = protocol
    data = bridge_env.letta.data
    assert run_once() == 0
    spans = receiver.spans
    exported = _exported_step_ids(spans)
    assert set(exported) == set(data.expected_terminal_step_ids())
    assert max(exported.values()) == 1
    assert {s.attributes["letta.run.id"] for s in run_spans(spans)} == set(data.run_ids())
    assert all(r.protocol == protocol.split("/", maxsplit=1)[0] for r in receiver.requests)
    assert len(spans) == 43  # 10 runs + 14 steps + 13 LLM calls + 6 tool calls


def test_span_tree_ids_and_times_match_letta(
    run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer
) -> None:
    data = letta.data
    assert run_once() == 0
    by_id = receiver.spans_by_id()
    runs = {str(s.attributes["letta.run.id"]): s for s in run_spans(receiver.spans)}
    for run_id, run_span in runs.items():
        run = data.run(run_id)
        assert run_span.trace_id == run_id.removeprefix("run-").replace("-", "")
        assert run_span.parent_span_id is None
        assert run_span.kind == "CLIENT"
        assert run_span.start_ns == _ns(run["created_at"])
        assert run_span.end_ns == _ns(run["completed_at"])  # zone-less in Letta: UTC
        assert run_span.attributes["letta.run.status"] == run["status"]
        assert run_span.attributes["gen_ai.operation.name"] == "invoke_agent"
        assert run_span.attributes["gen_ai.agent.id"] == run["agent_id"]
        assert run_span.status_code == ("ERROR" if run["status"] == "failed" else "UNSET")
        assert run_span.resource["service.name"] == "letta"
        assert run_span.resource["letta_otel.id_scheme"] == "v1"

    for span in step_spans(receiver.spans):
        step = data.step(str(span.attributes["letta.step.id"]))
        parent = by_id[span.parent_span_id]  # type: ignore[index]
        assert parent is runs[step["run_id"]]
        assert span.trace_id == parent.trace_id
        assert span.span_id == ids.format_span_id(ids.span_id("step", step["id"]))
        for key, field in [
            ("letta.step.status", "status"),
            ("letta.step.stop_reason", "stop_reason"),
            ("letta.agent.id", "agent_id"),
            ("letta.trace_id", "trace_id"),
            ("letta.model_handle", "model_handle"),
            ("letta.provider.name", "provider_name"),
            ("letta.provider.category", "provider_category"),
        ]:
            assert span.attributes.get(key) == step[field], key
        assert span.status_code == ("ERROR" if step["status"] == "failed" else "UNSET")
        if step["status"] == "failed":
            assert span.attributes["error.type"] == step["error_type"]
            (event,) = span.events
            assert event.name == "exception"
            assert event.attributes["exception.message"] == step["error_data"]["message"]

    chats = [s for s in receiver.spans if s.name.startswith("chat ")]
    for chat in chats:
        step = data.step(str(chat.attributes["letta.step.id"]))
        trace = data.trace(step["id"])
        metrics = data.metrics(step["id"])
        assert by_id[chat.parent_span_id].name == "agent_step"  # type: ignore[index]
        assert chat.kind == "CLIENT"
        assert chat.attributes["gen_ai.usage.input_tokens"] == step["prompt_tokens"]
        assert chat.attributes["gen_ai.usage.output_tokens"] == step["completion_tokens"]
        assert chat.attributes["gen_ai.request.model"] == trace["request_json"]["model"]
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.end_ns == _ns(trace["created_at"])
        if metrics["llm_request_ns"]:
            assert chat.end_ns - chat.start_ns == metrics["llm_request_ns"]
    assert len(chats) == sum(1 for sid in data.step_ids() if data.trace(sid) is not None)


def test_restart_continues_where_it_stopped(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    data = bridge_env.letta.data
    assert run_once() == 0
    first = _exported_step_ids(receiver.spans)
    assert run_once() == 0  # nothing new: nothing sent
    assert _exported_step_ids(receiver.spans) == first

    for scenario in ("plain", "tool_two_steps", "fail_http500", "stream_fail", "memgpt_tool"):
        data.add_run(scenario)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(data.expected_terminal_step_ids())
    assert max(exported.values()) == 1


def test_pending_step_waits_until_terminal(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    data = bridge_env.letta.data
    run_id = next(r for r in data.run_ids() if len(data.run_step_ids(r)) == 2)
    pending = data.run_step_ids(run_id)[1]
    data.set_pending(pending)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert pending not in exported
    assert run_id not in {s.attributes["letta.run.id"] for s in run_spans(receiver.spans)}

    data.complete(pending)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert exported[pending] == 1
    assert max(exported.values()) == 1
    assert run_id in {s.attributes["letta.run.id"] for s in run_spans(receiver.spans)}


def test_failed_export_does_not_move_the_checkpoint(
    bridge_env: BridgeEnv, run_once: RunOnce, receiver: OtlpReceiver
) -> None:
    receiver.set_failing(True)
    assert run_once() == 1
    assert receiver.spans == []
    receiver.set_failing(False)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(bridge_env.letta.data.expected_terminal_step_ids())
    assert max(exported.values()) == 1


def test_batches_are_bounded(run_once: RunOnce, receiver: OtlpReceiver) -> None:
    assert run_once(LETTA_OTEL_MAX_BATCH_SPANS="5") == 0
    accepted = [r for r in receiver.requests if r.accepted]
    assert len(accepted) >= 43 // 5
    assert all(r.n_spans <= 5 for r in accepted)
    assert len(receiver.spans) == 43


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_batches_are_bounded_by_their_encoded_bytes(
    protocol: str, receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches are sized by the upper-bound estimate (the SDK exporters encode them once,
    # when they send them): no request is larger than the bound, the resource and scope
    # written once per request included.
    data = FakeLettaData.generate(150, spacing=timedelta(milliseconds=5))
    limit = 64 * 1024
    with FakeLettaServer(data) as letta:
        env = BridgeEnv(letta, receiver, tmp_path / "state.db", protocol=protocol)
        for key, value in env.env(LETTA_OTEL_MAX_BATCH_BYTES=str(limit)).items():
            monkeypatch.setenv(key, value)
        assert cli.main(["run", "--once"]) == 0
    accepted = [r for r in receiver.requests if r.accepted and r.signal == "traces"]
    assert len(accepted) > 3
    assert all(r.uncompressed_bytes or r.body_bytes for r in accepted)
    sizes = [r.uncompressed_bytes or r.body_bytes for r in accepted]
    assert max(sizes) <= limit
    # The estimate overshoots the encoding by about a tenth (tests/export/
    # test_request_size.py): batches still come close to the bound, whatever the protocol.
    assert sorted(sizes)[len(sizes) // 2] > limit * 0.75
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(data.expected_terminal_step_ids())
    assert max(exported.values()) == 1


def test_adopt_letta_trace_id(
    run_once: RunOnce, receiver: OtlpReceiver, letta: FakeLettaServer
) -> None:
    assert run_once(LETTA_OTEL_ADOPT_LETTA_TRACE_ID="true") == 0
    for span in step_spans(receiver.spans):
        step = letta.data.step(str(span.attributes["letta.step.id"]))
        assert span.trace_id == step["trace_id"]
    traces = receiver.traces()
    for run_span in run_spans(receiver.spans):
        # The run's root joins its steps' (Letta's own) trace.
        assert len(traces[run_span.trace_id]) > 1


def test_headers_compression_and_auth(
    bridge_env: BridgeEnv,
    run_once: RunOnce,
    receiver: OtlpReceiver,
    capfd: pytest.CaptureFixture[str],
) -> None:
    bridge_env.letta.api_key = "letta-secret-key-123"
    bridge_env.protocol = "http/protobuf"
    for run_id in bridge_env.letta.data.run_ids():
        bridge_env.letta.data.set_project_id(run_id, "proj-a")
    code = run_once(
        LETTA_API_KEY="letta-secret-key-123",
        LETTA_PROJECT="proj-a",
        OTEL_EXPORTER_OTLP_HEADERS="x-honeycomb-team=hc-secret-456,x-extra=1",
        OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
    )
    assert code == 0
    assert len(receiver.spans) == 43
    request = receiver.requests[0]
    assert request.headers["x-honeycomb-team"] == "hc-secret-456"
    assert request.compression == "gzip"
    letta_requests = bridge_env.letta.requests
    assert all(
        r.headers.get("authorization") == "Bearer letta-secret-key-123" for r in letta_requests
    )
    assert all(r.headers.get("x-project") == "proj-a" for r in letta_requests)
    out, err = capfd.readouterr()
    for secret in ("letta-secret-key-123", "hc-secret-456"):
        assert secret not in out + err
        for span in receiver.spans:
            assert secret not in repr(span.attributes)


def test_state_file_records_what_was_confirmed(bridge_env: BridgeEnv, run_once: RunOnce) -> None:
    assert run_once() == 0
    with sqlite3.connect(bridge_env.state_path) as db:
        rows = dict(db.execute("SELECT step_id, state FROM steps").fetchall())
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert set(rows) == set(bridge_env.letta.data.expected_terminal_step_ids())
    assert set(rows.values()) == {"exported"}


def test_initial_lookback_limits_the_first_poll(
    receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps_route: str
) -> None:
    old = FakeLettaData.from_samples(shift_to=datetime.now(UTC) - timedelta(hours=3))
    with FakeLettaServer(old, steps_route=steps_route) as server:  # type: ignore[arg-type]
        env = BridgeEnv(server, receiver, tmp_path / "s.db").env()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert cli.main(["run", "--once"]) == 0
        assert receiver.spans == []  # 3 h old, default lookback 1 h
        monkeypatch.setenv("LETTA_OTEL_STATE_PATH", str(tmp_path / "other.db"))
        assert cli.main(["run", "--once", "--initial-lookback", "4h"]) == 0
        assert len(receiver.spans) == 43


def test_an_unexpected_error_fetching_one_step_is_reported_and_retried(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # A bug met on odd data (simulated: our own with_messages raising for one step) must
    # not vanish as an unretrieved task exception nor lose the step: it is logged with
    # its traceback, fails the cycle, and the step is exported once the error is gone.
    victim = sorted(letta.data.expected_terminal_step_ids())[0]
    real = Enricher.with_messages

    async def broken(self: Enricher, step: Step, parts: StepParts) -> StepParts:
        if step.id == victim:
            raise TypeError("simulated bug")
        return await real(self, step, parts)

    monkeypatch.setattr(Enricher, "with_messages", broken)
    assert run_once() == 1
    log = capfd.readouterr().err
    assert f"fetching step {victim} failed unexpectedly" in log
    assert "TypeError: simulated bug" in log
    assert "never retrieved" not in log
    exported = _exported_step_ids(receiver.spans)
    assert victim not in exported
    assert set(exported) == set(letta.data.expected_terminal_step_ids()) - {victim}

    monkeypatch.setattr(Enricher, "with_messages", real)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(letta.data.expected_terminal_step_ids())
    assert max(exported.values()) == 1


def test_a_step_that_cannot_be_mapped_is_skipped_not_retried(  # noqa: PLR0917 - fixtures
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    bridge_env: BridgeEnv,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    victim = sorted(letta.data.expected_terminal_step_ids())[-1]
    real = pipeline_steps.map_step

    def broken(record: StepRecord, *args: Any, **kwargs: Any) -> Any:
        if record.step.id == victim:
            raise ValueError("simulated bad data")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(pipeline_steps, "map_step", broken)
    assert run_once() == 0  # a record we cannot use is skipped, not a failed cycle
    assert f"cannot map step {victim}; skipping it" in capfd.readouterr().err
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(letta.data.expected_terminal_step_ids()) - {victim}
    db = sqlite3.connect(bridge_env.state_path)
    try:
        (state,) = db.execute("SELECT state FROM steps WHERE step_id = ?", (victim,)).fetchone()
    finally:
        db.close()
    assert state == "skipped"
    monkeypatch.setattr(pipeline_steps, "map_step", real)
    assert run_once() == 0
    assert victim not in _exported_step_ids(receiver.spans)  # settled: not retried


def test_an_unexpected_error_fetching_one_run_is_reported_and_retried(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    victim = sorted(letta.data.run_ids())[0]
    real = Run.is_terminal

    def broken(run: Run) -> bool:
        if run.id == victim:
            raise KeyError("simulated bug")
        return run.status in RUN_TERMINAL_STATUSES

    monkeypatch.setattr(Run, "is_terminal", property(broken))
    assert run_once() == 1
    log = capfd.readouterr().err
    assert f"fetching run {victim} failed unexpectedly" in log
    assert "never retrieved" not in log
    assert victim not in {s.attributes["letta.run.id"] for s in run_spans(receiver.spans)}
    monkeypatch.setattr(Run, "is_terminal", real)
    assert run_once() == 0
    roots = Counter(str(s.attributes["letta.run.id"]) for s in run_spans(receiver.spans))
    assert roots[victim] == 1


def test_a_commit_that_fails_is_reported_and_its_batch_sent_again(
    run_once: RunOnce,
    receiver: OtlpReceiver,
    letta: FakeLettaServer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # The exporter's consumer outlives the cycles and nothing awaits it until shutdown:
    # a state file that fails to commit (disk full, say) must fail the cycle loudly, not
    # end the consumer with the batch's steps busy for good (a silent stall, `--once`
    # hanging). The batch the backend took goes out again later, with the same ids.
    real = StateStore.mark_exported
    calls = 0

    def failing_once(self: StateStore, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, **kwargs)

    monkeypatch.setattr(StateStore, "mark_exported", failing_once)
    assert run_once() == 1
    log = capfd.readouterr().err
    assert "committing a batch" in log and "database or disk is full" in log
    first = set(_exported_step_ids(receiver.spans))
    assert first  # the backend took the batch; the state did not record it

    monkeypatch.setattr(StateStore, "mark_exported", real)
    assert run_once() == 0
    exported = _exported_step_ids(receiver.spans)
    assert set(exported) == set(letta.data.expected_terminal_step_ids())
    # Only what the failed commit covered came twice, with identical ids.
    assert {sid for sid, n in exported.items() if n > 1} <= first
    assert max(exported.values()) <= 2
