"""Plain `torch.save` files: written in place, no marker; trusted once the zip tail is whole and
two scans saw the same size and mtime."""

from __future__ import annotations

from ..model import Listing, basename
from .common import TORCH_EXTS, Candidate, Ctx, Names, file_state, step_of

NAME = "torch_save"


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    out = []
    for e in listing.under(""):
        if e.link is not None or not e.path.endswith(TORCH_EXTS):
            continue
        ctx.seen[e.path] = (e.size, e.mtime)
        complete, _ = file_state(listing, e, ctx, need_stable=True)
        out.append(Candidate(e.path, step_of(basename(e.path)), complete, e.mtime, e.size))
    return out


def sniff(names: Names) -> bool:
    return any(n.endswith(TORCH_EXTS) for n in names.files)
