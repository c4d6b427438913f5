"""Signals: pure functions from state, config and a clock to metric families.

Each area module exposes ``derive(state: AppState, config: Config, now: float) -> list[Family]``.
No I/O here; everything a signal needs is already in `AppState`.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family
from ..state import AppState
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


def derive_all(state: AppState, config: Config, now: float) -> list[Family]:
    families: list[Family] = []
    for derive in DERIVERS.values():
        families.extend(derive(state, config, now))
    return families
