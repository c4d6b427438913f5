"""Triton + TensorRT-LLM backend payload (prometheus-cpp layout), an ensemble deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import _esc, _hist_lines, _labels, _Out, _plain

if TYPE_CHECKING:
    from .model import SimEngine


_TRITON_CORE = (
    ("nv_inference_request_success", "counter",
     "Number of successful inference requests, all batch sizes"),
    ("nv_inference_request_failure", "counter",
     "Number of failed inference requests, all batch sizes"),
    ("nv_inference_count", "counter",
     "Number of inferences performed (does not include cached requests)"),
    ("nv_inference_exec_count", "counter",
     "Number of model executions performed (does not include cached requests)"),
    ("nv_inference_request_duration_us", "counter",
     "Cumulative inference request duration in microseconds (includes cached requests)"),
    ("nv_inference_queue_duration_us", "counter",
     "Cumulative inference queuing duration in microseconds (includes cached requests)"),
    ("nv_inference_pending_request_count", "gauge",
     "Instantaneous number of pending requests awaiting execution per-model."),
)  # fmt: skip


def _render_triton(e: SimEngine, now: float) -> str:
    """Triton with the TensorRT-LLM backend in an ensemble (ensemble, preprocessing, the TRT-LLM
    model named `e.model`, postprocessing), labelled `model`/`version`; prometheus-cpp layout."""
    out = _Out(_plain)
    gen, prompt, reqs = e._counts(now)
    m = _esc(e.model)
    running = round(e.running(now))
    kv = e.kv_cache_usage(now)
    core_values = {
        "nv_inference_request_success": reqs,
        "nv_inference_request_failure": int(e.failed_requests_at(now)),
        "nv_inference_count": reqs,
        "nv_inference_exec_count": reqs,
        "nv_inference_request_duration_us": int(reqs * e.duration * 1e6),
        "nv_inference_queue_duration_us": int(reqs * 150),
        # Decoupled TRT-LLM: Triton hands requests over at once, the batcher queues them.
        "nv_inference_pending_request_count": 0,
    }
    for name, typ, help in _TRITON_CORE:
        out.head(name, typ, help)
        extra = 'reason="BACKEND",' if name == "nv_inference_request_failure" else ""
        for model in ("ensemble", "preprocessing", m, "postprocessing"):
            out.line(name, f'{extra}model="{model}",version="1"', core_values[name])

    blocks = int(e.kv_capacity_tokens // 64)
    used = int(blocks * kv)
    iterations = int((now - e._created) * e.decode_tokens_per_second)
    trt = (
        ("nv_trt_llm_request_metrics", "TRT LLM request metrics", "request_type", (
            ("context", min(running, 2)), ("scheduled", running), ("max", 256),
            ("active", running), ("waiting", round(e.waiting(now))))),
        ("nv_trt_llm_runtime_memory_metrics", "TRT LLM runtime memory metrics", "memory_type", (
            ("cpu", 0), ("gpu", 1056300000), ("pinned", 168000000))),
        ("nv_trt_llm_kv_cache_block_metrics", "TRT LLM KV cache block metrics",
         "kv_cache_block_type", (
            ("max", blocks), ("free", blocks - used), ("used", used), ("tokens_per", 64),
            ("fraction", round(kv, 6)))),
        ("nv_trt_llm_inflight_batcher_metrics", "TRT LLM inflight_batcher-specific metrics",
         "inflight_batcher_specific_metric", (
            ("total_context_tokens", min(running, 2) * e.prompt_tokens),
            ("generation_requests", running), ("micro_batch_id", 0), ("paused_requests", 0))),
        ("nv_trt_llm_general_metrics", "General TRT LLM metrics", "general_type", (
            ("iteration_counter", iterations), ("timestamp", int(now * 1e6)))),
    )  # fmt: skip
    for name, help, key, rows in trt:
        out.head(name, "gauge", help)
        for value_of_key, v in rows:
            # prometheus-cpp sorts label names: the family's key, then model, version.
            pairs = tuple(sorted(((key, value_of_key), ("model", m), ("version", "1"))))
            out.line(name, _labels(pairs), v)
    for fam, kind, total, median in (
        ("nv_llm_input_token_len", "total_input_tokens", prompt, e.prompt_tokens),
        ("nv_llm_output_token_len", "total_output_tokens", gen, e.output_tokens),
    ):
        h = e._hists[fam]
        h.observe(reqs - h.total, median, 0.5)  # observed once per finished response
        h.sum = float(total)
        out.head(fam, "histogram", "TRT LLM response metrics")
        pairs = (("model", m), ("response_metric_type", kind), ("version", "1"))
        _hist_lines(out, fam, [pairs], h, sort=False, le_fmt=_plain)
    out.head("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)")
    uuid = 'gpu_uuid="GPU-8c5a0f1e-8d2e-4b8a-9f1e-2b7c1d3e4f50"'
    out.line("nv_gpu_utilization", uuid, round(min(1.0, 0.1 + kv), 3))
    return out.text().rstrip("\n")  # Triton's payload has no trailing newline
