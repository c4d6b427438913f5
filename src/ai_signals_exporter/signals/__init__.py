"""Signals: pure functions from state, config and a clock to metric families.

Each area module exposes ``derive(state: AppState, config: Config, now: float) -> list[Family]``.
No I/O here; everything a signal needs is already in `AppState`.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family
from ..state import AppState
from . import checkpoints, gpu, selfmon, serving, streaming

DERIVERS = (serving.derive, gpu.derive, checkpoints.derive, streaming.derive, selfmon.derive)


def derive_all(state: AppState, config: Config, now: float) -> list[Family]:
    families: list[Family] = []
    for derive in DERIVERS:
        families.extend(derive(state, config, now))
    return families
