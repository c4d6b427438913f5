"""torch.distributed.checkpoint: `__<rank>_<n>.distcp` shards, `.metadata` renamed into place last.

Source: pytorch/pytorch torch/distributed/checkpoint/filesystem.py (see docs/checkpoints.md).
"""

from __future__ import annotations

import re

from ..model import Listing, basename, join, parent
from .common import Candidate, Ctx, Names, contiguous, direct, newest, oldest, size_of, step_of

NAME = "dcp"
SHARD_RE = re.compile(r"^__(\d+)_(\d+)\.distcp$")


def dcp_dir(listing: Listing, d: str) -> Candidate | None:
    """The DCP rule for one directory, or None when it holds no DCP files.

    Complete: `.metadata` present (the coordinator renames `.metadata.tmp` to it after every
    rank's shards are written), no `.metadata.tmp`, shard ranks 0..N contiguous, and no shard
    newer than `.metadata` — with `overwrite=True` into the same directory the old `.metadata`
    stays while new shards replace the old ones."""
    files = direct(listing, d)
    shards = [e for e in files if SHARD_RE.match(basename(e.path))]
    meta = listing.entries.get(join(d, ".metadata"))
    tmp = listing.entries.get(join(d, ".metadata.tmp"))
    if not shards and meta is None and tmp is None:
        return None
    size = size_of(files)
    step = step_of(basename(d)) if d else None
    ranks = [int(SHARD_RE.match(basename(e.path)).group(1)) for e in shards]  # type: ignore[union-attr]
    if meta is not None and tmp is None and contiguous(ranks) and newest(shards) <= meta.mtime:
        return Candidate(d, step, True, meta.mtime, size)
    newer = [e for e in shards if meta is None or e.mtime > meta.mtime]
    started = oldest(newer or shards or [tmp or meta])  # type: ignore[list-item]
    return Candidate(d, step, False, started, size)


def dcp_dirs(listing: Listing, root: str = "") -> list[str]:
    out = set()
    for e in listing.under(root):
        name = basename(e.path)
        if name in (".metadata", ".metadata.tmp") or SHARD_RE.match(name):
            out.add(parent(e.path))
    return sorted(out)


def nested_dcp_ok(listing: Listing, d: str) -> bool:
    """Every DCP directory inside `d` (FSDP state in an HF or Lightning checkpoint) is complete."""
    for sub in dcp_dirs(listing, d):
        c = dcp_dir(listing, sub)
        if c is not None and not c.complete:
            return False
    return True


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    return [c for d in dcp_dirs(listing) if (c := dcp_dir(listing, d)) is not None]


def sniff(names: Names) -> bool:
    return any(n in (".metadata", ".metadata.tmp") or SHARD_RE.match(n) for n in names.files)
