"""NeMo: Lightning-style checkpoints (`{name}--step=N-epoch=E[-last].ckpt`, directories in NeMo 2)
and a `<ckpt without extension>-unfinished` marker that rank 0 touches before a save and removes
after it.

Source: NVIDIA/NeMo nemo/utils/callbacks/nemo_model_checkpoint.py and
nemo/lightning/pytorch/callbacks/model_checkpoint.py (docs/checkpoints.md).
"""

from __future__ import annotations

from ..model import Listing, basename
from .common import Candidate, Ctx, Names, step_of
from .lightning import candidates

NAME = "nemo"
UNFINISHED = "-unfinished"


def _is_ckpt_dir(d: str) -> bool:
    return d.endswith(".ckpt") or ("step=" in basename(d) and not d.endswith(UNFINISHED))


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    out = candidates(listing, ctx, _is_ckpt_dir, (".ckpt", ".nemo"))
    markers = {
        e.path[: -len(UNFINISHED)]: e for e in listing.under("") if e.path.endswith(UNFINISHED)
    }
    if not markers:
        return out
    by_base: dict[str, list[Candidate]] = {}
    for c in out:
        base = c.key
        for suffix in (".nemo", ".ckpt", "-EMA"):
            base = base.removesuffix(suffix)
        by_base.setdefault(base, []).append(c)
    for base, marker in markers.items():
        hits = by_base.get(base, [])
        for c in hits:
            c.complete = False
            c.ts = marker.mtime
        if not hits:
            out.append(Candidate(base, step_of(basename(base)), False, marker.mtime, 0))
    return out


def sniff(names: Names) -> bool:
    return (
        any(n.endswith(UNFINISHED) or n.endswith(".nemo") for n in names.files)
        # NeMo 2 checkpoints are directories named like `model--...-step=N-...`.
        or any("step=" in d and not d.endswith(".ckpt") for d in names.dirs)
    )
