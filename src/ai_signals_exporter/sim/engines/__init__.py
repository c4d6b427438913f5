"""Simulated inference servers (vLLM, TGI, SGLang, Triton + TRT-LLM, llama.cpp, trtllm-serve).

`model` is the load model (a fluid queue turning a load curve into counters, gauges and
histograms, with ground truth for tests); one module per engine renders its payload in that
engine's current wire format (`wire` holds the shared formatting); `app` serves them over HTTP.
"""

from .app import CONTENT_TYPE, make_app
from .model import (
    KINDS,
    SGLANG_TTFT_BUCKETS,
    VLLM_TTFT_BUCKETS,
    Load,
    SimEngine,
    constant,
    llamacpp_prompt_split,
    sine,
    step,
)

__all__ = [
    "CONTENT_TYPE",
    "KINDS",
    "SGLANG_TTFT_BUCKETS",
    "VLLM_TTFT_BUCKETS",
    "Load",
    "SimEngine",
    "constant",
    "llamacpp_prompt_split",
    "make_app",
    "sine",
    "step",
]
