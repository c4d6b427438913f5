"""Signals: pure functions from state, config and a clock to metric families.

Each area module exposes ``derive(state: AppState, config: Config, now: float) -> list[Family]``
and its metric families as data (``FAMILIES``: a tuple of `FamilySpec`); areas.py registers
them.  No I/O here; everything a signal needs is already in `AppState`.
"""
