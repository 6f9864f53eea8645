"""What filters and sampling save: spans sent and Letta requests made for one pass.

    python -m tests.selection.measure [N_RUNS]

Runs ``letta-otel run --once`` in-process against the fake Letta API (N generated runs,
random scenario mix) and the OTLP receiver, on both discovery paths, per configuration.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

from letta_otel import cli
from tests.fakes.letta_api import FakeLettaData, FakeLettaServer
from tests.fakes.otlp_receiver import OtlpReceiver

CONFIGS: dict[str, dict[str, str]] = {
    "everything": {},
    "sample 1/4": {"LETTA_OTEL_SAMPLE_RATIO": "0.25"},
    "sample 1/10": {"LETTA_OTEL_SAMPLE_RATIO": "0.1"},
    "sample 0 (failures)": {"LETTA_OTEL_SAMPLE_RATIO": "0"},
    "one agent": {"LETTA_OTEL_FILTER_AGENT_IDS": "agent-df73fa68-abaa-4d0c-8a06-b4df607e0381"},
    "failed steps only": {"LETTA_OTEL_FILTER_STEP_STATUSES": "failed"},
}


def measure(n_runs: int) -> None:
    print(f"{n_runs} runs (random mix, seed 1); one `run --once` pass each")
    print(f"{'config':22} {'path':6} {'spans':>6} {'letta requests':>15} {'seconds':>8}")
    for name, env in CONFIGS.items():
        for route in ("ok", "legacy400"):
            data = FakeLettaData.generate(n_runs, mix="random", seed=1)
            with (
                FakeLettaServer(data, steps_route=route) as letta,  # type: ignore[arg-type]
                OtlpReceiver() as receiver,
                tempfile.TemporaryDirectory() as tmp,
            ):
                for key in [k for k in os.environ if k.startswith(("LETTA_", "OTEL_"))]:
                    del os.environ[key]
                os.environ.update(
                    LETTA_BASE_URL=letta.base_url,
                    OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
                    LETTA_OTEL_STATE_PATH=str(Path(tmp) / "s.db"),
                    LETTA_OTEL_LOG_LEVEL="ERROR",
                    **env,
                )
                started = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):
                    code = cli.main(["run", "--once"])
                took = time.perf_counter() - started
                assert code == 0, code
                path = "steps" if route == "ok" else "runs"
                print(
                    f"{name:22} {path:6} {len(receiver.spans):>6} "
                    f"{len(letta.requests):>15} {took:>8.2f}"
                )


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
