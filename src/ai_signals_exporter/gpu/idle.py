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
    # (namespace, pod, pod_uid) the series named at last_seen; pod_uid "" where not exported.
    holder: tuple[str, ...] | None = None
    # Pods seen holding this GPU since it was last free: the pods that share a time-sliced GPU.
    sharers: frozenset = frozenset()


# A time-sliced GPU is rarely shared by more pods than this; beyond it the oldest are forgotten
# only in the sense that a flip to them restarts the stretch (errs low).
MAX_SHARERS = 16


def is_idle(util: float, threshold: float) -> bool:
    return util < threshold


def track(
    prev: IdleTrack | None,
    util: float,
    threshold: float,
    ts: float,
    max_gap: float,
    holder: tuple[str, ...] | None = None,
) -> IdleTrack:
    """Next track of one GPU after a reading `util` taken at `ts`.

    busy -> idle starts a stretch, idle -> idle keeps its start, idle -> busy ends it.  A gap in
    the readings longer than `max_gap` (target down, data stale) restarts the stretch: nobody saw
    the GPU in between, so the stretch is not known to be continuous.  So does a change of
    `holder`, the pod the series is labelled with: a pod that just got a long-idle GPU (and may
    still be loading its model) has not held it idle all that time, and a freed GPU's idle time
    as a free GPU starts at its release.

    Not a flip between pods that share a time-sliced GPU: without --kubernetes-virtual-gpus
    dcgm-exporter labels the device with whichever sharing pod it lists last, which may change
    from scrape to scrape.  A holder already seen on this GPU since it was last free (busy or
    idle) is a sharer, and labelling it does not restart the stretch.  The holder carries the
    pod UID where the exporter prints one, so a recreated pod of the same name is a new holder.
    """
    sharers = _sharers(prev, holder)
    if not is_idle(util, threshold):
        return IdleTrack(None, ts, holder, sharers)
    if (
        prev is None
        or prev.since is None
        or ts - prev.last_seen > max_gap
        or (prev.holder != holder and not _is_flip(prev, holder))
    ):
        return IdleTrack(ts, ts, holder, sharers)
    return IdleTrack(prev.since, ts, holder, sharers)


def _sharers(prev: IdleTrack | None, holder: tuple[str, ...] | None) -> frozenset:
    if holder is None:
        return frozenset()  # the GPU is free: whoever takes it next is a new holder
    if prev is None or holder in prev.sharers:
        return prev.sharers if prev is not None else frozenset({holder})
    if len(prev.sharers) >= MAX_SHARERS:
        return frozenset({holder, prev.holder} - {None})
    return prev.sharers | {holder}


def _is_flip(prev: IdleTrack, holder: tuple[str, ...] | None) -> bool:
    return prev.holder is not None and holder is not None and holder in prev.sharers


def idle_seconds(t: IdleTrack | None, now: float) -> float:
    if t is None or t.since is None:
        return 0.0
    return max(0.0, now - t.since)


def prune(tracks: dict, now: float, max_age: float) -> None:
    """Forget GPUs not seen for `max_age` (removed nodes, replaced devices)."""
    for key in [k for k, t in tracks.items() if now - t.last_seen > max_age]:
        del tracks[key]
