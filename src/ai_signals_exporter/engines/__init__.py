"""Engine mappings: which wire series of each inference server feed which ModelSnapshot field.

``extract(payload, engine)`` parses only the names the engine needs and folds them into one
snapshot per model.  ``engine="auto"`` detects the engine from the sample names present.
"""

from __future__ import annotations

import re

from ..expo.parse import NotExposition, check_exposition, parse_families, shown
from . import llamacpp, sglang, tgi, triton, trtllm, vllm
from .base import EngineMapping, ModelSnapshot, UnknownEngine, build_snapshots

__all__ = [
    "ENGINES",
    "EngineMapping",
    "ModelSnapshot",
    "NotExposition",
    "UnknownEngine",
    "detect",
    "extract",
    "wanted_names",
]

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
_MARKER_ENGINE = {p.encode(): name for name, m in ENGINES.items() for p in m.markers}
# One pass that stops at the first sample line of any known engine (usually within the first
# lines: a full scan of a 100 kB payload per engine would cost as much as parsing it).
_MARKERS = tuple(sorted(_MARKER_ENGINE, key=len, reverse=True))
_MARKER_RE = re.compile(b"\n(" + b"|".join(re.escape(p) for p in _MARKERS) + b")")


def detect(payload: bytes | str) -> str | None:
    """The engine whose sample names appear in `payload`, or None.  Only sample lines count (a
    marker at a line start, not in a HELP text).  The first engine seen wins, except that
    Triton defers to vLLM: Triton's vLLM backend serves both, and the token series are vLLM's."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    first = next((p for p in _MARKERS if data.startswith(p)), None)
    if first is None:
        m = _MARKER_RE.search(data)
        if m is None:
            return None
        first = m.group(1)
    engine = _MARKER_ENGINE[first]
    if engine == "triton" and data.find(b"\nvllm:") != -1:
        return "vllm"
    return engine


def wanted_names(engine: str) -> frozenset[str]:
    """The sample names `extract` parses for `engine` (KeyError for an unknown name)."""
    return _WANTED[engine]


def extract(payload: bytes | str, engine: str) -> tuple[str, dict[str, ModelSnapshot]]:
    """Return (engine name, {model: ModelSnapshot}).

    Raises NotExposition when the body is not exposition format (checked on sampled lines, see
    expo.parse.check_exposition), or, for a named engine, when it holds no sample of any family
    that engine defines (``not_metrics``: a server on the wrong port answering 200 with other
    metrics).  With engine "auto", raises UnknownEngine when no known engine's series are
    present."""
    text = bytes(payload).decode("utf-8", "replace") if not isinstance(payload, str) else payload
    check_exposition(text)
    payload = text
    if engine == "auto":
        found = detect(payload)
        if found is None:
            raise UnknownEngine("no vLLM, TGI, SGLang, Triton, llama.cpp or TensorRT-LLM series in payload")
        engine = found
    mapping = ENGINES.get(engine)
    if mapping is None:
        raise UnknownEngine(f"unknown engine {engine!r}")
    samples = parse_families(payload, _WANTED[engine])
    if not samples:
        first = next((ln for ln in text.split("\n", 64)[:64] if ln.strip() and not ln.startswith("#")), "")
        raise NotExposition("not_metrics", shown(first))
    return engine, build_snapshots(mapping, samples)
