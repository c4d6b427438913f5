"""From a listing to one store's verdict: pick the layout, run its rule, summarise the candidates."""

from __future__ import annotations

from typing import Iterable

from ..model import EMPTY, Entry, Listing, Verdict, basename, merge_history
from .common import MAX_POINTER_BYTES, POINTER_FILES, SETTLE_SECONDS, TORCH_EXTS, Candidate, Ctx
from .registry import REGISTRY, sniff


def detect(
    listing: Listing,
    now: float,
    previous: Verdict | None = None,
    layout: str = "auto",
    *,
    scheme: str = "file",
    settle: float = SETTLE_SECONDS,
) -> Verdict:
    """The verdict for one store.  `previous` is the last verdict for the same store (needed for
    two-scan stability of plain torch.save files, and to keep the start of a save that spans
    scans); `scheme` is the URI scheme, since Orbax commits differently on GCS."""
    if layout == "auto":
        # A detected layout sticks to the store: it is a label, and a label that changes starts
        # new series and resets alerts' `for:`.  NeMo looks like Lightning between saves, Composer
        # like torch.save until its first pointer; the first guess is the one kept.
        sticky = previous.layout if previous is not None else "unknown"
        layout = sticky if sticky != "unknown" else sniff(listing)
    if layout == "unknown":
        return EMPTY
    ctx = Ctx(now, previous, scheme, settle)
    cands = REGISTRY[layout].rule(listing, ctx)
    return summarise(layout, cands, ctx)


def _one_per_step(complete: list[Candidate]) -> list[Candidate]:
    """The first commit of each step.  Lightning's `last.ckpt` copy (no step of its own) and
    NeMo's `-last` twin are second saves of the numbered checkpoint just before them; counted in
    the history they would teach a gap as short as one save."""
    numbered = any(c.step is not None for c in complete)
    first: dict[int, Candidate] = {}
    out = []
    for c in sorted(complete, key=lambda c: c.ts):
        if c.step is None:
            if not numbered:  # e.g. one model.pt overwritten in place: its own history
                out.append(c)
        elif c.step not in first:
            first[c.step] = c
            out.append(c)
    return out


def summarise(layout: str, cands: list[Candidate], ctx: Ctx) -> Verdict:
    complete = [c for c in cands if c.complete]
    last = max(complete, key=lambda c: (c.ts, -1 if c.step is None else c.step), default=None)
    step = None
    if last is not None:
        step = last.step
        if step is None:  # e.g. a plain `last.ckpt` copy: the newest numbered one it copies
            step = max((c.step for c in complete if c.step is not None and c.ts <= last.ts), default=None)
    pending = [
        c for c in cands
        if not c.complete and (
            last is None
            or c.ts > last.ts
            # `step`, not `last.step`: a `last.ckpt` copy has no step of its own.
            or (c.step is not None and step is not None and c.step > step)
        )
    ]
    keys = tuple(sorted(c.key for c in pending))
    since = min((c.ts for c in pending), default=None)
    prev = ctx.previous
    if (
        since is not None and prev is not None and prev.in_progress
        and prev.in_progress_since is not None and set(prev.in_progress_keys) & set(keys)
    ):
        # A file being written keeps moving its mtime; the save started at least when first seen.
        since = min(since, prev.in_progress_since)
    # The history belongs to the store, not to the layout label (a configured layout may change).
    old = prev.complete_history_ts if prev is not None else ()
    # With a history to extend, only checkpoints committed after its newest entry are new.  A
    # superseded DeepSpeed/Megatron checkpoint loses its pointer and is re-dated by its newest
    # file, seconds off its pointer time: counting it again would teach a gap of seconds.
    prev_key = prev.last_complete_key if old and prev is not None else None
    fresh = [
        c.ts for c in _one_per_step(complete)
        if last is not None and c.ts <= last.ts
        and (not old or (c.ts > old[-1] and (c is last or c.key != prev_key)))
    ]
    history = merge_history(old, fresh)
    return Verdict(
        layout=layout,
        last_complete_ts=last.ts if last is not None else None,
        last_step=step,
        size_bytes=last.size if last is not None else None,
        in_progress=bool(pending),
        in_progress_since=since,
        complete_history_ts=history,
        last_complete_key=last.key if last is not None else None,
        in_progress_keys=keys,
        pointer_dangling=ctx.dangling,
        seen=dict(ctx.seen),
    )


def plan_reads(
    entries: Iterable[Entry], max_contents: int = 32, max_tails: int = 8
) -> tuple[list[str], list[str]]:
    """Which small reads a scan should make after listing: whole pointer files (newest first)
    and the tails of the newest single-file checkpoints.  Bounded so a store with thousands of
    step directories costs a handful of requests, not thousands."""
    pointers, files = [], []
    for e in entries:
        name = basename(e.path)
        if (name in POINTER_FILES or name.endswith(".symlink")) and e.size <= MAX_POINTER_BYTES:
            pointers.append(e)
        elif name.endswith(TORCH_EXTS) and e.size >= 22:
            files.append(e)
    pointers.sort(key=lambda e: e.mtime, reverse=True)
    files.sort(key=lambda e: e.mtime, reverse=True)
    return [e.path for e in pointers[:max_contents]], [e.path for e in files[:max_tails]]
