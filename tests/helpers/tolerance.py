"""Margins for timing assertions on a shared, possibly loaded machine.

A margin is a base (what loopback plus process scheduling costs on an idle 2-core machine)
stretched by TEST_TIMEOUT_SCALE (CI's CPU-hog step), but never beyond a cap that the caller takes
from the scenario's own configured delays: half the difference the assertion must still tell
apart.  So a loaded run gets slack, and no amount of slack lets a buffered stream pass for a
clean one.
"""

from __future__ import annotations

from .wait import SCALE


def margin(base: float, cap: float) -> float:
    """`base` seconds times TEST_TIMEOUT_SCALE, at most `cap` seconds."""
    return min(base * SCALE, cap)
