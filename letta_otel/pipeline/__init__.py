"""The order of the work: discover → select → enrich → map → export → commit.

The only part of letta-otel that knows the order, and the only writer of the state file
(through :class:`~letta_otel.pipeline.checkpoint.Checkpoint`). A cycle discovers,
records and schedules; the work runs on long-lived workers and a long-lived exporter,
outliving the cycle. Its pieces, in the order a step meets them:

* :mod:`.cycle` — :class:`~letta_otel.pipeline.cycle.Bridge`: a cycle, what is due;
* :mod:`.selecting` — filters and sampling: fetches what the pure policy needs;
* :mod:`.steps` — when an open step is due, one step enriched into a draft, a draft
  mapped into a unit;
* :mod:`.runs` — run root units;
* :mod:`.batches` — bursts, packing, export from a worker thread, commit per batch;
* :mod:`.owed` — LLM spans still owed, sent once their provider trace is written;
* :mod:`.trace_ids` — which trace a run's spans join (adopted ids pinned);
* :mod:`.workers` — the long-lived, keyed workers;
* :mod:`.checkpoint` — the narrow interface to the state file, and pruning;
* :mod:`.report`, :mod:`.units`, :mod:`.observer`, :mod:`.bursts` — what they share.
"""
