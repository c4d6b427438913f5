"""DeepSpeed engine: `<tag>/` (default `global_stepN/`) with model and ZeRO optimizer states per
rank, then rank 0 writes `latest` holding the tag.

Source: deepspeedai/DeepSpeed deepspeed/runtime/engine.py `save_checkpoint` (docs/checkpoints.md).
"""

from __future__ import annotations

import re

from ..model import Listing, basename, join, parent
from .common import Candidate, Ctx, Names, contiguous, direct, newest, oldest, size_of, step_of, unpointed

NAME = "deepspeed"
DS_RE = re.compile(r"^global_step(\d+)$")
ZERO_RE = re.compile(r"^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")


def is_rank_file(name: str) -> bool:
    return name.endswith("model_states.pt") or ZERO_RE.match(name) is not None


def ds_dir_ok(listing: Listing, d: str) -> bool:
    """Model states present and ZeRO optimizer ranks 0..N contiguous."""
    names = [basename(e.path) for e in direct(listing, d)]
    if not any(n.endswith("model_states.pt") for n in names):
        return False
    zero = [int(m.group(1)) for n in names if (m := ZERO_RE.match(n))]
    return contiguous(zero)


def ds_inside_ok(listing: Listing, d: str) -> bool:
    """A DeepSpeed tree inside another checkpoint (HF Trainer): its `latest` names a whole tag."""
    latest = join(d, "latest")
    if latest not in listing.entries:
        return True
    tag = listing.text(latest)
    return tag is None or ds_dir_ok(listing, join(d, tag))


def rule(listing: Listing, ctx: Ctx, root: str | None = None) -> list[Candidate]:
    """`latest` holds the tag of the last committed `global_stepN/`.  It is written by rank 0
    with a plain write after its own shards, so it is the commit marker; tags newer than it are
    in progress and a tag dir that is missing or short of ranks makes the pointer dangling."""
    out = []
    pointers = [
        e for e in (listing.under(root) if root is not None else listing.under(""))
        if basename(e.path) == "latest" and (root is None or parent(e.path) == root)
    ]
    for ptr in pointers:
        base = parent(ptr.path)
        tag = listing.text(ptr.path)
        tag_step = step_of(tag) if tag else None
        for name in listing.child_dirs(base):
            d = join(base, name)
            m = DS_RE.match(name)
            if not m and name != tag:
                continue
            step = int(m.group(1)) if m else tag_step
            files = listing.under(d)
            if name == tag:
                continue
            if tag_step is not None and step is not None and step > tag_step:
                out.append(Candidate(d, step, False, oldest(files), size_of(files)))
            elif ds_dir_ok(listing, d):
                # Superseded: no marker of its own any more; its newest file stands in (history only).
                out.append(Candidate(d, step, True, newest(files), size_of(files)))
        if tag is None:
            continue
        d = join(base, tag)
        if listing.is_dir(d) and ds_dir_ok(listing, d):
            out.append(Candidate(d, tag_step, True, ptr.mtime, size_of(listing.under(d))))
        else:
            ctx.dangling = True
    if root is None:  # `latest` is written after every save, the first one included
        out += unpointed(listing, DS_RE, {parent(p.path) for p in pointers})
    return out


def sniff(names: Names) -> bool:
    # `latest` alone is not enough: other trainers keep a `latest` file or symlink too.
    return any(DS_RE.match(d) for d in names.dirs) or (
        "latest" in names.files and any(is_rank_file(n) for n in names.files)
    )
