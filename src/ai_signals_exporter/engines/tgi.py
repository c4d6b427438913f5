"""Hugging Face TGI router (upstream in maintenance mode; names unchanged).

Upstream followed: huggingface/text-generation-inference ``router/src/validation.rs``
(``tgi_request_input_length`` recorded when a request is validated), ``router/src/infer/mod.rs``
and ``router/src/server.rs`` (the other metrics! calls), ``docs/source/reference/metrics.md``.

No model label (one model per server) and no TTFT histogram.  There is no token counter:
generated tokens are the ``_sum`` of ``tgi_request_generated_tokens``, observed when a request
finishes (bursty); prompt tokens are the ``_sum`` of ``tgi_request_input_length``, observed at
admission (validation), so they are not bursty.  Counters carry no ``_total`` suffix on the
wire.  ``tgi_request_failure{err}`` counts failed requests.  Queue time:
``tgi_request_queue_duration`` (seconds).
"""

from .base import EngineMapping, H, S

MAPPING = EngineMapping(
    name="tgi",
    markers=("tgi_",),
    model_labels=(),
    generation_tokens=(S("tgi_request_generated_tokens_sum", bursty=True),),
    prompt_tokens=(S("tgi_request_input_length_sum"),),
    # The fallback covers an exporter that would follow the `_total` convention.
    requests=(S("tgi_request_success"), S("tgi_request_success_total")),
    failed_requests=(S("tgi_request_failure"), S("tgi_request_failure_total")),
    running=(S("tgi_batch_current_size"),),
    waiting=(S("tgi_queue_size"),),
    queue_time=(H("tgi_request_queue_duration_bucket"),),
)
