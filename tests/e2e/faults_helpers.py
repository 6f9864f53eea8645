"""Helpers for the fault-injection proofs in ``test_faults.py``.

* ``Daemon`` / ``running_daemon``: ``letta-otel run`` as a subprocess whose log goes to a
  file (a pipe would fill up and block a chatty DEBUG daemon), always killed on the way out.
* ``wait_until``: a bounded wait that names what it waited for and shows the daemon log.
* ``SlowAnswers``: a proxy that makes the OTLP/HTTP backend confirm after the timeout.
* ``measure`` + ``assert_exactly_once``: the invariant every scenario ends with (each
  terminal step and each terminal run exactly once, the span tree intact), its numbers
  recorded as one ``FAULT-SCENARIO`` line for the issue's closing note.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.e2e.conftest import REPO, BridgeEnv, isolated_environ, run_spans, step_spans
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedRequest, ReceivedSpan

# The test's own notion of "finished" (Letta's terminal run statuses), not the bridge's.
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})

# What every daemon in these tests runs with unless a scenario says otherwise: fast polls
# and short waits, so a scenario takes seconds. The failed streamed sample step never gets
# a provider trace and waits out the grace.
FAST_ENV = {
    "LETTA_OTEL_POLL_INTERVAL": "0.2",
    "LETTA_OTEL_ENRICH_GRACE": "1s",
    "LETTA_OTEL_LETTA_TIMEOUT": "5",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
}

RESULTS: list[str] = []  # one FAULT-SCENARIO line per scenario run, printed at the end


# ---------------------------------------------------------------------------------------
# the daemon as a process
# ---------------------------------------------------------------------------------------


class Daemon:
    """``letta-otel run`` in a subprocess; stderr (the log) goes to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("a", encoding="utf-8")
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            [sys.executable, "-m", "letta_otel", "run"],
            env=isolated_environ(env),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait (killed if it does not exit in time); the exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"daemon did not stop; log:\n{self.tail()}") from None
        finally:
            self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL (no clean-up at all: the crash the state file must survive)."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        finally:
            self._log.close()


@contextmanager
def running_daemon(bridge_env: BridgeEnv, log_path: Path, **env: str) -> Iterator[Daemon]:
    """A daemon on ``bridge_env`` with ``FAST_ENV`` + ``env``; killed on the way out."""
    daemon = Daemon(bridge_env.env(**{**FAST_ENV, **env}), log_path)
    try:
        yield daemon
    finally:
        daemon.kill()


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, daemon: Daemon | None = None
) -> None:
    """Poll ``check`` until true; fail naming ``what`` (and show the log) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if daemon is not None and not daemon.alive:
            raise AssertionError(
                f"daemon exited ({daemon.proc.returncode}) while waiting for {what}; "
                f"log:\n{daemon.tail()}"
            )
        time.sleep(0.05)
    log = f"; daemon log:\n{daemon.tail()}" if daemon is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")


def add_run_in_order(data: FakeLettaData, scenario: str) -> str:
    """A finished run whose steps are newer than every step the fake already holds.

    ``add_run``'s default ("finished just now") dates a run's steps up to 3.5 s back, which
    for the steps cursor is a late commit, found only by the once-a-minute re-read; the
    scenarios that are not about late commits add work in order with this.
    """
    newest = max(
        (data.created_at(s) for s in data.step_ids(include_hidden=True)),
        default=datetime.now(UTC),
    )
    start = max(datetime.now(UTC), newest + timedelta(milliseconds=1))
    return data.add_run(scenario, created_at=start)


def listing_path(letta: FakeLettaServer) -> str:
    """The request every poll cycle starts with, on this server's discovery path."""
    return r"^/v1/steps/$" if letta.steps_route == "ok" else r"^/v1/runs/$"


def listings(letta: FakeLettaServer) -> int:
    """Discovery listings so far (the feedback counter's ``has_feedback`` listing excluded)."""
    path = re.compile(listing_path(letta))
    return sum(1 for r in letta.requests if path.search(r.path) and "has_feedback" not in r.query)


def wait_cycles(letta: FakeLettaServer, n: int, daemon: Daemon, timeout: float = 15) -> None:
    """Wait until the daemon started ``n`` more poll cycles (listing requests)."""
    target = listings(letta) + n
    wait_until(lambda: listings(letta) >= target, timeout, f"{n} more poll cycles", daemon)


class SlowAnswers:
    """A TCP proxy to the receiver's OTLP/HTTP port that holds every answer back for
    ``delay`` seconds (settable at any time): a backend that accepts a request at once but
    confirms it only after the client's OTLP timeout."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.delay = delay
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._lock:
            for sock in [self._listener, *self._sockets]:
                with contextlib.suppress(OSError):
                    sock.close()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream), timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            pumps = [
                threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True),
                threading.Thread(target=self._pump, args=(upstream, client, 1.0), daemon=True),
            ]
            with self._lock:
                self._sockets += [client, upstream]
                self._threads += pumps
            for pump in pumps:
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: float) -> None:
        try:
            while chunk := src.recv(65536):
                if slow and self.delay > 0:
                    self._stop.wait(self.delay)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


# ---------------------------------------------------------------------------------------
# what was delivered
# ---------------------------------------------------------------------------------------


def exported_steps(receiver: OtlpReceiver) -> Counter[str]:
    """``letta.step.id`` of every ``agent_step`` span the receiver accepted."""
    return Counter(str(s.attributes["letta.step.id"]) for s in step_spans(receiver.spans))


def exported_runs(receiver: OtlpReceiver) -> Counter[str]:
    return Counter(str(s.attributes["letta.run.id"]) for s in run_spans(receiver.spans))


def terminal_run_ids(data: FakeLettaData) -> set[str]:
    return {r["id"] for r in data.runs() if r["status"] in TERMINAL_RUN_STATUSES}


def delivered(receiver: OtlpReceiver, data: FakeLettaData, exclude: Iterable[str] = ()) -> bool:
    """Every expected terminal step and terminal run has arrived (at least once)."""
    want = set(data.expected_terminal_step_ids()) - set(exclude)
    return want <= set(exported_steps(receiver)) and terminal_run_ids(data) <= set(
        exported_runs(receiver)
    )


def state_rows(state_path: Path, table: str = "steps") -> dict[str, str]:
    """``{id: state}`` of the state file's ``steps`` or ``runs`` table (read-only look)."""
    key = "step_id" if table == "steps" else "run_id"
    if not state_path.exists():
        return {}  # the daemon has not started yet (connecting here would create the file)
    db = sqlite3.connect(state_path, timeout=10)
    try:
        rows = db.execute(f"SELECT {key}, state FROM {table}").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}  # the daemon is starting: file created, tables not yet
        raise
    finally:
        db.close()
    return {str(k): str(v) for k, v in rows}


def exported_in_state(state_path: Path) -> set[str]:
    return {k for k, v in state_rows(state_path).items() if v == "exported"}


def accepted_batches(receiver: OtlpReceiver) -> list[tuple[ReceivedRequest, list[ReceivedSpan]]]:
    """Accepted trace requests with their spans (the receiver stores both in one order)."""
    spans = receiver.spans
    out: list[tuple[ReceivedRequest, list[ReceivedSpan]]] = []
    pos = 0
    for req in receiver.requests:
        if req.accepted and req.signal == "traces":
            out.append((req, spans[pos : pos + req.n_spans]))
            pos += req.n_spans
    assert pos == len(spans), f"requests account for {pos} spans, receiver holds {len(spans)}"
    return out


def arrival(receiver: OtlpReceiver, step_id: str) -> float:
    """``time.monotonic()`` at which the first batch carrying the step's span was accepted."""
    for request, spans in accepted_batches(receiver):
        if any(s.attributes.get("letta.step.id") == step_id for s in step_spans(spans)):
            return request.received_at
    raise AssertionError(f"step {step_id} never arrived")


@dataclass
class Delivery:
    """The numbers of one scenario (steps and runs the fake serves as terminal)."""

    name: str
    expected: int
    exported: int  # distinct step ids the receiver accepted
    duplicated: int  # step spans accepted more than once (extra copies)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    runs_expected: int = 0
    runs_exported: int = 0
    runs_duplicated: int = 0
    runs_missing: list[str] = field(default_factory=list)
    runs_unexpected: list[str] = field(default_factory=list)
    tree_errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        extra = ""
        if self.missing or self.unexpected:
            extra += f" missing={len(self.missing)} unexpected={len(self.unexpected)}"
        return (
            f"FAULT-SCENARIO {self.name}: expected={self.expected} exported={self.exported} "
            f"duplicated={self.duplicated}{extra} runs_expected={self.runs_expected} "
            f"runs_exported={self.runs_exported} runs_duplicated={self.runs_duplicated}"
        )


def measure(
    name: str,
    receiver: OtlpReceiver,
    data: FakeLettaData,
    *,
    exclude: Iterable[str] = (),
) -> Delivery:
    """Compare what the receiver accepted with what the fake serves; record the line."""
    spans = receiver.spans
    want = set(data.expected_terminal_step_ids()) - set(exclude)
    got = Counter(str(s.attributes["letta.step.id"]) for s in step_spans(spans))
    runs_want = terminal_run_ids(data)
    runs_got = Counter(str(s.attributes["letta.run.id"]) for s in run_spans(spans))
    result = Delivery(
        name=name,
        expected=len(want),
        exported=len(got),
        duplicated=sum(got.values()) - len(got),
        missing=sorted(want - set(got)),
        unexpected=sorted(set(got) - want),
        runs_expected=len(runs_want),
        runs_exported=len(runs_got),
        runs_duplicated=sum(runs_got.values()) - len(runs_got),
        runs_missing=sorted(runs_want - set(runs_got)),
        runs_unexpected=sorted(set(runs_got) - runs_want),
        tree_errors=tree_errors(spans, data),
    )
    RESULTS.append(result.line())
    print(result.line())
    if result.duplicated or result.runs_duplicated:
        print(timeline(receiver))
    return result


def timeline(receiver: OtlpReceiver) -> str:
    """Every export request the receiver saw, for a failure message."""
    first = min((r.received_at for r in receiver.requests), default=0.0)
    return "\n".join(
        f"  +{r.received_at - first:7.3f}s {r.protocol} status={r.status} accepted={r.accepted}"
        f" spans={r.n_spans} bytes={r.uncompressed_bytes}"
        for r in receiver.requests
    )


def tree_errors(spans: list[ReceivedSpan], data: FakeLettaData) -> list[str]:
    """Broken links: a step span not under its terminal run's root, a child not under a step."""
    roots = {str(s.attributes["letta.run.id"]): s for s in run_spans(spans)}
    step_ids = {s.span_id for s in step_spans(spans)}
    terminal = terminal_run_ids(data)
    errors: list[str] = []
    for span in step_spans(spans):
        step_id = str(span.attributes["letta.step.id"])
        run_id = data.step(step_id)["run_id"]
        if run_id not in terminal:
            continue
        root = roots.get(run_id)
        if root is None:
            errors.append(f"{step_id}: run {run_id} is terminal but has no root span")
        elif (span.parent_span_id, span.trace_id) != (root.span_id, root.trace_id):
            errors.append(f"{step_id}: parent {span.parent_span_id} is not run root {root.span_id}")
    for span in spans:
        if span.name.startswith(("chat ", "execute_tool")) and span.parent_span_id not in step_ids:
            errors.append(f"{span.name} {span.span_id}: parent is not an exported step span")
    return errors


def assert_exactly_once(result: Delivery) -> None:
    """The invariant: each terminal step and run exactly once, span tree intact."""
    assert not result.missing, f"steps never exported: {result.missing}"
    assert not result.unexpected, f"steps exported that are not terminal: {result.unexpected}"
    assert result.duplicated == 0, f"{result.duplicated} step spans exported twice"
    assert not result.runs_missing, f"run roots never exported: {result.runs_missing}"
    assert not result.runs_unexpected, f"non-terminal runs exported: {result.runs_unexpected}"
    assert result.runs_duplicated == 0, f"{result.runs_duplicated} run roots exported twice"
    assert not result.tree_errors, result.tree_errors
