"""Simulated inference servers: wire format and size, ground-truth rates, burstiness,
saturation, restarts, determinism, and the HTTP app."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ai_signals_exporter.engines import extract
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.sim.engines import (
    KINDS,
    SGLANG_TTFT_BUCKETS,
    VLLM_TTFT_BUCKETS,
    SimEngine,
    make_app,
    step,
)

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-payloads"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-payloads not present")
T0 = 1_750_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine(kind: str, **kw) -> tuple[SimEngine, Clock]:
    clock = Clock()
    return SimEngine(kind, clock=clock, **kw), clock


def samples(payload: bytes) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(payload.decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def type_lines(payload: bytes) -> dict[str, str]:
    return dict(re.findall(rb"^# TYPE (\S+) (\S+)$", payload, re.M))


# ------------------------------------------------------------------------------ wire format


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_valid_payload_the_mapping_reads(kind):
    e, clock = engine(kind, load=3.0)
    clock.t += 60
    payload = e.render()
    assert samples(payload)  # prometheus_client parses it
    name, models = extract(payload, "auto")
    assert name == kind
    snap = models[e.model if kind not in ("tgi", "llamacpp") else ""]
    assert snap.generation_tokens == e.generation_tokens_at(clock.t) > 0
    assert snap.running == round(e.running(clock.t)) > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(KINDS),
    rps=st.floats(0.1, 30),
    ranks=st.integers(1, 4),
    capacity=st.none() | st.floats(200, 20000),
    times=st.lists(st.floats(0.5, 120), min_size=1, max_size=3),
    restart_at=st.none() | st.integers(0, 3),
)
def test_what_the_mapping_reads_is_the_simulators_truth(kind, rps, ranks, capacity, times, restart_at):
    e, clock = engine(kind, load=rps, ranks=ranks, capacity_tokens_per_second=capacity, seed=5)
    for i, dt in enumerate(times):
        clock.t += dt
        if i == restart_at:
            e.restart()
        name, models = extract(e.render(), "auto")
        assert name == kind
        snap = models[e.model if kind not in ("tgi", "llamacpp") else ""]
        now = clock.t
        assert snap.generation_tokens == e.generation_tokens_at(now)
        assert snap.prompt_tokens == e.prompt_tokens_at(now)
        if kind != "llamacpp":  # llama.cpp has no finished-request counter
            assert snap.requests == e.requests_at(now)
            assert snap.failed_requests == e.failed_requests_at(now)
        assert snap.running == round(e.running(now))
        assert snap.waiting == round(e.waiting(now))
        if snap.kv_cache_usage is not None:
            assert snap.kv_cache_usage == pytest.approx(e.kv_cache_usage(now), abs=1e-4)
        if snap.ttft_buckets is not None:
            counts = [c for _, c in snap.ttft_buckets]
            assert counts == sorted(counts)


def test_vllm_payload_is_real_sized_with_created_series_and_real_buckets():
    e, clock = engine("vllm", load=5.0)
    clock.t += 120
    payload = e.render()
    assert 20_000 < len(payload) < 200_000
    assert payload.count(b"_bucket{") >= 200
    types = type_lines(payload)
    assert types[b"vllm:generation_tokens_total"] == b"counter"
    assert types[b"vllm:generation_tokens_created"] == b"gauge"
    assert types[b"vllm:time_to_first_token_seconds"] == b"histogram"
    for fam in types:  # every family has HELP too (prometheus_client always writes it)
        assert b"# HELP " + fam + b" " in payload
    ttft = parse_families(payload, {"vllm:time_to_first_token_seconds_bucket"})
    les = [lab["le"] for lab, _ in ttft["vllm:time_to_first_token_seconds_bucket"]]
    assert [float(x) for x in les[:-1]] == list(VLLM_TTFT_BUCKETS) and les[-1] == "+Inf"
    # prometheus_client's layout: sorted label names, le among them, _count before _sum
    assert b'vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name=' in payload
    assert payload.index(b"vllm:e2e_request_latency_seconds_count") < payload.index(
        b"vllm:e2e_request_latency_seconds_sum"
    )
    assert b'vllm:request_success_total{engine="0",finished_reason="stop",model_name=' in payload


def test_vllm_data_parallel_splits_series_by_engine_index():
    e, clock = engine("vllm", load=5.0, ranks=2)
    clock.t += 30
    s = samples(e.render())
    gen = s["vllm:generation_tokens_total"]
    assert sorted(lab["engine"] for lab, _ in gen) == ["0", "1"]
    assert sum(v for _, v in gen) == e.generation_tokens_at(clock.t)
    _, models = extract(e.render(), "vllm")
    assert models[e.model].kv_cache_usage == pytest.approx(e.kv_cache_usage(clock.t))


def test_tgi_payload_format():
    e, clock = engine("tgi", load=5.0)
    clock.t += 120
    payload = e.render()
    assert len(payload) > 60_000  # ~1,900 samples: tgi_batch_next_size alone has 1,025
    types = type_lines(payload)
    assert b"tgi_request_success" in types and b"tgi_request_success_total" not in types
    assert re.search(rb"^tgi_request_success \d+$", payload, re.M)  # integer, no _total
    assert b"\n\n# HELP tgi_request_count" in payload  # blank line between families
    assert b"# HELP tgi_batch_concat " not in payload  # TYPE without HELP, as TGI does
    les = [lab["le"] for lab, _ in parse_families(payload, {"tgi_request_generated_tokens_bucket"})["tgi_request_generated_tokens_bucket"]]
    assert les[:3] == ["5.12", "10.24", "15.36"] and len(les) == 101  # linear buckets
    assert b'tgi_batch_forward_duration_bucket{method="prefill",le="0.00015000000000000001"}' in payload
    assert b"_created" not in payload


def test_sglang_payload_format():
    e, clock = engine("sglang", load=5.0, ranks=2, model="Qwen/Qwen2.5-72B-Instruct")
    clock.t += 60
    payload = e.render()
    s = samples(payload)
    # every scheduler rank publishes the total (priority="") and one series per priority
    rows = s["sglang:num_running_reqs"]
    assert sorted((lab["tp_rank"], lab["priority"]) for lab, _ in rows) == [
        (r, p) for r in ("0", "1") for p in ("", "0", "10")
    ]
    totals = [v for lab, v in rows if lab["priority"] == ""]
    assert totals == [round(e.running(clock.t))] * 2
    modes = {lab["mode"] for lab, _ in s["sglang:realtime_tokens_total"]}
    assert modes == {"prefill_compute", "prefill_cache", "decode"}
    _, models = extract(payload, "sglang")
    snap = models["Qwen/Qwen2.5-72B-Instruct"]
    assert snap.running == totals[0] and not snap.bursty_tokens
    assert snap.queue_buckets[-1][1] == e._hists["queue_time_seconds"].total  # one rank's copy
    ttft = s["sglang:time_to_first_token_seconds_bucket"]
    assert all(set(lab) == {"model_name", "le"} for lab, _ in ttft)
    assert [float(lab["le"]) for lab, _ in ttft[:-1]] == list(SGLANG_TTFT_BUCKETS)


FIX = Path(__file__).resolve().parents[1] / "fixtures" / "engines"
CURRENT_FIXTURE = {
    "vllm": "vllm-0.33-dp2.prom",
    "tgi": "tgi-3.3.prom",
    "sglang": "sglang-0.5.23-priority-allranks.prom",
    "triton": "triton-trtllm-ensemble.prom",
    "llamacpp": "llamacpp-current.prom",
    "trtllm": "trtllm-serve-1.2.prom",
}


@pytest.mark.parametrize("kind", KINDS)
def test_sim_families_match_the_current_release_fixture(kind):
    """Every family of the engine's current-release fixture (written from upstream source) that
    the mapping reads has the same type in the simulator's payload: the demo and the scale
    bench run on current shapes.  (The ../shared checks below compare with real captures.)"""
    from ai_signals_exporter.engines import wanted_names

    fixture = type_lines((FIX / CURRENT_FIXTURE[kind]).read_bytes())
    e, clock = engine(kind, load=2.0, ranks=2)
    clock.t += 30
    ours = type_lines(e.render())
    wanted = {n.encode() for n in wanted_names(kind)}
    read = {f for f in fixture if any(w == f or w.startswith(f + b"_") for w in wanted)}
    assert read, kind
    for fam in read:
        assert ours.get(fam) == fixture[fam], fam


@needs_real
def test_tgi_families_match_the_real_capture():
    real = type_lines((REAL / "tgi-datadog-payload.prom").read_bytes())
    e, clock = engine("tgi", load=2.0)
    clock.t += 30
    assert type_lines(e.render()) == real


@needs_real
def test_vllm_families_cover_the_real_v1_names():
    real = type_lines((REAL / "vllm-datadog-opt125m-mixed-v0-v1.prom").read_bytes())
    e, clock = engine("vllm", load=2.0)
    clock.t += 30
    ours = type_lines(e.render())
    v1 = {
        b"vllm:num_requests_running", b"vllm:num_requests_waiting", b"vllm:kv_cache_usage_perc",
        b"vllm:prompt_tokens_total", b"vllm:generation_tokens_total", b"vllm:request_success_total",
        b"vllm:time_to_first_token_seconds", b"vllm:inter_token_latency_seconds",
        b"vllm:e2e_request_latency_seconds", b"vllm:request_queue_time_seconds",
        b"vllm:prefix_cache_queries_total", b"vllm:engine_sleep_state", b"vllm:iteration_tokens_total",
    }  # fmt: skip
    for name in v1:
        assert ours[name] == real[name], name


@needs_real
def test_sglang_families_match_the_real_capture_where_both_have_them():
    real = type_lines((REAL / "sglang-datadog-v0.5.10-opt125m.prom").read_bytes())
    e, clock = engine("sglang", load=2.0)
    clock.t += 30
    ours = type_lines(e.render())
    common = set(real) & set(ours)
    assert len(common) >= 15
    assert all(real[n] == ours[n] for n in common)


# ---------------------------------------------------------------------- ground-truth rates


def test_smooth_engine_rate_equals_load_times_tokens():
    e, clock = engine("vllm", load=4.0, output_tokens=200, prompt_tokens=300)
    t0, t1 = T0 + 30, T0 + 60
    assert e.expected_generation_rate(t0, t1) == pytest.approx(800, rel=0.01)
    assert e.expected_prompt_rate(t0, t1) == pytest.approx(1200, rel=0.01)
    assert e.expected_request_rate(t0, t1) == pytest.approx(4, rel=0.05)
    # what the exporter would compute from two scrapes is exactly the ground truth
    clock.t = t0
    _, m0 = extract(e.render(), "vllm")
    clock.t = t1
    _, m1 = extract(e.render(), "vllm")
    got = (m1[e.model].generation_tokens - m0[e.model].generation_tokens) / (t1 - t0)
    assert got == e.expected_generation_rate(t0, t1)


def test_load_in_tokens_per_second():
    e, _ = engine("vllm", load=1500.0, load_unit="tokens", output_tokens=250)
    assert e.expected_generation_rate(T0 + 30, T0 + 60) == pytest.approx(1500, rel=0.01)
    assert e.expected_request_rate(T0 + 30, T0 + 60) == pytest.approx(6, rel=0.05)


def test_load_curve_is_followed():
    e, _ = engine("vllm", load=step(1.0, 6.0, at=100.0), output_tokens=100)
    assert e.expected_generation_rate(T0 + 40, T0 + 90) == pytest.approx(100, rel=0.01)
    assert e.expected_generation_rate(T0 + 140, T0 + 190) == pytest.approx(600, rel=0.01)


@pytest.mark.parametrize("kind", ["tgi", "triton"])
def test_bursty_engines_count_tokens_when_requests_finish(kind):
    e, _ = engine(kind, load=0.5, output_tokens=256, seed=3)
    rates = [e.expected_generation_rate(T0 + 60 + i * 0.5, T0 + 60.5 + i * 0.5) for i in range(60)]
    assert min(rates) == 0  # nothing counted while requests are still generating
    assert max(rates) > 5 * 0.5 * 256  # then a whole request at once
    long = e.expected_generation_rate(T0 + 60, T0 + 660)
    assert long == pytest.approx(e.work_rate(T0 + 60, T0 + 660), rel=0.1)


@pytest.mark.parametrize("kind", ["vllm", "sglang"])  # SGLang: realtime_tokens_total
def test_smooth_engine_is_not_bursty(kind):
    e, _ = engine(kind, load=0.5, output_tokens=256)
    rates = [e.expected_generation_rate(T0 + 60 + i, T0 + 61 + i) for i in range(30)]
    assert min(rates) > 0.5 * 128 and max(rates) < 0.5 * 256 * 1.5


def test_saturation_flattens_tokens_and_grows_queue_and_ttft():
    e, _ = engine("vllm", load=step(2.0, 8.0, at=60.0), output_tokens=250, capacity_tokens_per_second=1000)
    before = e.expected_generation_rate(T0 + 30, T0 + 55)
    after = e.expected_generation_rate(T0 + 120, T0 + 180)
    assert before == pytest.approx(500, rel=0.02)
    assert after == pytest.approx(1000, rel=0.02)  # capped at capacity, not 2000
    assert e.waiting(T0 + 55) == 0
    assert e.waiting(T0 + 180) > e.waiting(T0 + 120) > 100  # (8 - 4) req/s pile up
    assert e.ttft_median(T0 + 170, T0 + 180) > 10 * e.ttft_median(T0 + 30, T0 + 55)
    assert e.kv_cache_usage(T0 + 180) == pytest.approx(0.95, abs=0.02)
    assert e.kv_cache_usage(T0 + 55) < 0.6


def test_ttft_histogram_moves_with_the_queue():
    e, clock = engine("vllm", load=step(2.0, 8.0, at=60.0), output_tokens=250, capacity_tokens_per_second=1000)

    def ttft_counts():
        _, m = extract(e.render(), "vllm")
        return dict(m[e.model].ttft_buckets)

    clock.t = T0 + 55
    a = ttft_counts()
    clock.t = T0 + 200
    b = ttft_counts()
    fast_before = a[0.25] / a[math.inf]
    fast_after = (b[0.25] - a[0.25]) / (b[math.inf] - a[math.inf])
    assert fast_before > 0.9 and fast_after < 0.5


def test_histograms_are_cumulative_and_monotone_over_time():
    e, clock = engine("vllm", load=step(1.0, 9.0, at=20.0), capacity_tokens_per_second=1500)
    previous: dict = {}
    for _ in range(6):
        clock.t += 15
        s = samples(e.render())
        for name, rows in s.items():
            if not name.endswith("_bucket"):
                continue
            by_series: dict = {}
            for lab, v in rows:
                key = (name, tuple(sorted((k, x) for k, x in lab.items() if k != "le")))
                by_series.setdefault(key, []).append(v)
            for key, values in by_series.items():
                assert values == sorted(values), key  # monotone across le
                old = previous.get(key)
                if old:
                    assert all(n >= o for n, o in zip(values, old)), key  # and over time
                previous[key] = values


# --------------------------------------------------------------------------------- restarts


@pytest.mark.parametrize("kind", ["vllm", "tgi"])
def test_restart_resets_counters(kind):
    e, clock = engine(kind, load=5.0)
    clock.t += 60
    before = e.generation_tokens_at(clock.t)
    t_before = clock.t
    e.restart()
    _, models = extract(e.render(), kind)
    snap = next(iter(models.values()))
    assert before > 0 and snap.generation_tokens == 0 and snap.requests == 0
    clock.t += 30
    after = e.generation_tokens_at(clock.t)
    assert 0 < after < before
    # Across the reset the ground truth counts both sides, like reset-aware rate() does.
    assert e.expected_generation_rate(t_before - 10, clock.t) * 40 == pytest.approx(
        (before - e.generation_tokens_at(t_before - 10)) + after
    )
    if kind == "vllm":
        created = parse_families(e.render(), {"vllm:generation_tokens_created"})
        assert created["vllm:generation_tokens_created"][0][1] == pytest.approx(t_before)


# --------------------------------------------------------------------------------- memory


@pytest.mark.parametrize("kind", ["vllm", "tgi"])
def test_history_is_bounded_for_long_runs(kind):
    e, clock = engine(kind, load=20.0, history_seconds=60)
    reference, ref_clock = engine(kind, load=20.0)  # keeps everything
    for _ in range(2 * 3600 // 300):  # two hours, a scrape every 5 minutes
        clock.t += 300
        ref_clock.t = clock.t
        assert e.render() == reference.render()
    # Kept: the history, or what the next render needs since the last one, whichever is longer.
    assert len(e._S) * e.dt <= 2 * (300 + e.duration + 60)
    assert len(e._cum_out) < 20 * 2 * (300 + e.duration + 60)  # of 144,000 requests
    now = clock.t
    assert e.expected_generation_rate(now - 30, now) == reference.expected_generation_rate(now - 30, now)
    with pytest.raises(ValueError):
        e.expected_generation_rate(now - 3600, now)


# ---------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_bytes(kind):
    a, ca = engine(kind, load=3.0, seed=7)
    b, cb = engine(kind, load=3.0, seed=7)
    ca.t += 45
    cb.t += 45
    assert a.render() == b.render()


def test_seed_changes_bursty_request_sizes():
    a, _ = engine("tgi", load=3.0, seed=1)
    b, _ = engine("tgi", load=3.0, seed=2)
    assert a.generation_tokens_at(T0 + 100) != b.generation_tokens_at(T0 + 100)


def test_llamacpp_counters_have_six_significant_digits():
    e, clock = engine("llamacpp", load=20.0, output_tokens=1000)
    clock.t += 300
    payload = e.render()
    assert re.search(rb"^llamacpp:tokens_predicted_total \d\.\d{1,5}e\+06$", payload, re.M)
    _, models = extract(payload, "llamacpp")
    assert models[""].generation_tokens == e.generation_tokens_at(clock.t)


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError):
        SimEngine("ollama")


# ------------------------------------------------------------------------------- HTTP app


async def test_make_app_serves_several_pods_and_failures(aiohttp_client):
    a = SimEngine("vllm", model="a", load=2.0)
    b = SimEngine("tgi", load=2.0)
    client = await aiohttp_client(make_app({"/pod-a/metrics": a, "pod-b/metrics": b}))
    assert str(client.server.host) == "127.0.0.1"
    resp = await client.get("/pod-a/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    name, models = extract(await resp.read(), "auto")
    assert name == "vllm" and set(models) == {"a"}
    resp = await client.get("/pod-b/metrics")
    assert extract(await resp.read(), "auto")[0] == "tgi"
    b.status = 503
    resp = await client.get("/pod-b/metrics")
    assert resp.status == 503
    assert (await client.get("/nope")).status == 404
