"""Choosing what to export: operator filters and run-level sampling.

* :mod:`.filters` — which steps the operator wants (agent ids, agent tags, model names or
  handles, projects, step statuses); pure, plus the query parameters that push a filter
  down to the Letta server where its routes support it.
* :mod:`.sampling` — keep a deterministic share of successful runs, every run with a
  failure whole; pure.
* :mod:`.policy` — applies both to the open steps of a poll cycle (the bridge's hook).

The parsers of their settings belong to the configuration (:mod:`letta_otel.config.selection`).
"""
