"""The buffering rule, the timer, and the signal families, from hand-built measurements."""

from __future__ import annotations

import pytest

from ai_signals_exporter.config import Config, Probe
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.signals.streaming import derive
from ai_signals_exporter.state import AppState
from ai_signals_exporter.streaming import (
    ProbeObservation,
    StreamMeasurement,
    StreamTimer,
    is_burst,
    judge,
)


def m(route="ingress", first=0.3, last=1.2, duration=1.25, chunks=10, ok=True, ttfb=0.01):
    return StreamMeasurement(
        route=route, ok=ok, ttfb=ttfb, first_chunk=first, last_chunk=last,
        duration=duration, chunks=chunks, max_gap=0.1, reason="" if ok else "reset",
    )


def test_timer_measures_phases_gaps_and_counts_with_an_injected_clock():
    now = [100.0]
    t = StreamTimer(StreamMeasurement(route="ingress"), clock=lambda: now[0])
    now[0] = 100.05
    t.headers(200)
    now[0] = 100.3
    t.body(t.now())
    t.events(0, t.now())  # a read that completed no event changes nothing
    t.events(2, t.now())
    now[0] = 100.9
    t.events(1, t.now())
    now[0] = 101.0
    t.events(3, t.now())
    now[0] = 101.1
    out = t.end(True)
    assert out.ttfb == pytest.approx(0.05)
    assert out.first_body == pytest.approx(0.3) and out.first_chunk == pytest.approx(0.3)
    assert out.last_chunk == pytest.approx(1.0) and out.duration == pytest.approx(1.1)
    assert out.chunks == 6
    assert out.max_gap == pytest.approx(0.6)  # 0.3 -> 0.9; events of one read have no gap
    assert out.spread == pytest.approx(0.7)


def test_direct_comparison_delay_above_threshold_is_buffered():
    ingress = m(first=1.2, last=1.2, duration=1.25)
    direct = m("direct", first=0.3, last=1.2)
    v = judge(ingress, direct, threshold=0.5)
    assert v.buffered is True and v.basis == "direct"
    assert v.delay == pytest.approx(0.9)


def test_clean_ingress_is_not_buffered_and_delay_may_be_negative():
    v = judge(m(first=0.29), m("direct", first=0.3), threshold=0.5)
    assert v.buffered is False and v.delay == pytest.approx(-0.01)


def test_delay_below_threshold_but_collapsed_stream_is_buffered():
    """A short stream collapsed into one burst: delay under the threshold, but the backend spread
    the events out and the ingress did not."""
    ingress = m(first=0.58, last=0.6, duration=0.6)
    direct = m("direct", first=0.2, last=0.6, duration=0.6)
    assert judge(ingress, direct, threshold=0.5).buffered is True
    # The same burst from a backend that itself sends one burst is not the ingress's fault.
    direct_burst = m("direct", first=0.58, last=0.6, duration=0.6)
    v = judge(ingress, direct_burst, threshold=0.5)
    assert v.buffered is False and v.delay == pytest.approx(0)


def test_shape_rule_without_direct():
    burst = m(first=1.2, last=1.21, duration=1.25)
    spread = m(first=0.3, last=1.2, duration=1.25)
    assert is_burst(burst, 0.5) and not is_burst(spread, 0.5)
    assert judge(burst, None, 0.5) == judge(burst, None, 0.5)
    assert judge(burst, None, 0.5).buffered is True and judge(burst, None, 0.5).basis == "shape"
    assert judge(spread, None, 0.5).buffered is False
    # Too short to tell a burst from a fast backend, too few events: no verdict either way.
    assert judge(m(first=0.2, last=0.2, duration=0.21), None, 0.5).buffered is False
    assert judge(m(chunks=2), None, 0.5).buffered is None


def _clean(route, ttft, tokens=32, tps=30.0, ok=True):
    """A clean stream: first token after `ttft`, then one event per token at `tps`."""
    last = ttft + (tokens - 1) / tps
    return m(route, first=ttft, last=last, duration=last + 0.005, chunks=tokens, ok=ok)


def test_slow_first_token_on_both_routes_is_not_buffered():
    """A loaded backend: 9-10 s to the first token, then 32 tokens at 30/s on both routes.  The
    routes' first tokens differ by 0.5 s (batch scheduling), under the 1 s threshold; the ingress
    passed every event on as the backend sent it.  Measured as a fraction of a duration that the
    slow first token dominates, the ingress stream looked like a burst and the direct one did
    not (1.03 s of events within 10.54 s vs 10.04 s): a false 'collapsed' verdict."""
    ingress, direct = _clean("ingress", ttft=9.5), _clean("direct", ttft=9.0)
    v = judge(ingress, direct, threshold=1.0)
    assert v.delay == pytest.approx(0.5)
    assert v.buffered is False
    # The real thing after the same slow first token: the ingress held every event to the end.
    held = m(first=10.04, last=10.04, duration=10.05, chunks=32)
    assert judge(held, direct, threshold=1.0).buffered is True
    held_short = m(first=9.2, last=9.2, duration=9.21, chunks=32)  # delay under the threshold
    assert judge(held_short, _clean("direct", ttft=9.0), threshold=1.0).buffered is True
    # A backend that sends the whole answer at once (no streaming): nothing for the ingress to
    # collapse, both routes get one read.
    at_once = m("direct", first=9.0, last=9.0, duration=9.01, chunks=32)
    assert judge(m(first=9.1, last=9.1, duration=9.11, chunks=32), at_once, 1.0).buffered is False


def test_slow_first_token_without_direct_is_not_a_burst():
    """Without direct_url: a clean 30 tokens/s stream after a 10 s first token is no burst; the
    same events delivered in one read (a buffering ingress) are."""
    assert judge(_clean("ingress", ttft=10.0), None, 1.0).buffered is False
    held = m(first=11.04, last=11.04, duration=11.05, chunks=32)
    assert judge(held, None, 1.0).buffered is True


def test_failed_ingress_gives_no_verdict_and_failed_direct_falls_back_to_shape():
    failed = m(ok=False, first=None, last=None)
    assert judge(failed, m("direct"), 0.5).buffered is None
    v = judge(m(first=1.2, last=1.21), m("direct", ok=False), 0.5)
    assert v.buffered is True and v.delay is None and v.basis == "shape"


def _config(**probe):
    base = {"name": "chat", "url": "http://ing/v1", "direct_url": "http://pod/v1", "buffering_threshold": "500ms"}
    base.update(probe)
    return Config(probes=[Probe(**base)])


def test_derive_emits_per_route_families_and_verdict():
    state = AppState()
    state.probes["chat"] = ProbeObservation(
        "chat", 0.0, m(first=1.25, last=1.26), m("direct", first=0.25, last=1.2)
    )
    state.probes["gone"] = ProbeObservation("gone", 0.0, m())  # no longer configured
    text = render(derive(state, _config(), 0.0)).decode()
    assert 'ai_stream_probe_success{probe="chat",route="ingress"} 1' in text
    assert 'ai_stream_time_to_first_chunk_seconds{probe="chat",route="direct"} 0.25' in text
    assert 'ai_stream_time_to_first_byte_seconds{probe="chat",route="ingress"} 0.01' in text
    assert 'ai_stream_duration_seconds{probe="chat",route="ingress"} 1.25' in text
    assert 'ai_stream_chunks{probe="chat",route="ingress"} 10' in text
    assert 'ai_stream_max_chunk_gap_seconds{probe="chat",route="direct"} 0.1' in text
    assert 'ai_stream_buffered{probe="chat"} 1' in text
    assert 'ai_stream_buffering_delay_seconds{probe="chat"} 1' in text
    assert "gone" not in text


def test_derive_failed_route_keeps_reached_phases_only():
    state = AppState()
    cut = StreamMeasurement(route="ingress", ok=False, reason="reset", status=200, ttfb=0.01, duration=0.5)
    state.probes["chat"] = ProbeObservation("chat", 0.0, cut, m("direct"))
    text = render(derive(state, _config(), 0.0)).decode()
    assert 'ai_stream_probe_success{probe="chat",route="ingress"} 0' in text
    assert 'ai_stream_time_to_first_byte_seconds{probe="chat",route="ingress"}' in text
    ingress_lines = {line.split("{")[0] for line in text.splitlines() if 'route="ingress"' in line}
    # A cut stream has a TTFB but no first chunk, and no duration/chunks/gap of a whole stream.
    assert ingress_lines == {"ai_stream_probe_success", "ai_stream_time_to_first_byte_seconds"}
    assert "ai_stream_buffered" not in text and "ai_stream_buffering_delay" not in text


def test_derive_ignores_direct_when_config_dropped_it():
    state = AppState()
    state.probes["chat"] = ProbeObservation("chat", 0.0, m(first=1.2, last=1.21), m("direct"))
    text = render(derive(state, _config(direct_url=None), 0.0)).decode()
    assert 'route="direct"' not in text
    assert 'ai_stream_buffered{probe="chat"} 1' in text  # by shape
    assert "ai_stream_buffering_delay_seconds" not in text
