"""Signals: pure functions from state, config and a clock to metric families.

Each area module exposes ``derive(state: AppState, config: Config, now: float) -> list[Family]``
and its metric families as data (``FAMILIES``: a tuple of `FamilySpec`).  No I/O here;
everything a signal needs is already in `AppState`.
"""

from __future__ import annotations

from . import checkpoints, gpu, selfmon, serving, streaming

# Area name -> derive.  The area name is the `source` label of self-metrics for that area's
# errors and cardinality drops.
DERIVERS = {
    "serving": serving.derive,
    "gpu": gpu.derive,
    "checkpoints": checkpoints.derive,
    "probes": streaming.derive,
    "self": selfmon.derive,
}

FAMILIES = serving.FAMILIES + gpu.FAMILIES + checkpoints.FAMILIES + streaming.FAMILIES + selfmon.FAMILIES
