"""llama.cpp ``llama-server --metrics``.  No labels at all (model key "").  No finished-request
counter and no TTFT.  The KV gauge ``kv_cache_usage_ratio`` was removed in mid-2025; older builds
still export it, so it stays as the only candidate.  Values are printed with 6 significant
digits, so large counters step."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="llamacpp",
    markers=("llamacpp:",),
    model_labels=(),
    generation_tokens=(S("llamacpp:tokens_predicted_total"),),
    prompt_tokens=(S("llamacpp:prompt_tokens_total"),),
    running=(S("llamacpp:requests_processing"),),
    waiting=(S("llamacpp:requests_deferred"),),
    kv_cache_usage=(S("llamacpp:kv_cache_usage_ratio"),),
)
