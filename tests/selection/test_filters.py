"""Filters: AND across filters, OR within one, and push-down that never changes the result."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from letta_otel.letta.models import Run, Step, convert
from letta_otel.selection.filters import StepFilters, effective_status
from tests.fakes._letta_routes import StepFilter

AGENTS = (
    "agent-11111111-1111-4111-8111-111111111111",
    "agent-22222222-2222-4222-8222-222222222222",
)
MODELS = ("gpt-4o-mini", "claude-3-5", "fake-model")
HANDLES = ("openai/gpt-4o-mini", "anthropic/claude-3-5", "openai-proxy/fake-model")
PROJECTS = ("proj-a", "proj-b")
STATUSES = ("success", "failed", "cancelled", "pending")


def _step(**fields: Any) -> Step:
    base: dict[str, Any] = {
        "id": "step-00000000-0000-4000-8000-000000000000",
        "status": "success",
        "agent_id": AGENTS[0],
        "model": MODELS[0],
        "model_handle": HANDLES[0],
        "project_id": PROJECTS[0],
    }
    return convert(Step, {**base, **fields})


def test_empty_filters_match_everything_and_push_nothing() -> None:
    filters = StepFilters()
    assert not filters.active
    assert filters.matches(_step(agent_id=None, model=None, project_id=None))
    assert filters.steps_query() == {}
    assert filters.runs_query() == {}


@pytest.mark.parametrize(
    ("filters", "step", "expected"),
    [
        (StepFilters.of(agent_ids=[AGENTS[0]]), _step(), True),
        (StepFilters.of(agent_ids=[AGENTS[1]]), _step(), False),
        (StepFilters.of(agent_ids=AGENTS), _step(agent_id=AGENTS[1]), True),
        (StepFilters.of(agent_ids=AGENTS), _step(agent_id=None), False),
        (StepFilters.of(models=["gpt-4o-mini"]), _step(), True),
        # a handle is not a model name: model names are compared with step.model only
        (StepFilters.of(models=["openai/gpt-4o-mini"]), _step(), False),
        (StepFilters.of(model_handles=["openai/gpt-4o-mini"]), _step(), True),
        (StepFilters.of(model_handles=["openai/gpt-4o"]), _step(), False),
        (StepFilters.of(project_ids=["proj-a", "proj-b"]), _step(project_id="proj-b"), True),
        (StepFilters.of(project_ids=["proj-a"]), _step(project_id=None), False),
        (StepFilters.of(step_statuses=["failed"]), _step(status="failed"), True),
        (StepFilters.of(step_statuses=["FAILED"]), _step(status="failed"), True),
        (StepFilters.of(step_statuses=["failed"]), _step(status="success"), False),
        # AND across filters
        (
            StepFilters.of(agent_ids=[AGENTS[0]], models=["claude-3-5"]),
            _step(),
            False,
        ),
        (
            StepFilters.of(agent_ids=AGENTS, models=MODELS, step_statuses=["success"]),
            _step(),
            True,
        ),
    ],
)
def test_matches(filters: StepFilters, step: Step, expected: bool) -> None:
    assert filters.active
    assert filters.matches(step) is expected


def test_incomplete_is_its_own_status() -> None:
    pending = _step(status="pending")
    assert effective_status("pending", incomplete=True) == "incomplete"
    assert StepFilters.of(step_statuses=["incomplete"]).matches(pending, incomplete=True)
    assert not StepFilters.of(step_statuses=["incomplete"]).matches(pending)
    assert not StepFilters.of(step_statuses=["failed"]).matches(pending, incomplete=True)


def test_agent_tags_match_any_tag_and_unknown_tags_match_nothing() -> None:
    filters = StepFilters.of(agent_tags=["prod", "eu"])
    assert filters.needs_agent_tags
    assert filters.matches(_step(), agent_tags=["eu", "other"])
    assert not filters.matches(_step(), agent_tags=["staging"])
    assert not filters.matches(_step(), agent_tags=None)
    assert not filters.matches_tags(())
    assert StepFilters().matches_tags(None)


def test_push_down_takes_single_values_only() -> None:
    filters = StepFilters.of(
        agent_ids=[AGENTS[0]], models=["gpt-4o-mini"], project_ids=["proj-a"], model_handles=["x/y"]
    )
    assert filters.steps_query() == {
        "agent_id": AGENTS[0],
        "model": "gpt-4o-mini",
        "project_id": "proj-a",
    }
    assert filters.runs_query() == {"agent_id": AGENTS[0]}
    several = StepFilters.of(agent_ids=AGENTS, models=MODELS[:2], step_statuses=["failed"])
    assert several.steps_query() == {}
    assert several.runs_query() == {}


def test_runs_listing_predicate() -> None:
    filters = StepFilters.of(agent_ids=AGENTS)
    assert filters.keeps_run(Run(id="run-1", agent_id=AGENTS[1]))
    assert not filters.keeps_run(Run(id="run-2", agent_id="agent-other"))
    assert not filters.keeps_run(Run(id="run-3", agent_id=None))
    assert StepFilters.of(models=["m"]).keeps_run(Run(id="run-4"))


steps = st.builds(
    lambda agent, model, handle, project, status: _step(
        agent_id=agent, model=model, model_handle=handle, project_id=project, status=status
    ),
    st.sampled_from((*AGENTS, None)),
    st.sampled_from((*MODELS, None)),
    st.sampled_from((*HANDLES, None)),
    st.sampled_from((*PROJECTS, None)),
    st.sampled_from(STATUSES),
)
filter_sets = st.builds(
    StepFilters.of,
    agent_ids=st.sets(st.sampled_from(AGENTS), max_size=2),
    models=st.sets(st.sampled_from(MODELS), max_size=2),
    model_handles=st.sets(st.sampled_from(HANDLES), max_size=2),
    project_ids=st.sets(st.sampled_from(PROJECTS), max_size=2),
    step_statuses=st.sets(st.sampled_from(("success", "failed", "cancelled")), max_size=2),
)


def _reference(filters: StepFilters, step: Step) -> bool:
    """The documented rule, written out the long way."""
    checks = [
        (filters.agent_ids, step.agent_id),
        (filters.models, step.model),
        (filters.model_handles, step.model_handle),
        (filters.project_ids, step.project_id),
        (filters.step_statuses, step.status),
    ]
    return all(not allowed or value in allowed for allowed, value in checks)


@given(filter_sets, steps)
def test_matches_is_the_documented_rule(filters: StepFilters, step: Step) -> None:
    assert filters.matches(step) is _reference(filters, step)


@given(filter_sets, steps)
def test_push_down_never_changes_the_result(filters: StepFilters, step: Step) -> None:
    """What the server drops with the pushed query, the client would have dropped too."""
    query = filters.steps_query()
    server = StepFilter(
        agent_id=query.get("agent_id"), model=query.get("model"), project_id=query.get("project_id")
    )
    served = msgspec.to_builtins(step)
    assert (server.accepts(served) and filters.matches(step)) is filters.matches(step)
    if filters.runs_query():
        assert filters.matches(step) <= (step.agent_id == filters.runs_query()["agent_id"])
