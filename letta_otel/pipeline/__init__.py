"""The cycle: discover → select → enrich → map → export → commit (see :mod:`.cycle`).

The only part of letta-otel that knows the order, and the only writer of the state file
(through :class:`~letta_otel.pipeline.checkpoint.Checkpoint`). Its pieces, in the order a
step meets them:

* :mod:`.cycle` — :class:`~letta_otel.pipeline.cycle.Bridge`: one cycle, in order;
* :mod:`.selecting` — filters and sampling: fetches what the pure policy needs;
* :mod:`.steps` — one open step enriched into a draft, a draft mapped into a unit;
* :mod:`.runs` — run root units;
* :mod:`.batches` — bursts, packing, export from a worker thread, commit per batch;
* :mod:`.trace_ids` — which trace a run's spans join (adopted ids pinned);
* :mod:`.checkpoint` — the narrow interface to the state file, and pruning;
* :mod:`.report`, :mod:`.units`, :mod:`.observer`, :mod:`.bursts` — what they share.
"""
