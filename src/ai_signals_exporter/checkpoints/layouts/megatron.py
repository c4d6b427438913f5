"""Megatron-LM: `iter_{:07d}/` per save and the tracker `latest_checkpointed_iteration.txt`
written by rank 0 after a barrier; `torch_dist` saves are DCP plus `metadata.json`.

Source: NVIDIA/Megatron-LM megatron/training/checkpointing.py (docs/checkpoints.md).  Not run
here: the writer lives in megatron/training, which is not in the `megatron-core` wheel.
"""

from __future__ import annotations

import re

from ..model import Listing, basename, join, parent
from .common import Candidate, Ctx, Names, newest, oldest, size_of, unpointed
from .dcp import dcp_dir

NAME = "megatron"
ITER_RE = re.compile(r"^iter_(\d{7,})$")  # {:07d}: 8 digits from 10M on
TRACKER = "latest_checkpointed_iteration.txt"


def _dir_ok(listing: Listing, d: str) -> tuple[bool, float]:
    """(complete, commit-ish time) of one `iter_NNNNNNN/`: torch_dist needs `metadata.json`
    (rank 0 writes it after the DCP save) and a complete DCP directory; the legacy format needs
    `model_optim_rng.pt` in every `mp_rank_*` directory."""
    files = listing.under(d)
    meta_json = listing.entries.get(join(d, "metadata.json"))
    dcp = dcp_dir(listing, d)
    if meta_json is not None or dcp is not None or join(d, "common.pt") in listing.entries:
        ok = meta_json is not None and dcp is not None and dcp.complete
        return ok, meta_json.mtime if meta_json is not None else oldest(files)
    ranks = [n for n in listing.child_dirs(d) if n.startswith("mp_rank_")]
    ok = bool(ranks) and all(join(d, r, "model_optim_rng.pt") in listing.entries for r in ranks)
    return ok, newest(files)


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    trackers = [e for e in listing.under("") if basename(e.path) == TRACKER]
    # The tracker is written after every save, the first one included.
    out = unpointed(listing, ITER_RE, {parent(t.path) for t in trackers})
    for tracker in trackers:
        base = parent(tracker.path)
        value = listing.text(tracker.path)
        pointed = None
        if value == "release":
            pointed = "release"
        elif value is not None and value.isdigit():
            pointed = f"iter_{int(value):07d}"
        tracked = int(value) if value is not None and value.isdigit() else None
        for name in listing.child_dirs(base):
            m = ITER_RE.match(name)
            if not m or name == pointed:
                continue
            d = join(base, name)
            step = int(m.group(1))
            files = listing.under(d)
            if tracked is not None and step > tracked:
                out.append(Candidate(d, step, False, oldest(files), size_of(files)))
            else:
                ok, ts = _dir_ok(listing, d)
                out.append(Candidate(d, step, ok, ts if ok else oldest(files), size_of(files)))
        if pointed is None:
            continue
        d = join(base, pointed)
        ok, _ = _dir_ok(listing, d) if listing.is_dir(d) else (False, 0.0)
        if ok:
            out.append(Candidate(d, tracked, True, tracker.mtime, size_of(listing.under(d))))
        else:
            ctx.dangling = True
    return out


def sniff(names: Names) -> bool:
    return TRACKER in names.files or any(ITER_RE.match(d) for d in names.dirs)
