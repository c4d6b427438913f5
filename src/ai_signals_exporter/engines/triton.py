"""NVIDIA Triton, per ``model`` label (``version`` is aggregated away).  Core Triton has no
token series; the TensorRT-LLM backend adds token-length histograms (their ``_sum`` is the
cumulative token count, observed per finished response), request gauges by ``request_type`` and
KV blocks by ``kv_cache_block_type``.  In an ensemble deployment these land on different model
names (``ensemble`` counts requests, ``tensorrt_llm`` carries the batcher gauges): each model
gets what it has.  The queue is the TRT-LLM waiting count where present, else Triton's own
pending count (with the decoupled TRT-LLM backend, Triton hands requests over at once, so its
pending count stays near zero while the batcher queues)."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="triton",
    markers=("nv_inference_", "nv_trt_llm_", "nv_llm_"),
    model_labels=("model",),
    generation_tokens=(S("nv_llm_output_token_len_sum"),),
    prompt_tokens=(S("nv_llm_input_token_len_sum"),),
    requests=(S("nv_inference_request_success"),),
    running=(
        S("nv_trt_llm_request_metrics", request_type="active"),
        S("nv_trt_llm_request_metrics", request_type="scheduled"),
    ),
    waiting=(
        S("nv_trt_llm_request_metrics", request_type="waiting"),
        S("nv_inference_pending_request_count"),
    ),
    kv_cache_usage=(S("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="fraction"),),
    # Opt-in (`--metrics-config histogram_latencies=true`), decoupled models; milliseconds.
    ttft_buckets=("nv_inference_first_response_histogram_ms_bucket",),
    ttft_le_scale=0.001,
    bursty_tokens=True,
)
