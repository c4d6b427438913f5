"""Idle stretches tracked at ingest: busy -> idle -> busy, gaps, pruning."""

from __future__ import annotations

from ai_signals_exporter.gpu.idle import IdleTrack, idle_seconds, prune, track

THRESHOLD = 0.05
GAP = 45.0


def run(readings: list[tuple[float, float]]) -> list[IdleTrack]:
    t = None
    out = []
    for ts, util in readings:
        t = track(t, util, THRESHOLD, ts, GAP)
        out.append(t)
    return out


def test_busy_idle_busy_resets():
    ts = run([(0, 0.9), (15, 0.01), (30, 0.0), (45, 0.04), (60, 0.5), (75, 0.0)])
    assert [t.since for t in ts] == [None, 15, 15, 15, None, 75]
    assert idle_seconds(ts[3], now=50) == 35
    assert idle_seconds(ts[4], now=62) == 0  # busy again
    assert idle_seconds(ts[5], now=80) == 5  # a new stretch, not 65 s


def test_threshold_is_exclusive():
    (t,) = run([(0, THRESHOLD)])
    assert t.since is None
    (t,) = run([(0, THRESHOLD - 1e-9)])
    assert t.since == 0


def test_first_reading_idle_starts_the_clock_there():
    (t,) = run([(100, 0.0)])
    assert idle_seconds(t, now=130) == 30


def test_gap_longer_than_max_gap_restarts_stretch():
    ts = run([(0, 0.0), (15, 0.0), (15 + GAP + 1, 0.0)])
    assert ts[1].since == 0
    assert ts[2].since == 15 + GAP + 1


def test_new_holder_starts_a_new_stretch():
    # A free GPU idle for two hours gets a pod that is still loading its model: the series now
    # names that pod, and the pod has not held the GPU idle for two hours.  Freed again: the free
    # GPU's idle time starts at the release.
    vllm = ("prod", "vllm-0")
    t = track(None, 0.0, THRESHOLD, 0, GAP)
    t = track(t, 0.0, THRESHOLD, 7200, 7200 + GAP)
    assert t.since == 0
    t = track(t, 0.0, THRESHOLD, 7215, GAP, vllm)
    assert t.since == 7215
    t = track(t, 0.0, THRESHOLD, 7230, GAP, vllm)
    assert t.since == 7215  # same holder, same stretch
    t = track(t, 0.0, THRESHOLD, 7245, GAP)
    assert t.since == 7245


def test_clock_never_negative():
    assert idle_seconds(IdleTrack(100.0, 100.0), now=90) == 0
    assert idle_seconds(None, now=90) == 0


def test_prune_forgets_gpus_not_seen():
    tracks = {("a", ""): IdleTrack(0.0, 0.0), ("b", ""): IdleTrack(None, 95.0)}
    prune(tracks, now=100, max_age=45)
    assert list(tracks) == [("b", "")]


from hypothesis import given, strategies as st  # noqa: E402


@given(st.lists(st.tuples(st.floats(1, 100), st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0])), max_size=40))
def test_idle_seconds_match_a_reference_model(steps):
    """idle seconds == time since the first idle reading after the last busy reading or gap."""
    t, ts = None, 0.0
    start = None  # reference: start of the current idle stretch
    prev_ts = None
    for dt, util in steps:
        ts += dt
        t = track(t, util, THRESHOLD, ts, GAP)
        if util >= THRESHOLD:
            start = None
        elif start is None or (prev_ts is not None and ts - prev_ts > GAP):
            start = ts
        prev_ts = ts
        expected = 0.0 if start is None else 5.0 + ts - start
        assert idle_seconds(t, ts + 5.0) == expected


def test_label_flip_between_sharing_pods_keeps_the_stretch():
    # Without --kubernetes-virtual-gpus dcgm-exporter labels a time-sliced GPU with whichever
    # sharing pod it lists last: a, b, a, b... while both hold it.  Busy while both are seen.
    a, b = ("dev", "nb-a", "uid-a"), ("dev", "nb-b", "uid-b")
    t = track(None, 0.9, THRESHOLD, 0, GAP, a)
    t = track(t, 0.9, THRESHOLD, 15, GAP, b)
    t = track(t, 0.0, THRESHOLD, 30, GAP, a)
    assert t.since == 30
    for ts, holder in ((45, b), (60, a), (75, b)):
        t = track(t, 0.0, THRESHOLD, ts, GAP, holder)
        assert t.since == 30, ts
    assert idle_seconds(t, now=90) == 60


def test_recreated_pod_of_the_same_name_restarts_the_stretch():
    old, new = ("dev", "nb-a", "uid-1"), ("dev", "nb-a", "uid-2")
    t = track(None, 0.0, THRESHOLD, 0, GAP, old)
    t = track(t, 0.0, THRESHOLD, 15, GAP, old)
    assert t.since == 0
    t = track(t, 0.0, THRESHOLD, 30, GAP, new)
    assert t.since == 30


def test_release_forgets_the_sharers():
    a, b = ("dev", "nb-a", ""), ("dev", "nb-b", "")
    t = track(None, 0.0, THRESHOLD, 0, GAP, a)
    t = track(t, 0.0, THRESHOLD, 15, GAP, b)  # b is new: it just got an idle GPU
    assert t.since == 15
    t = track(t, 0.0, THRESHOLD, 30, GAP, None)  # freed
    assert t.since == 30 and t.sharers == frozenset()
    t = track(t, 0.0, THRESHOLD, 45, GAP, a)  # a takes it again: a new holder
    assert t.since == 45
