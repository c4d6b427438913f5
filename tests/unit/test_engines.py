"""Engine mappings against hand-written fixtures in each engine's real wire format, and against
the real captured payloads in ../shared (skipped only when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_signals_exporter.engines import ENGINES, UnknownEngine, detect, extract, wanted_names
from ai_signals_exporter.engines.base import ModelSnapshot, S, build_snapshots

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "engines"
REAL = Path(__file__).resolve().parents[3] / "shared" / "real-payloads"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-payloads not present")

VLLM_TTFT_LE = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0, float("inf"),
)  # fmt: skip


def fixture(name: str) -> bytes:
    return (FIX / name).read_bytes()


def only(models: dict[str, ModelSnapshot]) -> ModelSnapshot:
    assert len(models) == 1, models
    return next(iter(models.values()))


# ------------------------------------------------------------------------------------ vLLM


def test_vllm_v1_data_parallel_sums_counters_and_averages_kv():
    engine, models = extract(fixture("vllm-v1-dp2.prom"), "auto")
    assert engine == "vllm"
    snap = models["meta-llama/Llama-3.1-8B-Instruct"]
    assert snap.generation_tokens == 812345 + 787655
    assert snap.prompt_tokens == pytest.approx(2.6512e6 + 2.4488e6)
    # request_success_total summed over finished_reason and engine index
    assert snap.requests == 3000 + 200 + 5 + 2900 + 180 + 15
    assert snap.running == 12 + 9
    assert snap.waiting == 3 + 1
    assert snap.kv_cache_usage == pytest.approx((0.62 + 0.38) / 2)
    les = tuple(le for le, _ in snap.ttft_buckets)
    assert les == VLLM_TTFT_LE
    counts = dict(snap.ttft_buckets)
    assert counts[0.04] == 10 + 5
    assert counts[float("inf")] == 3205 + 3095


def test_vllm_v0_names_fall_back_to_gpu_cache_usage():
    engine, models = extract(fixture("vllm-v0.prom"), "vllm")
    snap = models["facebook/opt-125m"]
    assert engine == "vllm"
    assert snap.kv_cache_usage == pytest.approx(0.8731)
    assert (snap.generation_tokens, snap.prompt_tokens, snap.requests) == (40321, 91234, 312)
    assert (snap.running, snap.waiting) == (4, 7)
    assert snap.ttft_buckets is None


def test_vllm_new_kv_name_wins_over_deprecated_one():
    _, models = extract(fixture("vllm-0.10-both-kv-names.prom"), "auto")
    snap = models["facebook/opt-125m"]
    assert snap.kv_cache_usage == pytest.approx(0.42)
    assert snap.running is None and snap.requests is None


def test_vllm_under_triton_backend_uses_model_label():
    payload = (
        b'nv_inference_request_success{model="vllm_model",version="1"} 4\n'
        b'vllm:generation_tokens_total{model="vllm_model",version="1"} 99\n'
    )
    engine, models = extract(payload, "auto")
    assert engine == "vllm"
    assert models["vllm_model"].generation_tokens == 99


def test_vllm_models_are_kept_apart():
    payload = (
        b'vllm:num_requests_running{model_name="a"} 1\n'
        b'vllm:num_requests_running{model_name="b"} 2\n'
        b'vllm:kv_cache_usage_perc{model_name="a"} 0.5\n'
        b'vllm:gpu_cache_usage_perc{model_name="b"} 0.25\n'
    )
    _, models = extract(payload, "vllm")
    assert models["a"].running == 1 and models["b"].running == 2
    # priority is resolved per model: "a" has the new name, "b" only the old one
    assert models["a"].kv_cache_usage == 0.5 and models["b"].kv_cache_usage == 0.25


# ------------------------------------------------------------------------------------- TGI


def test_tgi_counters_without_total_and_no_model_label():
    engine, models = extract(fixture("tgi.prom"), "auto")
    assert engine == "tgi"
    snap = models[""]
    assert snap.generation_tokens == 523777
    assert snap.prompt_tokens == 1517321
    assert snap.requests == 2048
    assert (snap.running, snap.waiting) == (32, 17)
    assert snap.kv_cache_usage is None and snap.ttft_buckets is None
    assert ENGINES["tgi"].bursty_tokens


# ---------------------------------------------------------------------------------- SGLang


def test_sglang_sums_over_tp_rank_and_averages_token_usage():
    engine, models = extract(fixture("sglang-tp2.prom"), "auto")
    assert engine == "sglang"
    snap = models["Qwen/Qwen2.5-72B-Instruct"]
    assert snap.generation_tokens == 550000
    assert snap.prompt_tokens == pytest.approx(2.3e6)
    assert snap.requests == 1750
    assert (snap.running, snap.waiting) == (38, 7)
    assert snap.kv_cache_usage == pytest.approx(0.6)
    assert snap.ttft_buckets == ((0.1, 10), (0.5, 400), (1.0, 1200), (5.0, 1700), (float("inf"), 1750))
    # sglang:func_latency_seconds has no model_name: it must not create a "" model
    assert set(models) == {"Qwen/Qwen2.5-72B-Instruct"}


# ---------------------------------------------------------------------------------- Triton


def test_triton_trtllm_ensemble_per_model():
    engine, models = extract(fixture("triton-trtllm-ensemble.prom"), "auto")
    assert engine == "triton"
    assert set(models) == {"ensemble", "preprocessing", "tensorrt_llm", "postprocessing", "resnet50"}
    trt = models["tensorrt_llm"]
    assert trt.generation_tokens == pytest.approx(1.1e6)
    assert trt.prompt_tokens == pytest.approx(3.2e6)
    assert trt.requests == 5120
    assert trt.running == 30  # request_type="active"
    assert trt.waiting == 11  # the batcher's queue, not Triton's pending count (0)
    assert trt.kv_cache_usage == pytest.approx(0.75)
    res = models["resnet50"]
    assert (res.requests, res.waiting) == (77, 4)  # core Triton: pending count is the queue
    assert res.generation_tokens is None and res.running is None and res.kv_cache_usage is None
    assert models["ensemble"].requests == 5120 and models["ensemble"].generation_tokens is None


def test_triton_first_response_histogram_is_converted_to_seconds():
    payload = (
        b'nv_inference_request_success{model="m",version="1"} 3\n'
        b'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="100"} 1\n'
        b'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="500"} 2\n'
        b'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="+Inf"} 3\n'
    )
    _, models = extract(payload, "triton")
    assert models["m"].ttft_buckets == ((0.1, 1), (0.5, 2), (float("inf"), 3))


# ------------------------------------------------------------------------------- llama.cpp


def test_llamacpp_without_labels_and_six_digit_floats():
    engine, models = extract(fixture("llamacpp.prom"), "auto")
    assert engine == "llamacpp"
    snap = models[""]
    assert snap.prompt_tokens == 1234570
    assert snap.generation_tokens == 873421
    assert (snap.running, snap.waiting) == (3, 1)
    assert snap.requests is None and snap.kv_cache_usage is None


def test_llamacpp_old_builds_still_give_kv_usage():
    _, models = extract(fixture("llamacpp-old-kv.prom"), "llamacpp")
    assert models[""].kv_cache_usage == pytest.approx(0.417969)


# --------------------------------------------------------------------------- trtllm-serve


def test_trtllm_serve_is_detected_and_mapped():
    engine, models = extract(fixture("trtllm-serve.prom"), "auto")
    assert engine == "trtllm"
    snap = models["llama-3.1-8b"]
    assert (snap.generation_tokens, snap.prompt_tokens, snap.requests) == (128000, 256000, 500)
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (14, 2, 0.62)
    assert snap.ttft_buckets == ((0.05, 120), (0.5, 480), (float("inf"), 500))


# ----------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "name,engine",
    [
        ("vllm-v1-dp2.prom", "vllm"),
        ("vllm-v0.prom", "vllm"),
        ("tgi.prom", "tgi"),
        ("sglang-tp2.prom", "sglang"),
        ("triton-trtllm-ensemble.prom", "triton"),
        ("llamacpp.prom", "llamacpp"),
        ("trtllm-serve.prom", "trtllm"),
    ],
)
def test_detect_fixtures(name, engine):
    assert detect(fixture(name)) == engine
    assert detect(fixture(name).decode()) == engine


def test_detect_ignores_names_in_help_text_and_unknown_payloads():
    payload = b"# HELP x mentions vllm:num_requests_running and tgi_queue_size\nx 1\n"
    assert detect(payload) is None
    with pytest.raises(UnknownEngine):
        extract(payload, "auto")
    with pytest.raises(UnknownEngine):
        extract(b"", "auto")


def test_detect_first_line_sample():
    assert detect(b"tgi_queue_size 0") == "tgi"


def test_explicit_engine_with_nothing_of_it_gives_no_models():
    assert extract(b"up 1\n", "vllm") == ("vllm", {})


def test_unknown_engine_name_raises():
    with pytest.raises(UnknownEngine):
        extract(b"x 1\n", "ollama")


def test_wanted_names_cover_every_mapping_name():
    for name, mapping in ENGINES.items():
        wanted = wanted_names(name)
        assert "vllm:kv_cache_usage_perc" in wanted_names("vllm")
        for field in ("generation_tokens", "prompt_tokens", "requests", "running", "waiting", "kv_cache_usage"):
            for series in getattr(mapping, field):
                assert series.name in wanted
        assert set(mapping.ttft_buckets) <= wanted


def test_build_snapshots_where_filter_and_priority():
    mapping = ENGINES["triton"]
    samples = {
        "nv_trt_llm_request_metrics": [
            ({"model": "a", "request_type": "scheduled"}, 5.0),
            ({"model": "b", "request_type": "active"}, 7.0),
            ({"model": "b", "request_type": "scheduled"}, 6.0),
        ]
    }
    snaps = build_snapshots(mapping, samples)
    assert snaps["a"].running == 5  # no "active" for a: falls back to "scheduled"
    assert snaps["b"].running == 7
    assert S("x", a="1").matches({"a": "1", "b": "2"}) and not S("x", a="1").matches({"a": "2"})


# -------------------------------------------------------------------------- real payloads


@needs_real
def test_real_vllm_mixed_payload():
    engine, models = extract((REAL / "vllm-datadog-opt125m-mixed-v0-v1.prom").read_bytes(), "auto")
    assert engine == "vllm"
    snap = models["facebook/opt-125m"]
    assert (snap.generation_tokens, snap.prompt_tokens, snap.requests) == (7, 5, 1)
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (0, 0, 0)
    assert snap.ttft_buckets[-1] == (float("inf"), 1.0)
    assert dict(snap.ttft_buckets)[0.5] == 1.0 and dict(snap.ttft_buckets)[0.25] == 0.0


@needs_real
def test_real_tgi_payload():
    engine, models = extract((REAL / "tgi-datadog-payload.prom").read_bytes(), "auto")
    assert engine == "tgi"
    snap = models[""]
    assert (snap.generation_tokens, snap.prompt_tokens, snap.requests) == (3423, 662, 109)
    assert (snap.running, snap.waiting) == (0, 0)


@needs_real
def test_real_sglang_payloads():
    engine, models = extract((REAL / "sglang-datadog-v0.5.10-opt125m.prom").read_bytes(), "auto")
    assert engine == "sglang"
    snap = models["facebook/opt-125m"]
    assert (snap.generation_tokens, snap.prompt_tokens, snap.requests) == (32, 5, 1)
    assert snap.kv_cache_usage == 0.25
    engine, models = extract((REAL / "sglang-docs-llama31-8b.prom").read_bytes(), "auto")
    snap = models["meta-llama/Llama-3.1-8B-Instruct"]
    assert snap.generation_tokens == 7.557572e6
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (162, 2826, 0.28)
    assert snap.requests is None  # that capture predates num_requests_total
    assert dict(snap.ttft_buckets)[float("inf")] == 11008


@needs_real
def test_real_triton_payload_has_no_token_signal():
    engine, models = extract((REAL / "triton-datadog-densenet.prom").read_bytes(), "auto")
    assert engine == "triton"
    assert len(models) == 8
    assert models["densenet_onnx"].requests == 3
    assert all(m.generation_tokens is None for m in models.values())


@needs_real
@pytest.mark.parametrize("name", [p.name for p in sorted(REAL.glob("dcgm-*.prom"))] if REAL.is_dir() else [])
def test_real_dcgm_payloads_are_no_engine(name):
    with pytest.raises(UnknownEngine):
        extract((REAL / name).read_bytes(), "auto")
