"""PyTorch Lightning `ModelCheckpoint`: `epoch=E-step=N.ckpt` files saved through an fsspec
transaction (temp file + rename), `last.ckpt` copy or symlink; `.ckpt` directories for the
DeepSpeed and FSDP strategies, which are not atomic and follow the inner rules.

Source: Lightning-AI/pytorch-lightning src/lightning/fabric/utilities/cloud_io.py (docs/checkpoints.md).
"""

from __future__ import annotations

from typing import Callable

from ..model import Listing, basename, join
from . import deepspeed
from .common import Candidate, Ctx, Names, committed_at, file_state, newest, oldest, size_of, step_of
from .dcp import dcp_dir, dcp_dirs, nested_dcp_ok

NAME = "lightning"


def ckpt_dir(listing: Listing, d: str) -> Candidate:
    """A `.ckpt` directory (DeepSpeed or FSDP strategies): not atomic, so use the inner rules."""
    files = listing.under(d)
    inner = dcp_dir(listing, d) or next(
        (c for sub in dcp_dirs(listing, d) if (c := dcp_dir(listing, sub)) is not None), None
    )
    step = step_of(basename(d))
    if inner is not None:
        return Candidate(d, step, inner.complete and nested_dcp_ok(listing, d), inner.ts, size_of(files))
    if join(d, "latest") in listing.entries:
        sub = Ctx(0.0, None)
        ds = [c for c in deepspeed.rule(listing, sub, root=d) if c.complete]
        ok = bool(ds) and not sub.dangling
        ts = max((c.ts for c in ds), default=oldest(files))
        return Candidate(d, step, ok, ts if ok else oldest(files), size_of(files))
    if any(deepspeed.is_rank_file(basename(e.path)) for e in files):
        # DeepSpeed rank files but no `latest` yet: rank 0 writes it after its own files.
        return Candidate(d, step, False, oldest(files), size_of(files))
    return Candidate(d, step, True, newest(files), size_of(files))


def candidates(
    listing: Listing, ctx: Ctx, is_ckpt_dir: Callable[[str], bool], file_exts: tuple[str, ...]
) -> list[Candidate]:
    """Checkpoint directories (outermost match only) and single files with `file_exts`."""
    out: list[Candidate] = []
    ckpt_dirs = sorted(d for d in listing.dirs() if is_ckpt_dir(d))
    tops = [d for d in ckpt_dirs if not any(d.startswith(o + "/") for o in ckpt_dirs if o != d)]
    for d in tops:
        out.append(ckpt_dir(listing, d))
    for e in listing.under(""):
        if any(e.path.startswith(d + "/") for d in tops):
            continue
        if e.path.endswith(file_exts):
            if e.link is not None:
                if not listing.exists(e.link):
                    ctx.dangling = True
                continue  # last.ckpt -> epoch=..ckpt: the target is a candidate of its own
            # Lightning saves single files through an fsspec transaction (temp + rename), so the
            # file appearing is the commit; the zip tail still catches a copy cut short.
            complete, _ = file_state(listing, e, ctx, need_stable=False)
            out.append(Candidate(e.path, step_of(basename(e.path)), complete, committed_at(e), e.size))
    return out


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    return candidates(listing, ctx, lambda d: d.endswith(".ckpt"), (".ckpt",))


def sniff(names: Names) -> bool:
    return any(n.endswith(".ckpt") for n in names.files | names.dirs)
