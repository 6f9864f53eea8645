"""Load the real Letta 0.16.8 samples (tests/fixtures/letta-samples) as typed records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from letta_otel.letta.models import Agent, Message, ProviderTrace, Run, Step, StepMetrics, convert
from letta_otel.mapping.records import RunRecord, StepRecord

SAMPLES = Path(__file__).parent / "fixtures" / "letta-samples"
SCENARIOS = sorted(p.name for p in (SAMPLES / "scenarios").iterdir() if p.is_dir())
V1_AGENT_ID = "agent-9dda9200-eb2f-424e-b1b0-4fbc98fe2fe5"
MEMGPT_AGENT_ID = "agent-df73fa68-abaa-4d0c-8a06-b4df607e0381"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def agent_for(agent_id: str | None) -> Agent | None:
    if agent_id == V1_AGENT_ID:
        return convert(Agent, read_json(SAMPLES / "agent_v1.json"))
    if agent_id == MEMGPT_AGENT_ID:
        return Agent(id=agent_id, name="otel-demo-memgpt", agent_type="memgpt_v2_agent")
    return None


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Run
    agent: Agent | None
    steps: tuple[StepRecord, ...]

    @property
    def run_record(self) -> RunRecord:
        return RunRecord(self.run, self.agent)


def load_scenario(name: str) -> Scenario:
    folder = SAMPLES / "scenarios" / name
    run_file = next(p for p in folder.glob("run_run-*.json") if p.stem.count("_") == 1)
    run = convert(Run, read_json(run_file))
    agent = agent_for(run.agent_id)
    records = []
    for step_file in sorted(folder.glob("step*_step-*.json")):
        if step_file.stem.count("_") != 1:
            continue  # _trace/_metrics/_messages companions
        stem = step_file.with_suffix("")
        step = convert(Step, read_json(step_file))
        trace_raw = read_json(Path(f"{stem}_trace.json"))
        records.append(
            StepRecord(
                step=step,
                trace=convert(ProviderTrace, trace_raw) if trace_raw else None,
                metrics=convert(StepMetrics, read_json(Path(f"{stem}_metrics.json"))),
                messages=tuple(
                    convert(Message, m) for m in read_json(Path(f"{stem}_messages.json"))
                ),
                run=run,
                agent=agent,
            )
        )
    return Scenario(name, run, agent, tuple(records))
