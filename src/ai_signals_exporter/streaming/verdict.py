"""The buffering verdict: pure, from one probe run's measurements.

Rule (documented in docs/streaming.md, keep the two in step):

1. With a successful direct measurement (`direct_url`), compare the two routes of the same run:
   `delay = ingress.first_chunk - direct.first_chunk`.  The stream is **buffered** when
   `delay > threshold` (the probe's `buffering_threshold`), or when the ingress stream is a burst
   (rule 2) whose events came within `BURST_FRACTION` of the time the direct stream's events took
   (`ingress.spread <= BURST_FRACTION * direct.spread`; the direct stream with at least
   `MIN_EVENTS` events and not itself sent at network speed) — the
   ingress collapsed a stream that the backend really spread out, even if that stream was too
   short to cross the threshold.  Spreads are compared with each other, not with durations: a
   slow first token makes every stream's events a small fraction of its duration.
2. Without a direct measurement, only the shape of the ingress stream can tell: it is a
   **burst** when it carried at least `MIN_EVENTS` events, lasted at least `threshold`, all its
   events arrived within a window no longer than `BURST_FRACTION` of the stream's duration
   (`last_chunk - first_chunk <= BURST_FRACTION * duration`).  It counts as buffered when it is
   a burst *and* its events came faster than a model generates them (on average at most
   `MAX_BURST_INTERVAL` apart, "network speed"): a clean stream after a slow first token also
   fits in a small fraction of its duration, but at the generation rate.  A backend that emits
   faster than that after a slow first token still looks the same, which is why `direct_url` is
   the reliable form.
3. A failed ingress measurement, or one with fewer than `MIN_EVENTS` events and no direct
   comparison, gives no verdict (None): the probe success metric says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .record import StreamMeasurement

BURST_FRACTION = 0.1
MIN_EVENTS = 3
# Mean time between events below which a stream was delivered at network speed, not generated:
# a held-back response lands in one or a few reads (events of one read share a timestamp), while
# an engine's decode step takes milliseconds even for a small model.
MAX_BURST_INTERVAL = 0.002


@dataclass(frozen=True, slots=True)
class Verdict:
    buffered: bool | None  # None: cannot tell
    delay: float | None  # ingress minus direct time to first chunk; None without both
    basis: str  # "direct" | "shape" | "none"


def is_burst(m: StreamMeasurement, threshold: float) -> bool:
    if not m.ok or m.chunks < MIN_EVENTS or m.duration is None or m.spread is None:
        return False
    if m.duration < threshold:
        return False
    return m.spread <= BURST_FRACTION * m.duration


def _usable(m: StreamMeasurement | None) -> bool:
    return m is not None and m.ok and m.first_chunk is not None


def judge(
    ingress: StreamMeasurement, direct: StreamMeasurement | None, threshold: float
) -> Verdict:
    if not _usable(ingress):
        return Verdict(None, None, "none")
    if _usable(direct):
        assert direct is not None and ingress.first_chunk is not None
        assert direct.first_chunk is not None
        delay = ingress.first_chunk - direct.first_chunk
        collapsed = is_burst(ingress, threshold) and _collapsed(ingress, direct)
        return Verdict(delay > threshold or collapsed, delay, "direct")
    if ingress.chunks < MIN_EVENTS:
        return Verdict(None, None, "none")
    return Verdict(is_burst(ingress, threshold) and _network_speed(ingress), None, "shape")


def _collapsed(ingress: StreamMeasurement, direct: StreamMeasurement) -> bool:
    """True when the ingress delivered in a fraction of the time the backend spent sending
    (a backend that itself sent one burst cannot have been collapsed by the ingress)."""
    if direct.chunks < MIN_EVENTS or direct.spread is None or ingress.spread is None:
        return False
    if _network_speed(direct):
        return False
    return ingress.spread <= BURST_FRACTION * direct.spread


def _network_speed(m: StreamMeasurement) -> bool:
    """The events came faster than generated: one or a few reads of a response sent at once."""
    return m.spread is not None and m.spread <= MAX_BURST_INTERVAL * (m.chunks - 1)
