"""Choosing what to export: operator filters, run-level sampling and sharding. Pure.

* :mod:`.filters` — which steps the operator wants (agent ids, agent tags, model names or
  handles, projects, step statuses), plus the query parameters that push a filter down
  to the Letta server where its routes support it.
* :mod:`.sampling` — keep a deterministic share of successful runs, every run with a
  failure whole.
* :mod:`.policy` — both applied to the open steps of a poll cycle: the decisions, given
  the steps' Letta views, their agents' tags and what the state file knows of their runs.
  The pipeline fetches those and records the decisions (:mod:`letta_otel.pipeline.selecting`).
* :mod:`.sharding` — the steps of this replica's agents (``--shard K/N``).

Nothing here fetches from Letta or writes the state file. The parsers of their settings
belong to the configuration (:mod:`letta_otel.config.selection`, :mod:`letta_otel.config.shard`).
"""
