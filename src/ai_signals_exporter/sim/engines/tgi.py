"""TGI router payload (metrics-exporter-prometheus layout)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .wire import _hist_lines, _Out, _plain

if TYPE_CHECKING:
    from .model import SimEngine


def _render_tgi(e: SimEngine, now: float) -> str:
    """TGI's Rust exporter: counters without `_total`, some families without HELP, blank line
    between families, `le` appended last, integers without a decimal point."""
    out = _Out(_plain)
    gen, prompt, reqs = e._counts(now)
    started = int(e.started(now) + 1e-9) - e._started_at_restart
    failures = int(e.failed_requests_at(now))
    steps = int((now - e._created) * e.decode_tokens_per_second)

    def blank() -> None:
        out.parts.append("\n")

    out.head("tgi_request_success", "counter", "Number of successful requests")
    out.line("tgi_request_success", "", reqs)
    blank()
    out.head("tgi_batch_concat", "counter", None)
    out.line("tgi_batch_concat", 'reason="backpressure"', started // 4)
    blank()
    out.head("tgi_request_count", "counter", "Total number of requests")
    out.line("tgi_request_count", "", max(started, reqs + failures))
    blank()
    out.head("tgi_request_failure", "counter", None)
    out.line("tgi_request_failure", 'err="validation"', failures - failures // 3)
    out.line("tgi_request_failure", 'err="generation"', failures // 3)
    blank()
    out.head(
        "tgi_batch_inference_success",
        "counter",
        "Number of successful inference calls per method (prefill or decode)",
    )
    out.line("tgi_batch_inference_success", 'method="prefill"', started // 4)
    out.line("tgi_batch_inference_success", 'method="decode"', steps)
    blank()
    out.head("tgi_batch_inference_count", "counter", "Inference calls per method (prefill or decode)")
    out.line("tgi_batch_inference_count", 'method="decode"', steps)
    out.line("tgi_batch_inference_count", 'method="prefill"', started // 4)
    blank()
    out.head("tgi_queue_size", "gauge", "Current queue size")
    out.line("tgi_queue_size", "", round(e.waiting(now)))
    blank()
    out.head("tgi_batch_current_max_tokens", "gauge", "Maximum tokens for the current batch")
    running = round(e.running(now))
    out.line("tgi_batch_current_max_tokens", "", running * (e.prompt_tokens + e.output_tokens))
    blank()
    out.head("tgi_batch_current_size", "gauge", "Current batch size")
    out.line("tgi_batch_current_size", "", running)
    blank()
    helps = {
        "tgi_request_duration": "Request duration",
        "tgi_request_validation_duration": "Request validation duration",
        "tgi_request_queue_duration": "Request queue duration",
        "tgi_request_inference_duration": "Request inference duration",
        "tgi_request_mean_time_per_token_duration": "Mean time per token per request",
        "tgi_request_input_length": "Input token length per request",
        "tgi_request_generated_tokens": "Generated tokens per request",
        "tgi_request_max_new_tokens": "Maximum new tokens per request",
        "tgi_batch_forward_duration": "Batch forward duration per method (prefill or decode)",
        "tgi_batch_inference_duration": "Batch inference duration",
        "tgi_batch_decode_duration": "Time spent decoding a batch per method (prefill or decode)",
        "tgi_batch_filter_duration": (
            "Time spent filtering batches and sending generated tokens per method (prefill or decode)"
        ),
        "tgi_batch_concat_duration": None,
        "tgi_batch_next_size": "Batch size of the next batch",
    }
    done: set[str] = set()
    for key, h in e._hists.items():
        name, _, method = key.partition(":")
        if name not in done:
            if done:
                blank()
            out.head(name, "histogram", helps[name])
            done.add(name)
        # The token histograms' sums are the token counters the mapping reads.
        if name == "tgi_request_generated_tokens":
            h.sum = float(gen)
        elif name == "tgi_request_input_length":
            h.sum = float(prompt)
        _hist_lines(out, name, [(("method", method),) if method else ()], h, sort=False, le_fmt=_plain)
    blank()
    out.head("tgi_request_skipped_tokens", "summary", None)
    for q in ("0", "0.5", "0.9", "0.95", "0.99", "0.999", "1"):
        out.line("tgi_request_skipped_tokens", f'quantile="{q}"', 0)
    out.line("tgi_request_skipped_tokens_sum", "", 0)
    out.line("tgi_request_skipped_tokens_count", "", max(0, reqs - 1))
    blank()
    return out.text()
