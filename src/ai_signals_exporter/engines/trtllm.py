"""TensorRT-LLM ``trtllm-serve`` (Prometheus at ``/prometheus/metrics``, not ``/metrics``).
vLLM-like names with a ``trtllm_`` prefix, labels ``model_name`` and ``engine_type``.  Early
builds (1.1) export only the request histograms and ``request_success_total``; token counters,
queue gauges and ``kv_cache_utilization`` (0-1) came later.  Only found by ``engine: auto``:
the config's engine list names the five engines of the DESIGN contract."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="trtllm",
    markers=("trtllm_",),
    model_labels=("model_name",),
    generation_tokens=(S("trtllm_generation_tokens_total"),),
    prompt_tokens=(S("trtllm_prompt_tokens_total"),),
    requests=(S("trtllm_request_success_total"),),
    running=(S("trtllm_num_requests_running"),),
    waiting=(S("trtllm_num_requests_waiting"),),
    kv_cache_usage=(S("trtllm_kv_cache_utilization"),),
    ttft_buckets=("trtllm_time_to_first_token_seconds_bucket",),
)
