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


def _base(key: str) -> str:
    """The marker's name for a checkpoint: the path without `.nemo`, `.ckpt` or `-EMA`."""
    for suffix in (".nemo", ".ckpt", "-EMA"):
        key = key.removesuffix(suffix)
    return key


def _older(step: int | None, hits: list[Candidate], done: list[Candidate]) -> bool:
    """The marked checkpoint is older than the newest complete one: by step (a step-less
    `last.ckpt` copy says nothing), else by time."""
    steps = [c.step for c in done if c.step is not None]
    if step is not None and steps:
        return step < max(steps)
    return bool(hits) and bool(done) and max(c.ts for c in hits) < max(c.ts for c in done)


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    out = candidates(listing, ctx, _is_ckpt_dir, (".ckpt", ".nemo"))
    markers = {
        e.path[: -len(UNFINISHED)]: e for e in listing.under("") if e.path.endswith(UNFINISHED)
    }
    if not markers:
        return out
    by_base: dict[str, list[Candidate]] = {}
    for c in out:
        by_base.setdefault(_base(c.key), []).append(c)
    done = [c for c in out if c.complete and _base(c.key) not in markers]
    for base, marker in markers.items():
        hits = by_base.get(base, [])
        if _older(step_of(basename(base)), hits, done):
            # NeMo also marks a checkpoint it is about to delete (top-k rotation, the previous
            # `-last`).  Killed there, the marker names a checkpoint older than the newest
            # complete one: no save is in progress, and the half-deleted one does not count.
            out = [c for c in out if all(c is not h for h in hits)]
            continue
        for c in hits:
            c.complete = False
            c.ts = marker.mtime
        if not hits:
            out.append(Candidate(base, step_of(basename(base)), False, marker.mtime, 0))
    return out


def sniff(names: Names) -> bool:
    return (
        any(n.endswith(UNFINISHED) or n.endswith(".nemo") for n in names.files)
        # NeMo 3.0 names files `{name}--step=N-epoch=E[-last].ckpt`; Lightning's default has no `--`.
        or any("--" in n and "step=" in n for n in names.files)
        # NeMo 2 checkpoints are directories named like `model--...-step=N-...`.
        or any("step=" in d and not d.endswith(".ckpt") for d in names.dirs)
    )
