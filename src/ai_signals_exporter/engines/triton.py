"""NVIDIA Triton (core metrics and the TensorRT-LLM backend), per ``model`` label.

Upstream followed: triton-inference-server/server ``docs/user_guide/metrics.md`` and
``src/metric_model_reporter.cc`` (latency histograms, ``histogram_latencies``);
triton-inference-server/tensorrtllm_backend ``inflight_batcher_llm/src/custom_metrics_reporter``
(``nv_trt_llm_*``) and ``all_models/inflight_batcher_llm/tensorrt_llm_bls`` (token histograms).

- Core Triton has no token series; the TensorRT-LLM backend adds token-length histograms (their
  ``_sum`` is the cumulative token count, observed per finished response: bursty), request
  gauges by ``request_type`` and KV blocks by ``kv_cache_block_type`` (``fraction`` is 0-1).
  In an ensemble these land on different model names (``ensemble`` counts requests,
  ``tensorrt_llm`` carries the batcher gauges): each model gets what it has.
- Queue: the TRT-LLM waiting count where present, else Triton's own pending count (with the
  decoupled TRT-LLM backend Triton hands requests over at once, so its pending count stays
  near zero while the batcher queues).
- TTFT: ``nv_inference_first_response_histogram_ms`` (opt-in, ``--metrics-config
  histogram_latencies=true``) is published for every model; for a non-decoupled model the first
  response is the whole response.  It is read as TTFT only for models with LLM batcher or token
  series (the decoupled TRT-LLM models), and, like every histogram here, only when it has at
  least base.MIN_FINITE_BUCKETS finite bounds: the default {100, 500, 2000, 5000} ms gives none.
- Queue time: Triton has only the cumulative ``nv_inference_queue_duration_us`` counter (and
  optional summaries): no queue-time quantiles.
- Triton's vLLM backend publishes ``vllm:`` series and is read by the vLLM mapping.
"""

from .base import EngineMapping, H, S

MAPPING = EngineMapping(
    name="triton",
    markers=("nv_inference_", "nv_trt_llm_", "nv_llm_"),
    model_labels=("model",),
    generation_tokens=(S("nv_llm_output_token_len_sum", bursty=True),),
    prompt_tokens=(S("nv_llm_input_token_len_sum", bursty=True),),
    requests=(S("nv_inference_request_success"),),
    failed_requests=(S("nv_inference_request_failure"),),
    running=(
        S("nv_trt_llm_request_metrics", request_type="active"),
        S("nv_trt_llm_request_metrics", request_type="scheduled"),
    ),
    waiting=(
        S("nv_trt_llm_request_metrics", request_type="waiting"),
        S("nv_inference_pending_request_count"),
    ),
    kv_cache_usage=(S("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="fraction"),),
    ttft=(
        H(
            "nv_inference_first_response_histogram_ms_bucket",
            le_scale=0.001,
            only_if=("generation_tokens", "running", "kv_cache_usage"),
        ),
    ),
)
