"""Engine mappings: which wire series of each inference server feed which ModelSnapshot field.

``extract(payload, engine)`` parses only the names the engine needs and folds them into one
snapshot per model.  ``engine="auto"`` detects the engine from the sample names present.
"""

from __future__ import annotations

from ..expo.parse import parse_families
from . import llamacpp, sglang, tgi, triton, trtllm, vllm
from .base import EngineMapping, ModelSnapshot, UnknownEngine, build_snapshots

__all__ = [
    "ENGINES",
    "EngineMapping",
    "ModelSnapshot",
    "UnknownEngine",
    "detect",
    "extract",
    "wanted_names",
]

# Detection order matters: Triton with the vLLM backend exports both `nv_inference_*` and
# `vllm:*`, and the token series are the vLLM ones.
ENGINES: dict[str, EngineMapping] = {
    m.name: m
    for m in (
        vllm.MAPPING,
        sglang.MAPPING,
        tgi.MAPPING,
        llamacpp.MAPPING,
        triton.MAPPING,
        trtllm.MAPPING,
    )
}

_WANTED = {name: m.wanted_names() for name, m in ENGINES.items()}
_MARKERS = [
    (name, tuple(("\n" + p).encode() for p in m.markers), tuple(p.encode() for p in m.markers))
    for name, m in ENGINES.items()
]


def detect(payload: bytes | str) -> str | None:
    """The engine whose sample names appear in `payload`, or None.  Only sample lines count
    (a marker at a line start, not in a HELP text); bytes.find keeps this at memory speed."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    for name, at_line_start, at_start in _MARKERS:
        for marker in at_line_start:
            if data.find(marker) != -1:
                return name
        if data.startswith(at_start):
            return name
    return None


def wanted_names(engine: str) -> frozenset[str]:
    """The sample names `extract` parses for `engine` (KeyError for an unknown name)."""
    return _WANTED[engine]


def extract(payload: bytes | str, engine: str) -> tuple[str, dict[str, ModelSnapshot]]:
    """Return (engine name, {model: ModelSnapshot}).  With engine "auto", raise UnknownEngine
    when no known engine's series are present.  A known engine with none of its series yields
    an empty dict (the target answers, but serves nothing we read)."""
    if engine == "auto":
        found = detect(payload)
        if found is None:
            raise UnknownEngine("no vLLM, TGI, SGLang, Triton, llama.cpp or TensorRT-LLM series in payload")
        engine = found
    mapping = ENGINES.get(engine)
    if mapping is None:
        raise UnknownEngine(f"unknown engine {engine!r}")
    samples = parse_families(payload, _WANTED[engine])
    return engine, build_snapshots(mapping, samples)
