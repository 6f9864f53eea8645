"""Which steps the operator wants exported: pure predicates and their server push-down.

Rule: every filter that is set must match (AND); within one filter, any listed value
matches (OR). An empty filter matches everything. Filters look at the step as Letta
serves it:

==================  ======================================================================
``agent_ids``       ``step.agent_id``
``agent_tags``      the step's agent carries any of the tags (``GET /v1/agents/{id}``)
``models``          ``step.model``, the model *name* (``gpt-4o-mini``)
``model_handles``   ``step.model_handle``, ``provider/model`` (``openai/gpt-4o-mini``)
``project_ids``     ``step.project_id`` (Letta Cloud; self-hosted steps have none)
``step_statuses``   ``success``, ``failed``, ``cancelled``, or ``incomplete`` (a step still
                    pending after ``pending_timeout``, exported as it is)
==================  ======================================================================

Push-down: ``GET /v1/steps/`` filters on ONE ``agent_id``, ONE ``model`` name and ONE
``project_id``; ``GET /v1/runs/`` on ONE ``agent_id``. A filter with exactly one value is
sent to the server (it then never lists what we would drop); with several values the
listing is unfiltered and the filter applies here, which costs nothing extra per dropped
step except its listing (never its enrichment). One listing per value would cost one
request per value per poll even when idle, and a cursor per value. The result is the same
either way: the server and this module apply the same predicate to the same fields.

Step statuses are never pushed to ``/v1/runs/?statuses=``: a run's status is not its
steps' (a failed run holds successful steps, and a run is ``running`` when listed while
its steps are still being written), so the status filter always applies per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from letta_otel.letta.models import Run, Step

INCOMPLETE = "incomplete"


def effective_status(status: str | None, *, incomplete: bool) -> str | None:
    """The status a filter compares: ``incomplete`` for a step given up on while pending."""
    return INCOMPLETE if incomplete else status


@dataclass(frozen=True)
class StepFilters:
    agent_ids: frozenset[str] = frozenset()
    agent_tags: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    model_handles: frozenset[str] = frozenset()
    project_ids: frozenset[str] = frozenset()
    step_statuses: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        *,
        agent_ids: Iterable[str] = (),
        agent_tags: Iterable[str] = (),
        models: Iterable[str] = (),
        model_handles: Iterable[str] = (),
        project_ids: Iterable[str] = (),
        step_statuses: Iterable[str] = (),
    ) -> StepFilters:
        return cls(
            frozenset(agent_ids),
            frozenset(agent_tags),
            frozenset(models),
            frozenset(model_handles),
            frozenset(project_ids),
            frozenset(s.lower() for s in step_statuses),
        )

    @property
    def active(self) -> bool:
        return any(
            (
                self.agent_ids,
                self.agent_tags,
                self.models,
                self.model_handles,
                self.project_ids,
                self.step_statuses,
            )
        )

    @property
    def needs_agent_tags(self) -> bool:
        return bool(self.agent_tags)

    def matches_fields(self, step: Step) -> bool:
        """Agent ids, model names, model handles and projects: the step's own fields."""
        return (
            _allows(self.agent_ids, step.agent_id)
            and _allows(self.models, step.model)
            and _allows(self.model_handles, step.model_handle)
            and _allows(self.project_ids, step.project_id)
        )

    def matches_tags(self, agent_tags: Iterable[str] | None) -> bool:
        """The step's agent carries one of the tags (no tags, or unknown: no match)."""
        return not self.agent_tags or not self.agent_tags.isdisjoint(agent_tags or ())

    def matches_static(self, step: Step, agent_tags: Iterable[str] | None = None) -> bool:
        """Everything but the status, which is only final once the step is."""
        return self.matches_fields(step) and self.matches_tags(agent_tags)

    def matches_status(self, status: str | None, *, incomplete: bool) -> bool:
        return _allows(self.step_statuses, effective_status(status, incomplete=incomplete))

    def matches(
        self, step: Step, *, incomplete: bool = False, agent_tags: Iterable[str] | None = None
    ) -> bool:
        """The whole filter on a finished (or given-up-on) step."""
        return self.matches_static(step, agent_tags) and self.matches_status(
            step.status, incomplete=incomplete
        )

    # --- push-down ----------------------------------------------------------------

    def steps_query(self) -> dict[str, str]:
        """Query parameters for ``GET /v1/steps/``: each filter that has exactly one value."""
        query: dict[str, str] = {}
        for name, values in (
            ("agent_id", self.agent_ids),
            ("model", self.models),
            ("project_id", self.project_ids),
        ):
            if len(values) == 1:
                query[name] = next(iter(values))
        return query

    def runs_query(self) -> dict[str, str]:
        """Query parameters for ``GET /v1/runs/``: the agent, when there is exactly one."""
        if len(self.agent_ids) == 1:
            return {"agent_id": next(iter(self.agent_ids))}
        return {}

    def keeps_run(self, run: Run) -> bool:
        """Runs fallback: is a listed run worth reading its steps? (several agent ids)"""
        return _allows(self.agent_ids, run.agent_id)


def _allows(allowed: frozenset[str], value: str | None) -> bool:
    return not allowed or value in allowed
