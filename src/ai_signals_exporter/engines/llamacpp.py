"""llama.cpp ``llama-server --metrics``.

Upstream followed: ggml-org/llama.cpp ``tools/server/server-context.cpp`` / ``server.cpp`` metrics
handler and ``tools/server/README.md``; the metrics refactor (commit decaf508b, "server:
refactor + correctness fixes for metrics") that added ``prompt_tokens_cached_total``.

- No labels at all (model key "").  No finished-request counter, no TTFT, no queue histogram.
- Since that refactor ``prompt_tokens_total`` excludes prompt tokens served from the cache
  (``prompt_tokens_cached_total``): prompt tokens are their sum, so a prompt rate means what it
  means for vLLM and SGLang (cache hits included).  Builds before it have only
  ``prompt_tokens_total`` (which then counted every prompt token of a slot).
- KV usage: ``kv_cache_usage_ratio`` was removed (PR #13660, mid-2025); no KV output for a
  current build (old builds are not read for it either: one meaning per output).
- Router mode (one server, several models) serves ``/metrics?model=<id>``: configure one target
  per model with that query, and the model's name in the target labels.
- Values print with 6 significant digits, so large counters step.
"""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="llamacpp",
    markers=("llamacpp:",),
    model_labels=(),
    generation_tokens=(S("llamacpp:tokens_predicted_total"),),
    prompt_tokens=(
        S("llamacpp:prompt_tokens_total", "llamacpp:prompt_tokens_cached_total"),
        S("llamacpp:prompt_tokens_total"),
    ),
    running=(S("llamacpp:requests_processing"),),
    waiting=(S("llamacpp:requests_deferred"),),
)
