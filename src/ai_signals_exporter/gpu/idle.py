"""Idle timing, tracked at ingest so the derivation stays a pure function of state and a clock.

A GPU's idle time is the continuous time its utilisation stayed below the threshold.  The source
calls `track` with every fresh reading; `idle_seconds` turns the result into the signal.  Idle
time before the exporter's first observation is unknown and not counted: the clock starts at
the first idle reading, so the figure errs low rather than high.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class IdleTrack:
    since: float | None  # when the current idle stretch began; None = busy at last_seen
    last_seen: float  # timestamp of the reading that produced this track
    holder: tuple[str, str] | None = None  # (namespace, pod) the series named at last_seen


def is_idle(util: float, threshold: float) -> bool:
    return util < threshold


def track(
    prev: IdleTrack | None,
    util: float,
    threshold: float,
    ts: float,
    max_gap: float,
    holder: tuple[str, str] | None = None,
) -> IdleTrack:
    """Next track of one GPU after a reading `util` taken at `ts`.

    busy -> idle starts a stretch, idle -> idle keeps its start, idle -> busy ends it.  A gap in
    the readings longer than `max_gap` (target down, data stale) restarts the stretch: nobody saw
    the GPU in between, so the stretch is not known to be continuous.  So does a change of
    `holder`, the pod the series is labelled with: a pod that just got a long-idle GPU (and may
    still be loading its model) has not held it idle all that time, and a freed GPU's idle time
    as a free GPU starts at its release.
    """
    if not is_idle(util, threshold):
        return IdleTrack(None, ts, holder)
    if (
        prev is None
        or prev.since is None
        or ts - prev.last_seen > max_gap
        or prev.holder != holder
    ):
        return IdleTrack(ts, ts, holder)
    return IdleTrack(prev.since, ts, holder)


def idle_seconds(t: IdleTrack | None, now: float) -> float:
    if t is None or t.since is None:
        return 0.0
    return max(0.0, now - t.since)


def prune(tracks: dict, now: float, max_age: float) -> None:
    """Forget GPUs not seen for `max_age` (removed nodes, replaced devices)."""
    for key in [k for k, t in tracks.items() if now - t.last_seen > max_age]:
        del tracks[key]
