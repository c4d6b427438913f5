"""Engine mappings against hand-written fixtures in each engine's real wire format, and against
the real captured payloads in ../shared (skipped only when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_signals_exporter.engines import ENGINES, NotExposition, UnknownEngine, detect, extract, wanted_names
from ai_signals_exporter.engines.base import SNAPSHOT_FIELDS, ModelSnapshot, S, build_snapshots

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
    # request_success_total summed over engine index; finishes without a result apart
    assert snap.requests == 3000 + 200 + 2900 + 180
    assert snap.failed_requests == 5 + 15
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
    assert snap.failed_requests == 3 + 1
    assert snap.bursty_tokens  # generated tokens are the finish-time histogram _sum


# ---------------------------------------------------------------------------------- SGLang


def test_sglang_old_reads_one_tp_rank_and_finish_time_counters():
    """Before per-iteration counters: tokens from the finish-time counters (bursty).  Every TP
    rank of a scheduler publishes the same state: the lowest rank is read, not the sum."""
    engine, models = extract(fixture("sglang-tp2.prom"), "auto")
    assert engine == "sglang"
    snap = models["Qwen/Qwen2.5-72B-Instruct"]
    assert snap.generation_tokens == 300000
    assert snap.prompt_tokens == pytest.approx(1.2e6)
    assert snap.requests == 900
    assert (snap.running, snap.waiting) == (20, 5)
    assert snap.kv_cache_usage == pytest.approx(0.7)
    assert snap.bursty_tokens
    # four finite buckets: too coarse for a quantile (base.MIN_FINITE_BUCKETS)
    assert snap.ttft_buckets is None
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
    les = (10, 25, 50, 100, 250, 500)
    payload = b'nv_trt_llm_request_metrics{model="m",request_type="active",version="1"} 2\n' + b"".join(
        b'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="%d"} %d\n' % (le, i)
        for i, le in enumerate(les)
    ) + b'nv_inference_first_response_histogram_ms_bucket{model="m",version="1",le="+Inf"} 9\n'
    _, models = extract(payload, "triton")
    assert models["m"].ttft_buckets == (*((le / 1000, i) for i, le in enumerate(les)), (float("inf"), 9))


# ------------------------------------------------------------------------------- llama.cpp


def test_llamacpp_without_labels_and_six_digit_floats():
    engine, models = extract(fixture("llamacpp.prom"), "auto")
    assert engine == "llamacpp"
    snap = models[""]
    assert snap.prompt_tokens == 1234570
    assert snap.generation_tokens == 873421
    assert (snap.running, snap.waiting) == (3, 1)
    assert snap.requests is None and snap.kv_cache_usage is None


def test_llamacpp_removed_kv_ratio_is_not_read():
    """kv_cache_usage_ratio was removed upstream (PR #13660): no KV output, old build or new."""
    _, models = extract(fixture("llamacpp-old-kv.prom"), "llamacpp")
    assert models[""].kv_cache_usage is None
    assert "llamacpp:kv_cache_usage_ratio" not in wanted_names("llamacpp")


# --------------------------------------------------------------------------- trtllm-serve


def test_trtllm_serve_is_detected_and_mapped():
    engine, models = extract(fixture("trtllm-serve.prom"), "auto")
    assert engine == "trtllm"
    snap = models["llama-3.1-8b"]
    assert (snap.generation_tokens, snap.prompt_tokens) == (128000, 256000)
    assert (snap.requests, snap.failed_requests) == (500, None)
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (14, 2, 0.62)
    assert snap.ttft_buckets is None  # three finite buckets: too coarse
    assert snap.bursty_tokens


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


def test_explicit_engine_with_nothing_of_it_is_not_metrics():
    """A server on the wrong port answering 200 with other metrics serves nothing we read."""
    with pytest.raises(NotExposition) as exc:
        extract(b"# HELP up x\nup 1\n", "vllm")
    assert (exc.value.reason, exc.value.line) == ("not_metrics", "up 1")


@pytest.mark.parametrize(
    "body,reason,line",
    [
        (b"<!DOCTYPE html>\n<html><body>Gradio</body></html>\n", "not_metrics", "<!DOCTYPE html>"),
        (b'{"object": "list", "data": []}', "not_metrics", '{"object": "list", "data": []}'),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not_metrics", "\\ufffdPNG"),
        (b"vllm:num_requests_running 1\n" + b"x 1\n" * 500 + b"<html>\n" * 500, "parse", "<html>"),
    ],
)
def test_bodies_that_are_not_exposition(body, reason, line):
    for engine in ("auto", "vllm"):
        with pytest.raises(NotExposition) as exc:
            extract(body, engine)
        assert exc.value.reason == reason
        assert exc.value.line.startswith(line)


def test_bad_line_is_truncated_and_escaped():
    body = b"<script>" + "é\x1b".encode() * 200 + b"\n"
    with pytest.raises(NotExposition) as exc:
        extract(body, "auto")
    shown = exc.value.line
    assert len(shown) == 123 and shown.endswith("...") and "\x1b" not in shown
    assert shown.startswith("<script>\\xe9\\x1b")


def test_unknown_engine_name_raises():
    with pytest.raises(UnknownEngine):
        extract(b"x 1\n", "ollama")


def test_wanted_names_cover_every_mapping_name():
    for name, mapping in ENGINES.items():
        wanted = wanted_names(name)
        assert "vllm:kv_cache_usage_perc" in wanted_names("vllm")
        for field in SNAPSHOT_FIELDS:
            for series in getattr(mapping, field):
                assert set(series.names) <= wanted
        assert {h.bucket for h in mapping.ttft + mapping.queue_time} <= wanted


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


DCGM_FIX = sorted((FIX.parent / "dcgm").glob("*.prom"))


@pytest.mark.parametrize("path", DCGM_FIX, ids=lambda p: p.name)
def test_own_dcgm_payloads_are_no_engine(path):
    """Same as the ../shared check below, on the project's own dcgm-exporter fixtures."""
    assert len(DCGM_FIX) >= 5
    with pytest.raises(UnknownEngine):
        extract(path.read_bytes(), "auto")


def test_sglang_capture_before_num_requests_total():
    """Like the docs capture in ../shared: an SGLang build without num_requests_total, single
    unlabelled-rank series and the old TTFT buckets."""
    payload = (
        b'sglang:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.128902e+06\n'
        b'sglang:generation_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.557572e+06\n'
        b'sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28\n'
        b'sglang:num_running_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 162.0\n'
        b'sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct"} 2826.0\n'
    )
    snap = extract(payload, "auto")[1]["meta-llama/Llama-3.1-8B-Instruct"]
    assert snap.generation_tokens == 7.557572e6 and snap.bursty_tokens
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (162, 2826, 0.28)
    assert snap.requests is None


@needs_real
@pytest.mark.parametrize("name", [p.name for p in sorted(REAL.glob("dcgm-*.prom"))] if REAL.is_dir() else [])
def test_real_dcgm_payloads_are_no_engine(name):
    with pytest.raises(UnknownEngine):
        extract((REAL / name).read_bytes(), "auto")


# ------------------------------------------------------ current releases: ground truth

INF = float("inf")


def quantiles(buckets):
    from ai_signals_exporter.promql import histogram_quantile

    return histogram_quantile(0.5, buckets), histogram_quantile(0.95, buckets)


def test_vllm_current_finishes_waiting_and_queue_time():
    engine, models = extract(fixture("vllm-0.33-dp2.prom"), "auto")
    snap = models["meta-llama/Llama-3.1-8B-Instruct"]
    assert engine == "vllm"
    assert (snap.running, snap.waiting) == (6 + 5, 4 + 3)  # deferred requests are queued too
    assert snap.kv_cache_usage == pytest.approx(0.4)
    assert snap.requests == 3000 + 400 + 50 + 2900 + 380 + 40  # stop, length, repetition
    assert snap.failed_requests == 12 + 3 + 8 + 2  # abort, error
    assert (snap.generation_tokens, snap.prompt_tokens) == (1.5e6, 5.0e6)
    assert not snap.bursty_tokens
    assert dict(snap.ttft_buckets)[INF] == 3465 + 3330
    assert dict(snap.queue_buckets)[0.8] == 3465 // 2 + 3330 // 2
    assert dict(snap.queue_buckets)[1.0] == 3465 + 3330


def test_sglang_current_priority_and_all_ranks_are_read_once():
    """The issue's case: 6 running and 5 waiting were reported as 24 and 20."""
    _, models = extract(fixture("sglang-0.5.23-priority-allranks.prom"), "sglang")
    snap = models["Qwen/Qwen2.5-72B-Instruct"]
    assert (snap.running, snap.waiting) == (6, 5)
    assert snap.kv_cache_usage == pytest.approx(0.42)
    # per-iteration counters win over the finish-time ones, and are not bursty
    assert snap.generation_tokens == 90000
    assert snap.prompt_tokens == 250000 + 50000  # cache hits included, as vLLM counts them
    assert not snap.bursty_tokens
    assert (snap.requests, snap.failed_requests) == (1000, 7)
    assert dict(snap.queue_buckets)[INF] == 1000  # one rank's copy, not two
    assert quantiles(snap.queue_buckets)[0] == pytest.approx(1.0 + 1.0 * (500 - 400) / 600)
    assert dict(snap.ttft_buckets)[INF] == 1000


def test_sglang_dp_ranks_are_distinct_schedulers():
    payload = b"".join(
        b'sglang:num_running_reqs{model_name="m",dp_rank="%d",tp_rank="%d",pp_rank="0"} %d\n' % (dp, tp, 3 + dp)
        for dp in (0, 1)
        for tp in (0, 1)
    )
    _, models = extract(payload, "sglang")
    assert models["m"].running == 3 + 4


def test_tgi_current_queue_time_and_failures():
    _, models = extract(fixture("tgi-3.3.prom"), "tgi")
    snap = models[""]
    assert (snap.running, snap.waiting, snap.requests, snap.failed_requests) == (8, 3, 900, 5)
    assert (snap.generation_tokens, snap.prompt_tokens) == (150000, 400000)
    assert snap.bursty_tokens and snap.ttft_buckets is None
    p50, p95 = quantiles(snap.queue_buckets)
    assert 0.05 <= p50 <= 0.5 and p95 > p50


def test_triton_ttft_only_for_decoupled_llm_models_with_fine_buckets():
    _, models = extract(fixture("triton-25.x-decoupled-and-not.prom"), "auto")
    trt, res = models["tensorrt_llm"], models["resnet50"]
    assert (trt.running, trt.waiting, trt.kv_cache_usage) == (9, 2, 0.5)
    assert dict(trt.ttft_buckets)[0.25] == 500 and dict(trt.ttft_buckets)[0.1] == 250
    assert quantiles(trt.ttft_buckets) == (pytest.approx(0.1), pytest.approx(0.1 + 0.15 * 0.9))
    # not decoupled: its first response is the whole response, and the default buckets are coarse
    assert res.ttft_buckets is None
    assert (res.requests, res.failed_requests, res.waiting) == (77, 2, 4)
    assert trt.queue_buckets is None  # Triton has no queue-time histogram


def test_triton_non_llm_model_with_fine_buckets_still_has_no_ttft():
    payload = b"".join(
        b'nv_inference_first_response_histogram_ms_bucket{model="r",version="1",le="%d"} 1\n' % le
        for le in (1, 2, 5, 10, 20, 50, 100)
    ) + b'nv_inference_request_success{model="r",version="1"} 1\n'
    _, models = extract(payload, "triton")
    assert models["r"].ttft_buckets is None


def test_triton_vllm_backend_requests_from_triton_counters():
    payload = (
        b'nv_inference_request_success{model="vllm_model",version="1"} 40\n'
        b'nv_inference_request_failure{model="vllm_model",reason="BACKEND",version="1"} 2\n'
        b'vllm:generation_tokens_total{model="vllm_model",version="1"} 99\n'
        b'vllm:prompt_tokens_total{model="vllm_model",version="1"} 300\n'
    )
    engine, models = extract(payload, "auto")
    snap = models["vllm_model"]
    assert engine == "vllm"
    assert (snap.requests, snap.failed_requests, snap.generation_tokens) == (40, 2, 99)
    assert snap.running is None and snap.kv_cache_usage is None


def test_trtllm_serve_current_finishes_and_queue_time():
    _, models = extract(fixture("trtllm-serve-1.2.prom"), "auto")
    snap = models["llama-3.1-8b"]
    assert (snap.requests, snap.failed_requests) == (495, 5)
    assert (snap.running, snap.waiting, snap.kv_cache_usage) == (14, 2, 0.62)
    assert quantiles(snap.queue_buckets)[0] == pytest.approx(0.3)  # all of the first half in (0, 0.3]
    assert quantiles(snap.ttft_buckets)[0] == pytest.approx(0.1)
    assert snap.bursty_tokens
    assert ENGINES["trtllm"].metrics_path == "/prometheus/metrics"


def test_llamacpp_current_prompt_tokens_include_cached():
    _, models = extract(fixture("llamacpp-current.prom"), "auto")
    snap = models[""]
    assert snap.prompt_tokens == 1234570 + 400000
    assert (snap.generation_tokens, snap.running, snap.waiting) == (873421, 2, 1)
    assert snap.kv_cache_usage is None and snap.requests is None


def test_llamacpp_old_build_prompt_tokens_alone():
    _, models = extract(fixture("llamacpp.prom"), "llamacpp")
    assert models[""].prompt_tokens == 1234570
