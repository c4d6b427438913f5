"""SGLang (``--enable-metrics``).  Labels: ``model_name`` plus rank labels (``tp_rank``,
``dp_rank``, ``engine_type``) that are aggregated away.  KV usage is ``token_usage`` (0-1).
Token counters are incremented when a request finishes (bursty)."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="sglang",
    markers=("sglang:",),
    model_labels=("model_name",),
    generation_tokens=(S("sglang:generation_tokens_total"),),
    prompt_tokens=(S("sglang:prompt_tokens_total"),),
    requests=(S("sglang:num_requests_total"),),
    running=(S("sglang:num_running_reqs"),),
    waiting=(S("sglang:num_queue_reqs"),),
    kv_cache_usage=(S("sglang:token_usage"),),
    ttft_buckets=("sglang:time_to_first_token_seconds_bucket",),
    bursty_tokens=True,
)
