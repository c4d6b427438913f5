"""vLLM (V0 and V1).  Labels: ``model_name`` (and ``engine``, the data-parallel engine index, on
V1).  Counters are exposed with ``_total``.  The KV-cache gauge was renamed in 0.9
(``gpu_cache_usage_perc`` -> ``kv_cache_usage_perc``); 0.9-0.10 export both, so the new name
wins and the old one is the fallback.  Triton's vLLM backend exports the same names labelled
``model`` instead of ``model_name``."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="vllm",
    markers=("vllm:",),
    model_labels=("model_name", "model"),
    generation_tokens=(S("vllm:generation_tokens_total"),),
    prompt_tokens=(S("vllm:prompt_tokens_total"),),
    requests=(S("vllm:request_success_total"),),  # summed over finished_reason
    running=(S("vllm:num_requests_running"),),
    waiting=(S("vllm:num_requests_waiting"),),
    kv_cache_usage=(S("vllm:kv_cache_usage_perc"), S("vllm:gpu_cache_usage_perc")),
    ttft_buckets=("vllm:time_to_first_token_seconds_bucket",),
)
