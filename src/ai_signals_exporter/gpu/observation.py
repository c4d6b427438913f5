"""What the dcgm source keeps per target, and which of it still counts as data."""

from __future__ import annotations

from dataclasses import dataclass

from .readings import GpuKey, GpuReading

# Readings older than this many source intervals are stale: a dead target's last values must not
# keep reporting a GPU as busy (or idle) forever.
STALE_INTERVALS = 3


@dataclass(slots=True, frozen=True)
class DcgmObservation:
    url: str
    node: str | None  # from a static target's `node` or the discovered pod's placement
    ts: float  # unix time of the last good scrape; 0 = never
    readings: tuple[GpuReading, ...] = ()
    up: bool = False
    last_error: str = ""  # bounded reason of the last failure

    def node_of(self, reading: GpuReading) -> str:
        return self.node or reading.hostname


def stale_after(interval: float) -> float:
    return STALE_INTERVALS * interval


def fresh_readings(
    observations: dict[str, DcgmObservation], now: float, max_age: float, node_scope: str | None = None
) -> dict[GpuKey, tuple[str, GpuReading]]:
    """(node, reading) per device from observations younger than `max_age`.  A device seen by two
    targets (a static target that duplicates a discovered one) counts once, freshest wins."""
    out: dict[GpuKey, tuple[str, GpuReading]] = {}
    seen_ts: dict[GpuKey, float] = {}
    for obs in observations.values():
        if not obs.readings or now - obs.ts > max_age:
            continue
        for r in obs.readings:
            node = obs.node_of(r)
            if node_scope and node != node_scope:
                continue
            if seen_ts.get(r.key, -1.0) < obs.ts:
                out[r.key] = (node, r)
                seen_ts[r.key] = obs.ts
    return out
