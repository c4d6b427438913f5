"""vLLM (V0 and V1), and Triton's vLLM backend.

Upstream followed: vllm-project/vllm ``vllm/v1/metrics/loggers.py`` (PrometheusStatLogger),
``docs/design/metrics.md``; triton-inference-server/vllm_backend ``src/utils/metrics.py``
@ 1e66a222.

- Labels: ``model_name`` and ``engine`` (the data-parallel engine index, summed).  Triton's vLLM
  backend labels ``model``/``version`` instead.
- ``request_success_total{finished_reason}`` counts every finish: ``stop``, ``length``,
  ``repetition`` (a result) and ``abort``, ``error`` (no result).  Requests/s reads the first
  group, failed requests/s the second.
- ``num_requests_waiting`` includes requests deferred by the scheduler (split out in
  ``num_requests_waiting_by_reason{reason="capacity|deferred"}``): the queue depth is the total,
  because a deferred request waits as much as one blocked on capacity.
- ``prompt_tokens_total`` includes prefix-cache hits (the iteration's ``num_prompt_tokens``): the
  meaning the other engines' prompt rates are aligned to.
- KV: ``kv_cache_usage_perc`` (0-1); ``gpu_cache_usage_perc`` is the fallback for <= 0.10
  (deprecated in 0.9, hidden from 0.11, gone since 0.12; Triton's vLLM backend still uses it).
- Queue time: ``request_queue_time_seconds`` (time in WAITING).
"""

from .base import EngineMapping, H, S

NO_RESULT = ("abort", "error")

MAPPING = EngineMapping(
    name="vllm",
    markers=("vllm:",),
    model_labels=("model_name", "model"),
    generation_tokens=(S("vllm:generation_tokens_total"),),
    prompt_tokens=(S("vllm:prompt_tokens_total"),),
    requests=(
        S("vllm:request_success_total", exclude={"finished_reason": NO_RESULT}),
        # Triton's vLLM backend has no request_success: Triton's own per-model counter.
        S("nv_inference_request_success"),
    ),
    failed_requests=(
        S("vllm:request_success_total", finished_reason=NO_RESULT),
        S("nv_inference_request_failure"),
    ),
    running=(S("vllm:num_requests_running"),),
    waiting=(S("vllm:num_requests_waiting"),),
    kv_cache_usage=(S("vllm:kv_cache_usage_perc"), S("vllm:gpu_cache_usage_perc")),
    ttft=(H("vllm:time_to_first_token_seconds_bucket"),),
    queue_time=(H("vllm:request_queue_time_seconds_bucket"),),
)
