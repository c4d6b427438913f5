"""Hugging Face TGI router.  No model label (one model per server) and no TTFT histogram.
There is no token counter: generated tokens are the ``_sum`` of the per-request histogram,
observed when a request finishes (bursty).  Counters carry no ``_total`` suffix on the wire."""

from .base import EngineMapping, S

MAPPING = EngineMapping(
    name="tgi",
    markers=("tgi_",),
    model_labels=(),
    generation_tokens=(S("tgi_request_generated_tokens_sum"),),
    prompt_tokens=(S("tgi_request_input_length_sum"),),
    # The fallback covers an exporter that would follow the `_total` convention.
    requests=(S("tgi_request_success"), S("tgi_request_success_total")),
    running=(S("tgi_batch_current_size"),),
    waiting=(S("tgi_queue_size"),),
    bursty_tokens=True,
)
