"""Rate, reset and quantile maths of the serving signals, on hand-built state."""

from __future__ import annotations

import math

import pytest

from ai_signals_exporter.config import Config
from ai_signals_exporter.engines.base import ModelSnapshot
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.signals.serving import (
    TargetHistory,
    TargetIdentity,
    bucket_deltas,
    counter_increase,
    derive,
    histogram_quantile,
    rate,
)
from ai_signals_exporter.state import AppState


def test_counter_increase_handles_reset() -> None:
    # 100 -> 150 (+50), restart: 150 -> 20 (+20 from zero), 20 -> 70 (+50)
    pts = [(0, 100.0), (5, 150.0), (10, 20.0), (15, 70.0)]
    assert counter_increase(pts) == 120
    assert rate(pts) == pytest.approx(120 / 15)


def test_rate_needs_two_points() -> None:
    assert rate([(0, 1.0)]) is None
    assert rate([]) is None
    assert rate([(1, 1.0), (1, 2.0)]) is None


def test_missed_scrapes_do_not_change_the_rate() -> None:
    # A steady 10/s counter scraped every 5 s, with two scrapes missing.
    full = [(t, 10.0 * t) for t in range(0, 31, 5)]
    gappy = [p for p in full if p[0] not in (10, 15)]
    assert rate(full) == pytest.approx(10)
    assert rate(gappy) == pytest.approx(10)


def test_histogram_quantile_matches_prometheus_semantics() -> None:
    # 10 observations <= 0.1, 10 more <= 0.5, none above.
    buckets = [(0.1, 10.0), (0.5, 20.0), (1.0, 20.0), (math.inf, 20.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.1 + 0.4 * 9 / 10)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    # Quantile in the +Inf bucket: the highest finite bound, as Prometheus does.
    assert histogram_quantile(0.99, [(1.0, 1.0), (math.inf, 10.0)]) == 1.0


def test_bucket_deltas_with_reset() -> None:
    a = ((0.1, 100.0), (math.inf, 200.0))
    b = ((0.1, 110.0), (math.inf, 220.0))
    c = ((0.1, 5.0), (math.inf, 6.0))  # restarted
    assert bucket_deltas([a, b, c]) == [(0.1, 15.0), (math.inf, 26.0)]


def _snap(gen: float, prompt: float, req: float, ttft=None, **kw) -> dict[str, ModelSnapshot]:
    return {"llama-3-8b": ModelSnapshot(gen, prompt, req, ttft_buckets=ttft, **kw)}


def test_derive_produces_contract_series() -> None:
    state = AppState()
    ident = TargetIdentity("prod", "llama-0", "Deployment", "llama", capacity_tokens_per_second=200)
    h = TargetHistory("http://p/metrics", ident, engine="vllm")
    for i, t in enumerate(range(1000, 1031, 5)):
        ttft = ((0.1, 2.0 * i), (1.0, 4.0 * i), (math.inf, 4.0 * i))
        h.append(t, _snap(100.0 * i, 50.0 * i, 1.0 * i, ttft, running=3, waiting=7, kv_cache_usage=0.4), 40)
    state.serving[h.url] = h
    cfg = Config.model_validate({"serving": {"interval": "5s", "window": "30s"}})
    text = render(derive(state, cfg, now=1030)).decode()
    got = parse_families(text, {
        "ai_serving_generation_tokens_per_second", "ai_serving_prompt_tokens_per_second",
        "ai_serving_requests_per_second", "ai_serving_requests_waiting", "ai_serving_requests_running",
        "ai_serving_kv_cache_usage_ratio", "ai_serving_token_capacity_ratio",
        "ai_serving_time_to_first_token_seconds",
    })
    labels, value = got["ai_serving_generation_tokens_per_second"][0]
    assert labels == {"namespace": "prod", "pod": "llama-0", "workload_kind": "Deployment",
                      "workload": "llama", "engine": "vllm", "model": "llama-3-8b"}
    assert value == pytest.approx(20.0)  # 100 tokens per 5 s
    assert got["ai_serving_prompt_tokens_per_second"][0][1] == pytest.approx(10.0)
    assert got["ai_serving_requests_per_second"][0][1] == pytest.approx(0.2)
    assert got["ai_serving_token_capacity_ratio"][0][1] == pytest.approx(0.1)
    assert got["ai_serving_requests_waiting"][0][1] == 7
    assert got["ai_serving_kv_cache_usage_ratio"][0][1] == 0.4
    q = {l["quantile"]: v for l, v in got["ai_serving_time_to_first_token_seconds"]}
    assert q["0.5"] == pytest.approx(0.1)  # half of the observations are <= 0.1
    assert 0.1 < q["0.95"] <= 1.0


def test_target_down_for_a_whole_window_has_no_rate() -> None:
    state = AppState()
    h = TargetHistory("u", TargetIdentity(), engine="vllm")
    h.append(1000, _snap(0, 0, 0), 40)
    h.append(1005, _snap(50, 0, 0), 40)
    state.serving["u"] = h
    cfg = Config()
    assert "ai_serving_generation_tokens_per_second" in render(derive(state, cfg, 1010)).decode()
    assert "ai_serving_generation_tokens_per_second" not in render(derive(state, cfg, 1100)).decode()


def test_bursty_counter_is_smoothed_by_the_window() -> None:
    # TGI-style: 600 tokens land at once every 30 s (when a request finishes); 20 tok/s on average.
    state = AppState()
    h = TargetHistory("u", TargetIdentity(model="mistral"), engine="tgi", bursty=True)
    total = 0.0
    for t in range(0, 121, 5):
        if t and t % 30 == 0:
            total += 600
        h.append(t, {"": ModelSnapshot(generation_tokens=total)}, 200)
    state.serving["u"] = h
    cfg = Config.model_validate({"serving": {"window": "120s"}})
    text = render(derive(state, cfg, 120)).decode()
    value = parse_families(text, {"ai_serving_generation_tokens_per_second"})[
        "ai_serving_generation_tokens_per_second"][0]
    assert value[0]["model"] == "mistral"  # engines without a model label take the target's model
    assert value[1] == pytest.approx(20.0)


def test_history_trims_to_window() -> None:
    h = TargetHistory("u", TargetIdentity())
    for t in range(0, 1000, 5):
        h.append(t, {}, keep_seconds=40)
    assert len(h.samples) <= 10
    assert h.samples[0][0] <= 995 - 40


def test_rate_after_an_outage_does_not_span_the_outage() -> None:
    # 10 tok/s, then the pod restarts (same URL, counters from zero) and is unreachable for
    # 10 minutes while it loads weights.  On its return it serves 10 tok/s again.  The sample
    # from before the outage must not become the window's start point: that would divide the
    # few seconds of new tokens by ten minutes and report a pod near zero throughput.
    state = AppState()
    h = TargetHistory("u", TargetIdentity(model="m"), engine="vllm")
    for t in range(0, 31, 5):
        h.append(t, {"": ModelSnapshot(generation_tokens=10.0 * t)}, 40)
    back = 630
    for t in range(back, back + 11, 5):
        h.append(t, {"": ModelSnapshot(generation_tokens=10.0 * (t - back + 5))}, 40)
    state.serving["u"] = h
    cfg = Config.model_validate({"serving": {"interval": "5s", "window": "30s"}})
    got = parse_families(render(derive(state, cfg, back + 10)).decode(),
                         {"ai_serving_generation_tokens_per_second"})
    assert got["ai_serving_generation_tokens_per_second"][0][1] == pytest.approx(10.0)
    # First scrape after the outage: no start point inside the reach of the window -> no rate yet
    # (as for a pod that just appeared), rather than a rate averaged over the outage.
    h2 = TargetHistory("u", TargetIdentity(model="m"), engine="vllm")
    h2.append(0, {"": ModelSnapshot(generation_tokens=300.0)}, 40)
    h2.append(back, {"": ModelSnapshot(generation_tokens=50.0)}, 40)
    state.serving["u"] = h2
    text = render(derive(state, cfg, back)).decode()
    assert "ai_serving_generation_tokens_per_second{" not in text


def test_bursty_engine_rates_wait_for_half_a_window() -> None:
    """TGI counts tokens when a request finishes: two scrapes 5 s apart that straddle one
    finished request would read 6x the true rate.  vLLM counts as it generates: no wait."""
    cfg = Config()  # window 30 s
    for engine, expect_rate in (("tgi", False), ("vllm", True)):
        state = AppState()
        h = TargetHistory("u", TargetIdentity(model="m"), engine=engine, bursty=engine == "tgi")
        h.append(1000, {"": ModelSnapshot(generation_tokens=0.0, waiting=2)}, 40)
        h.append(1005, {"": ModelSnapshot(generation_tokens=600.0, waiting=2)}, 40)
        state.serving["u"] = h
        text = render(derive(state, cfg, 1006)).decode()
        assert ("ai_serving_generation_tokens_per_second{" in text) is expect_rate, engine
        assert "ai_serving_requests_waiting{" in text  # gauges are served at once
    # Once half a window is covered, the bursty engine's rate is served.
    for t in range(1010, 1021, 5):
        h.append(t, {"": ModelSnapshot(generation_tokens=600.0)}, 40)
    text = render(derive(state, cfg, 1021)).decode()
    assert "ai_serving_generation_tokens_per_second{" in text
