"""llama-server payload (no labels, C++ stream formatting), after the metrics refactor."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import llamacpp_prompt_split
from .wire import _cpp, _Out

if TYPE_CHECKING:
    from .model import SimEngine


def _render_llamacpp(e: SimEngine, now: float) -> str:
    """llama-server: no labels, C++ stream formatting (6 significant digits)."""
    out = _Out(_cpp)
    gen, _, _ = e._counts(now)
    prompt, cached = llamacpp_prompt_split(e._raw_visible("prompt", now))
    decode_calls = int(max(0.0, now - e._created) * e.decode_tokens_per_second)
    rows = (
        ("prompt_tokens_total", "counter",
         "Total prompt processing tokens (excluding cached tokens).", prompt),
        ("prompt_tokens_cached_total", "counter", "Total prompt processing tokens (cached tokens).",
         cached),
        ("prompt_seconds_total", "counter", "Prompt process time", prompt / 3000.0),
        ("tokens_predicted_total", "counter", "Number of generation tokens processed.", gen),
        ("tokens_predicted_seconds_total", "counter", "Predict process time",
         gen / e.decode_tokens_per_second),
        ("n_decode_total", "counter", "Total number of llama_decode() calls", decode_calls),
        ("n_busy_slots_per_decode", "counter",
         "Average number of busy slots per llama_decode() call", max(1.0, e.running(now))),
        ("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", 3000.0),
        ("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
         e.decode_tokens_per_second),
        ("requests_processing", "gauge", "Number of requests processing.",
         round(e.running(now))),
        ("requests_deferred", "gauge", "Number of requests deferred.", round(e.waiting(now))),
    )  # fmt: skip
    for name, typ, help, v in rows:
        out.head(f"llamacpp:{name}", typ, help)
        out.line(f"llamacpp:{name}", "", v)
    return out.text()
