"""The buffering verdict: pure, from one probe run's measurements.

Rule (documented in docs/streaming.md, keep the two in step):

1. With a successful direct measurement (`direct_url`), compare the two routes of the same run:
   `delay = ingress.first_chunk - direct.first_chunk`.  The stream is **buffered** when
   `delay > threshold` (the probe's `buffering_threshold`), or when the ingress stream is a burst
   (rule 2) while the direct stream is not — the ingress collapsed a stream that the backend
   really spread out, even if that stream was too short to cross the threshold.
2. Without a direct measurement, only the shape of the ingress stream can tell: it is a
   **burst** when it carried at least `MIN_EVENTS` events, lasted at least `threshold`, and all
   its events arrived within a window no longer than `BURST_FRACTION` of the stream's duration
   (`last_chunk - first_chunk <= BURST_FRACTION * duration`).  A backend that takes long to its
   first token and then emits very fast can look the same, which is why `direct_url` is the
   reliable form.
3. A failed ingress measurement, or one with fewer than `MIN_EVENTS` events and no direct
   comparison, gives no verdict (None): the probe success metric says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from .record import StreamMeasurement

BURST_FRACTION = 0.1
MIN_EVENTS = 3


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
        collapsed = is_burst(ingress, threshold) and not _sent_as_burst(direct)
        return Verdict(delay > threshold or collapsed, delay, "direct")
    if ingress.chunks < MIN_EVENTS:
        return Verdict(None, None, "none")
    return Verdict(is_burst(ingress, threshold), None, "shape")


def _sent_as_burst(direct: StreamMeasurement) -> bool:
    """True when the backend itself sent a burst (then the ingress cannot be blamed for one)."""
    if direct.chunks < MIN_EVENTS or direct.duration is None or direct.spread is None:
        return True
    return direct.spread <= BURST_FRACTION * direct.duration
