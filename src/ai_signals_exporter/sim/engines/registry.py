"""Engine kind -> renderer."""

from __future__ import annotations

from typing import Callable

from . import llamacpp, sglang, tgi, triton, trtllm, vllm
from .model import SimEngine

RENDERERS: dict[str, Callable[[SimEngine, float], str]] = {
    "vllm": vllm._render_vllm,
    "tgi": tgi._render_tgi,
    "sglang": sglang._render_sglang,
    "triton": triton._render_triton,
    "llamacpp": llamacpp._render_llamacpp,
    "trtllm": trtllm._render_trtllm,
}
