"""TensorRT-LLM ``trtllm-serve`` (Prometheus at ``/prometheus/metrics``, not ``/metrics``).

Upstream followed: NVIDIA/TensorRT-LLM ``tensorrt_llm/metrics/collector.py`` @ 050f80de
(MetricsCollector: ``log_request_metrics_dict`` counts tokens and ``request_success_total`` when a
request finishes; ``log_iteration_stats`` sets running/waiting from ``numActiveRequests``/
``numQueuedRequests`` and ``kv_cache_utilization = usedNumBlocks / maxNumBlocks``, "Needs
`enable_iter_perf_stats: true`") and ``tensorrt_llm/serve/openai_server.py`` (mount of
``/prometheus/metrics``).  That version also has ``trtllm_request_error_total``, not read here.

vLLM-like names with a ``trtllm_`` prefix, labels ``model_name`` and ``engine_type``.
- ``request_success_total{finished_reason}``: as vLLM, ``abort``/``error`` are failures.
- Token counters (``prompt_tokens_total``, ``generation_tokens_total``) are incremented when a
  request finishes (bursty).
- ``num_requests_running``/``_waiting`` and ``kv_cache_utilization`` come from the iteration
  stats: they exist only with ``enable_iter_perf_stats: true`` in the LLM API options.
  ``kv_cache_utilization`` is a 0-1 fraction (used blocks / max blocks).
- Early builds (1.1) export only the request histograms and ``request_success_total``.
- Only found by ``engine: auto``: the config's engine list names the five engines of the
  DESIGN contract.
"""

from .base import EngineMapping, H, S

NO_RESULT = ("abort", "error")

MAPPING = EngineMapping(
    name="trtllm",
    markers=("trtllm_",),
    model_labels=("model_name",),
    generation_tokens=(S("trtllm_generation_tokens_total", bursty=True),),
    prompt_tokens=(S("trtllm_prompt_tokens_total", bursty=True),),
    requests=(S("trtllm_request_success_total", exclude={"finished_reason": NO_RESULT}),),
    failed_requests=(S("trtllm_request_success_total", finished_reason=NO_RESULT),),
    running=(S("trtllm_num_requests_running"),),
    waiting=(S("trtllm_num_requests_waiting"),),
    kv_cache_usage=(S("trtllm_kv_cache_utilization"),),
    ttft=(H("trtllm_time_to_first_token_seconds_bucket"),),
    queue_time=(H("trtllm_request_queue_time_seconds_bucket"),),
    metrics_path="/prometheus/metrics",
)
