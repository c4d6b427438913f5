"""SGLang payload: all-scheduler ranks, priority totals, per-iteration token counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import _esc, _go, _hist_lines, _Out

if TYPE_CHECKING:
    from .model import SimEngine


def _render_sglang(e: SimEngine, now: float) -> str:
    """SGLang (current release) with --enable-metrics-for-all-schedulers and priority
    scheduling: every TP rank (`ranks`) publishes the same scheduler state, labelled
    `engine_type, model_name, pp_rank, tp_rank`; gauges as the total (`priority=""`) and per
    priority.  Tokenizer-side counters and TTFT carry `model_name` only."""
    out = _Out(_go)
    m = _esc(e.model)
    n = e.ranks
    sched = [f'engine_type="unified",model_name="{m}",pp_rank="0",tp_rank="{i}"' for i in range(n)]
    gen, prompt, reqs = e._counts(now)
    running = round(e.running(now))
    waiting = round(e.waiting(now))
    kv = e.kv_cache_usage(now)

    def gauge(name: str, help: str, total: float, by_priority: bool = True) -> None:
        out.head(f"sglang:{name}", "gauge", help)
        for lab in sched:
            if not by_priority:
                out.line(f"sglang:{name}", lab, float(total))
                continue
            high = int(total) // 3 if float(total).is_integer() else total / 3
            for prio, v in (("", total), ("0", total - high), ("10", high)):
                out.line(f"sglang:{name}", f'{lab},priority="{prio}"', float(v))

    out.head("sglang:http_requests_active", "gauge", "Number of currently active HTTP requests")
    out.line("sglang:http_requests_active", 'endpoint="/generate",method="POST"', float(running + waiting))
    gauge("num_running_reqs", "The number of running requests.", running)
    gauge("num_queue_reqs", "The number of requests in the waiting queue.", waiting)
    gauge("num_used_tokens", "The number of used tokens.", round(e.kv_capacity_tokens * kv), False)
    gauge("token_usage", "The token usage.", round(kv, 4), False)
    gauge("cache_hit_rate", "The prefix cache hit rate.", 0.3, False)
    gauge("max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.",
          int(e.kv_capacity_tokens), False)  # fmt: skip
    tput = e.output_tokens * e.load(max(0.0, now - e.started_at))
    gauge("gen_throughput", "The generation throughput (token/s).", round(tput, 2), False)
    gauge("utilization", "The utilization.", round(kv, 2), False)
    out.head("sglang:realtime_tokens_total", "counter",
             "Total number of tokens processed (updated on each log interval). "
             "mode: prefill_compute, prefill_cache, decode.")  # fmt: skip
    cached = int(prompt * 0.3)
    for lab in sched:
        for mode, v in (("prefill_compute", prompt - cached), ("prefill_cache", cached), ("decode", gen)):
            out.line("sglang:realtime_tokens_total", f'{lab},mode="{mode}"', float(v))
    tok = f'model_name="{m}"'
    # The tokenizer's counters advance when a request finishes (mean sizes: a sketch of the
    # finish-time counters the mapping reads only as a fallback).
    for name, help, total in (
        ("prompt_tokens_total", "Number of prefill tokens processed.", e.prompt_tokens * reqs),
        ("generation_tokens_total", "Number of generation tokens processed.", e.output_tokens * reqs),
        ("cached_tokens_total", "Number of cached prompt tokens.", int(e.prompt_tokens * reqs * 0.3)),
        ("num_requests_total", "Number of requests processed.", reqs),
        ("num_aborted_requests_total", "Number of requests aborted.", int(e.failed_requests_at(now))),
    ):
        out.head(f"sglang:{name}", "counter", help)
        out.line(f"sglang:{name}", tok, float(total))
    helps = {
        "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
        "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
        "e2e_request_latency_seconds": "Histogram of End-to-end request latency in seconds",
        "queue_time_seconds": "Histogram of queueing time in seconds.",
    }
    rank_pairs = [
        (("engine_type", "unified"), ("model_name", m), ("pp_rank", "0"), ("tp_rank", str(i)))
        for i in range(n)
    ]
    for short, h in e._hists.items():
        name = f"sglang:{short}"
        out.head(name, "histogram", helps[short])
        # queue_time is the scheduler's (one copy per rank); the others the tokenizer's
        if short == "queue_time_seconds":
            _hist_lines(out, name, rank_pairs, h, sort=True, copies=True)
        else:
            _hist_lines(out, name, [(("model_name", m),)], h, sort=True)
    return out.text()
