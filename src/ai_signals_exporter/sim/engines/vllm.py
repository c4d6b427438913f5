"""vLLM V1 payload (prometheus_client layout), current release shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import _created, _esc, _go, _hist_lines, _labels, _Out, _python_process, _split

if TYPE_CHECKING:
    from .model import SimEngine


_VLLM_HIST_HELP = {
    "iteration_tokens_total": "Histogram of number of tokens per engine_step.",
    "request_prompt_tokens": "Number of prefill tokens processed.",
    "request_generation_tokens": "Number of generation tokens processed.",
    "request_max_num_generation_tokens": "Histogram of maximum number of requested generation tokens.",
    "request_params_n": "Histogram of the n request parameter.",
    "request_params_max_tokens": "Histogram of the max_tokens request parameter.",
    "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
    "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
    "request_time_per_output_token_seconds": "Histogram of time_per_output_token_seconds per request.",
    "e2e_request_latency_seconds": "Histogram of e2e request latency in seconds.",
    "request_queue_time_seconds": "Histogram of time spent in WAITING phase for request.",
    "request_inference_time_seconds": "Histogram of time spent in RUNNING phase for request.",
    "request_prefill_time_seconds": "Histogram of time spent in PREFILL phase for request.",
    "request_decode_time_seconds": "Histogram of time spent in DECODE phase for request.",
}


def _render_vllm(e: SimEngine, now: float) -> str:
    """vLLM V1 through prometheus_client: sorted label names, `_total` counters with separate
    `_created` gauges, `_count` before `_sum`, Go-style float formatting."""
    out = _Out(_go)
    _python_process(out, e, now)
    m = _esc(e.model)
    n = e.ranks
    pairs = [(("engine", str(i)), ("model_name", m)) for i in range(n)]
    labs = [_labels(p) for p in pairs]
    running = _split(round(e.running(now)), n)
    waiting = _split(round(e.waiting(now)), n)
    kv = e.kv_cache_usage(now)
    gen, prompt, reqs = e._counts(now)
    created = e._created

    out.head("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
    for lab, v in zip(labs, running):
        out.line("vllm:num_requests_running", lab, float(v))
    out.head("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
    for lab, v in zip(labs, waiting):
        out.line("vllm:num_requests_waiting", lab, float(v))
    out.head(
        "vllm:num_requests_waiting_by_reason", "gauge", "Number of requests waiting, by reason."
    )
    for lab, v in zip(labs, waiting):
        deferred = v // 5  # included in num_requests_waiting
        out.line("vllm:num_requests_waiting_by_reason", f'{lab},reason="capacity"', float(v - deferred))
        out.line("vllm:num_requests_waiting_by_reason", f'{lab},reason="deferred"', float(deferred))
    out.head(
        "vllm:engine_sleep_state",
        "gauge",
        "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
        "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
    )
    for lab in labs:
        for state, v in (("awake", 1.0), ("weights_offloaded", 0.0), ("discard_all", 0.0)):
            out.line("vllm:engine_sleep_state", f'{lab},sleep_state="{state}"', v)
    out.head("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.")
    for lab in labs:
        out.line("vllm:kv_cache_usage_perc", lab, kv)

    def counter(name: str, help: str, total: float, extra: str = "") -> None:
        out.head(f"vllm:{name}_total", "counter", help)
        rows = [(f"{lab}{extra}", v) for lab, v in zip(labs, _split(int(total), n))]
        for lab, v in rows:
            out.line(f"vllm:{name}_total", lab, float(v))
        _created(out, f"vllm:{name}", help, [lab for lab, _ in rows], created)

    counter("prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", prompt)
    counter("prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", prompt * 0.3)
    counter("mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items.", 0)
    counter("mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.", 0)
    counter("num_preemptions", "Cumulative number of preemption from the engine.", reqs * 0.002)
    counter("prompt_tokens", "Number of prefill tokens processed.", prompt)
    counter("generation_tokens", "Number of generation tokens processed.", gen)

    help_ok = "Count of successfully processed requests."
    out.head("vllm:request_success_total", "counter", help_ok)
    failed = int(e.failed_requests_at(now))
    abort, error = failed - failed // 4, failed // 4
    length, repetition = reqs // 10, reqs // 50
    created_rows = []
    for reason, total in (
        ("abort", abort),
        ("error", error),
        ("length", length),
        ("repetition", repetition),
        ("stop", reqs - length - repetition),
    ):
        for i, v in enumerate(_split(total, n)):
            # prometheus_client sorts label names: engine, finished_reason, model_name
            row = f'engine="{i}",finished_reason="{reason}",model_name="{m}"'
            out.line("vllm:request_success_total", row, float(v))
            created_rows.append(row)
    _created(out, "vllm:request_success", help_ok, created_rows, created)

    for short, h in e._hists.items():
        name = f"vllm:{short}"
        out.head(name, "histogram", _VLLM_HIST_HELP[short])
        _hist_lines(out, name, pairs, h, sort=True)
        _created(out, name, _VLLM_HIST_HELP[short], labs, created)

    out.head("vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig")
    out.line(
        "vllm:cache_config_info",
        'block_size="16",cache_dtype="auto",calculate_kv_scales="False",cpu_offload_gb="0",'
        f'enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",is_attention_free="False",'
        f'num_cpu_blocks="None",num_gpu_blocks="{int(e.kv_capacity_tokens // 16)}",'
        'num_gpu_blocks_override="None",prefix_caching_hash_algo="sha256",sliding_window="None",'
        'swap_space="4",swap_space_bytes="4294967296"',
        1.0,
    )
    return out.text()
