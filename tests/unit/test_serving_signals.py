"""Rate, reset and quantile maths of the serving signals, on hand-built state."""

from __future__ import annotations

import math

import pytest

from ai_signals_exporter.config import Config
from ai_signals_exporter.engines.base import ModelSnapshot
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.promql import bucket_deltas, counter_increase, histogram_quantile, rate
from ai_signals_exporter.serving.history import TargetHistory, TargetIdentity
from ai_signals_exporter.signals.serving import derive
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


# ------------------------------------- each engine's current release against ground truth


@pytest.mark.parametrize("kind", ["vllm", "tgi", "sglang", "triton", "llamacpp", "trtllm"])
def test_derived_signals_match_the_simulated_engines_truth(kind) -> None:
    """Scrape a simulated engine in its current release's shape every 5 s over a 30 s window:
    every output equals what the engine actually did in that window."""
    from ai_signals_exporter.engines import extract
    from ai_signals_exporter.promql import bucket_deltas as deltas
    from ai_signals_exporter.sim.engines import SimEngine

    t = [1_750_000_000.0]
    e = SimEngine(kind, model="m", load=4.0, ranks=2, capacity_tokens_per_second=800,
                  clock=lambda: t[0], seed=2)  # fmt: skip
    cfg = Config()  # window 30 s
    state = AppState()
    h = TargetHistory("u", TargetIdentity(model="m"), engine=kind)
    state.serving["u"] = h
    t[0] += 120
    t0 = t[0]
    snaps = []
    for _ in range(7):
        _, models = extract(e.render(), kind)
        snaps.append(models)
        h.bursty = any(m.bursty_tokens for m in models.values())  # as the source records it
        h.append(t[0], models, 40)
        t[0] += 5
    now = t[0] - 5
    fams = parse_families(render(derive(state, cfg, now)), _ALL_SERVING)
    got = {
        name: {lab.get("quantile", ""): v for lab, v in rows if lab["model"] == "m"}
        for name, rows in fams.items()
    }

    def one(name: str) -> float:
        return got[name][""]

    assert one("ai_serving_generation_tokens_per_second") == pytest.approx(e.expected_generation_rate(t0, now))
    assert one("ai_serving_prompt_tokens_per_second") == pytest.approx(e.expected_prompt_rate(t0, now))
    assert one("ai_serving_requests_running") == round(e.running(now))
    assert one("ai_serving_requests_waiting") == round(e.waiting(now))
    if kind == "llamacpp":  # no finish counter, no KV gauge since mid-2025
        assert "ai_serving_requests_per_second" not in got and "ai_serving_kv_cache_usage_ratio" not in got
    else:
        assert one("ai_serving_requests_per_second") == pytest.approx(e.expected_request_rate(t0, now))
        assert one("ai_serving_failed_requests_per_second") == pytest.approx(e.expected_failed_rate(t0, now))
        if kind != "tgi":
            assert one("ai_serving_kv_cache_usage_ratio") == pytest.approx(e.kv_cache_usage(now), abs=1e-4)
    for fam, attr in (("ai_serving_time_to_first_token_seconds", "ttft_buckets"),
                      ("ai_serving_queue_time_seconds", "queue_buckets")):  # fmt: skip
        hist = [s["m" if kind not in ("tgi", "llamacpp") else ""] for s in snaps]
        hist = [getattr(x, attr) for x in hist if getattr(x, attr)]
        if len(hist) < 2:
            assert fam not in got, fam
            continue
        truth = deltas(hist)
        assert got[fam]["0.5"] == pytest.approx(histogram_quantile(0.5, truth))
        assert got[fam]["0.95"] == pytest.approx(histogram_quantile(0.95, truth))
    if kind in ("vllm", "sglang", "tgi", "trtllm"):
        assert "0.95" in got["ai_serving_queue_time_seconds"]


_ALL_SERVING = {
    "ai_serving_generation_tokens_per_second",
    "ai_serving_prompt_tokens_per_second",
    "ai_serving_requests_per_second",
    "ai_serving_failed_requests_per_second",
    "ai_serving_requests_running",
    "ai_serving_requests_waiting",
    "ai_serving_kv_cache_usage_ratio",
    "ai_serving_time_to_first_token_seconds",
    "ai_serving_queue_time_seconds",
}
