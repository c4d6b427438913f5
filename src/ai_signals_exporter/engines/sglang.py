"""SGLang (``--enable-metrics``).

Upstream followed: sgl-project/sglang ``python/sglang/srt/metrics/collector.py`` @ 00ae9c15
(SchedulerMetricsCollector, TokenizerMetricsCollector) and
``python/sglang/srt/managers/scheduler_metrics_mixin.py`` (scheduler labels).

- Scheduler series (running, queue, token_usage, queue_time, realtime_tokens) carry
  ``model_name, engine_type, tp_rank, pp_rank[, dp_rank]``.  By default only the first TP rank
  of each DP group publishes; with ``--enable-metrics-for-all-schedulers`` every TP (and PP) rank
  publishes the same scheduler state, so only the lowest ``tp_rank``/``pp_rank`` is read and
  ``dp_rank`` groups are summed.  With priority scheduling a gauge is published as the total
  (``priority=""``) and once per priority: only the total is read.  (The priority label is not
  in the collector.py version read here; it follows the 0.5.23 payloads reported in issue 18,
  and series without the label are read as totals, so both shapes give the same numbers.)
- Tokens: ``realtime_tokens_total{mode}`` advances every scheduler log interval
  (``prefill_compute``, ``prefill_cache``, ``decode``): preferred.  Prompt tokens =
  ``prefill_compute + prefill_cache`` (cache hits included, as vLLM counts them).  The older
  ``prompt_tokens_total``/``generation_tokens_total`` are counted in
  ``observe_one_finished_request`` (bursty): fallback only.
- Requests: ``num_requests_total`` (finished requests, from the tokenizer manager);
  ``num_aborted_requests_total`` counts aborts separately (failed requests/s).
- KV usage: ``token_usage`` (0-1).  Queue time: ``queue_time_seconds``.
"""

from .base import EngineMapping, H, S

MAPPING = EngineMapping(
    name="sglang",
    markers=("sglang:",),
    model_labels=("model_name",),
    generation_tokens=(
        S("sglang:realtime_tokens_total", mode="decode"),
        S("sglang:generation_tokens_total", bursty=True),
    ),
    prompt_tokens=(
        S("sglang:realtime_tokens_total", mode=("prefill_compute", "prefill_cache")),
        S("sglang:prompt_tokens_total", bursty=True),
    ),
    requests=(S("sglang:num_requests_total"),),
    failed_requests=(S("sglang:num_aborted_requests_total"),),
    running=(S("sglang:num_running_reqs"),),
    waiting=(S("sglang:num_queue_reqs"),),
    kv_cache_usage=(S("sglang:token_usage"),),
    ttft=(H("sglang:time_to_first_token_seconds_bucket"),),
    queue_time=(H("sglang:queue_time_seconds_bucket"),),
    replica_labels=("tp_rank", "pp_rank"),
    total_label="priority",
)
