"""MosaicML Composer: `ep{E}-ba{B}-rank0.pt` written in place (or an `ep{E}-ba{B}/` DCP folder
when sharded), then the relative symlink `latest-rank0.pt` re-pointed at it; on object stores
a small `latest-rank0.pt.symlink` object stands in for the link.

Source: mosaicml/composer composer/callbacks/checkpoint_saver.py (docs/checkpoints.md).
"""

from __future__ import annotations

import re

from ..model import Entry, Listing, basename, join, parent
from .common import Candidate, Ctx, Names, file_state, newest, size_of
from .dcp import dcp_dir

NAME = "composer"
COMPOSER_RE = re.compile(r"^ep(\d+)-ba(\d+)(?:-rank0)?(?:\.pt)?$")
# The default file name, recognisable before the first `latest-rank0.pt` pointer exists.
_FILE_RE = re.compile(r"^ep\d+-ba\d+-rank\d+\.pt$")


def _target(listing: Listing) -> tuple[Entry | None, str | None]:
    """The `latest-rank0.pt` pointer and what it names: a local symlink, or the small
    `.symlink` object Composer uploads to object storage in its place."""
    for e in listing.under(""):
        name = basename(e.path)
        if name == "latest-rank0.pt" and e.link is not None:
            return e, e.link.rstrip("/")
        if name == "latest-rank0.pt.symlink":
            text = listing.text(e.path)
            if text is None:
                return e, None
            text = text.strip().strip("/")
            # The object holds a bucket-relative name; match it against the store's paths.
            for cand in (join(parent(e.path), text), text):
                if listing.exists(cand):
                    return e, cand
            for p in list(listing.entries) + sorted(listing.dirs()):
                if text.endswith("/" + p):
                    return e, p
            return e, join(parent(e.path), text)
    return None, None


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    ptr, target = _target(listing)
    out = []
    pointed: Candidate | None = None
    seen_keys = set()
    for e in listing.under(""):
        name = basename(e.path)
        m = COMPOSER_RE.match(name)
        d = parent(e.path)
        if m is None and COMPOSER_RE.match(basename(d)):
            if d in seen_keys:
                continue
            seen_keys.add(d)
            c = dcp_dir(listing, d) or Candidate(d, None, True, newest(listing.under(d)), size_of(listing.under(d)))
            c.step = int(COMPOSER_RE.match(basename(d)).group(2))  # type: ignore[union-attr]
        elif m is not None and e.link is None and e.path.endswith(".pt"):
            complete, _ = file_state(listing, e, ctx, need_stable=False)
            c = Candidate(e.path, int(m.group(2)), complete, e.mtime, e.size)
        else:
            continue
        if c.key == target:
            pointed = c
        out.append(c)
    if ptr is None:
        return out
    if pointed is None or not pointed.complete:
        ctx.dangling = True
        return out
    # The pointer moves only after a save returned: anything with a later batch is in progress.
    for c in out:
        if c is not pointed and c.step is not None and pointed.step is not None and c.step > pointed.step:
            c.complete = False
    return out


def sniff(names: Names) -> bool:
    return any(n.startswith("latest-rank") or _FILE_RE.match(n) for n in names.files)
