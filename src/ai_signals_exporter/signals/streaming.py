"""Streaming-probe signals: per-route timings and the per-probe buffering verdict.

Pure: reads the latest `ProbeObservation` of each configured probe from `state.probes`.  Phase
times are emitted whenever the phase was reached, even by a failed run (a cut stream still has a
TTFB); duration, chunk count and largest gap only for successful runs, where they describe a whole
stream.  `ai_stream_buffered` and `ai_stream_buffering_delay_seconds` follow the rule in
`streaming/verdict.py` and are absent when there is no verdict / no direct comparison.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family, FamilySpec
from ..state import AppState
from ..streaming import ProbeObservation, judge

ROUTE_LABELS = ("probe", "route")

PROBE_SUCCESS = FamilySpec(
    "ai_stream_probe_success", "gauge",
    "1 if the last streaming probe run on this route completed a stream with at least one chunk.",
    ROUTE_LABELS,
)
TIME_TO_FIRST_BYTE = FamilySpec(
    "ai_stream_time_to_first_byte_seconds", "gauge",
    "Seconds from the start of the probe request to the response headers.",
    ROUTE_LABELS,
)
TIME_TO_FIRST_CHUNK = FamilySpec(
    "ai_stream_time_to_first_chunk_seconds", "gauge",
    "Seconds from the start of the probe request to the first decoded event or chunk.",
    ROUTE_LABELS,
)
DURATION = FamilySpec(
    "ai_stream_duration_seconds", "gauge",
    "Seconds from the start of the probe request to the end of the stream.",
    ROUTE_LABELS,
)
CHUNKS = FamilySpec(
    "ai_stream_chunks", "gauge",
    "Events (SSE data events, NDJSON lines) or body chunks in the last probe stream.",
    ROUTE_LABELS,
)
MAX_CHUNK_GAP = FamilySpec(
    "ai_stream_max_chunk_gap_seconds", "gauge",
    "Largest time between two consecutive events of the last probe stream.",
    ROUTE_LABELS,
)
BUFFERED = FamilySpec(
    "ai_stream_buffered", "gauge",
    "1 if the ingress held the stream back and delivered it late or as one burst (see docs/streaming.md).",
    ("probe",),
)
BUFFERING_DELAY = FamilySpec(
    "ai_stream_buffering_delay_seconds", "gauge",
    "Ingress minus direct time to first chunk, in seconds, from the same probe run.",
    ("probe",),
)
FAMILIES = (
    PROBE_SUCCESS, TIME_TO_FIRST_BYTE, TIME_TO_FIRST_CHUNK, DURATION, CHUNKS, MAX_CHUNK_GAP, BUFFERED,
    BUFFERING_DELAY,
)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    success, ttfb, first, duration, chunks, gap, buffered, delay = (spec.new() for spec in FAMILIES)
    for probe in config.probes:
        obs: ProbeObservation | None = state.probes.get(probe.name)
        if obs is None:
            continue
        direct = obs.direct if probe.direct_url else None
        for m in (obs.ingress, direct):
            if m is None:
                continue
            labels = (probe.name, m.route)
            success.add(labels, 1 if m.ok else 0)
            if m.ttfb is not None:
                ttfb.add(labels, m.ttfb)
            if m.first_chunk is not None:
                first.add(labels, m.first_chunk)
            if m.ok and m.duration is not None:
                duration.add(labels, m.duration)
                chunks.add(labels, m.chunks)
                gap.add(labels, m.max_gap)
        verdict = judge(obs.ingress, direct, probe.buffering_threshold)
        if verdict.buffered is not None:
            buffered.add((probe.name,), 1 if verdict.buffered else 0)
        if verdict.delay is not None:
            delay.add((probe.name,), verdict.delay)
    return [success, ttfb, first, duration, chunks, gap, buffered, delay]
