"""trtllm-serve payload (prometheus_client layout, served at /prometheus/metrics) with
`enable_iter_perf_stats: true`, after NVIDIA/TensorRT-LLM tensorrt_llm/metrics/collector.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import _created, _esc, _go, _hist_lines, _Out

if TYPE_CHECKING:
    from .model import SimEngine

_HELP = {
    "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
    "request_queue_time_seconds": "Histogram of time spent in WAITING phase for request.",
    "e2e_request_latency_seconds": "Histogram of end to end request latency in seconds.",
}


def _render_trtllm(e: SimEngine, now: float) -> str:
    out = _Out(_go)
    m = _esc(e.model)
    lab = f'engine_type="trtllm",model_name="{m}"'
    gen, prompt, reqs = e._counts(now)
    failed = int(e.failed_requests_at(now))
    help_ok = "Count of successfully processed requests."
    out.head("trtllm_request_success_total", "counter", help_ok)
    rows = []
    for reason, v in (("abort", failed - failed // 4), ("error", failed // 4), ("length", reqs // 10),
                      ("stop", reqs - reqs // 10)):  # fmt: skip
        row = f'{lab},finished_reason="{reason}"'
        out.line("trtllm_request_success_total", row, float(v))
        rows.append(row)
    _created(out, "trtllm_request_success", help_ok, rows, e._created)
    for name, help, v in (
        ("prompt_tokens", "Cumulative number of prompt (input) tokens processed.", prompt),
        ("generation_tokens", "Cumulative number of generation (output) tokens produced.", gen),
    ):
        out.head(f"trtllm_{name}_total", "counter", help)
        out.line(f"trtllm_{name}_total", lab, float(v))
        _created(out, f"trtllm_{name}", help, [lab], e._created)
    for name, help, v in (
        ("kv_cache_utilization", "KV cache utilization", round(e.kv_cache_usage(now), 6)),
        ("num_requests_running", "Number of active requests", float(round(e.running(now)))),
        ("num_requests_waiting", "Number of queued requests", float(round(e.waiting(now)))),
    ):
        out.head(f"trtllm_{name}", "gauge", help)
        out.line(f"trtllm_{name}", lab, v)
    pairs = [(("engine_type", "trtllm"), ("model_name", m))]
    for short, h in e._hists.items():
        name = f"trtllm_{short}"
        out.head(name, "histogram", _HELP[short])
        _hist_lines(out, name, pairs, h, sort=True)
        _created(out, name, _HELP[short], [lab], e._created)
    return out.text()
