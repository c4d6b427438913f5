"""What every layout rule shares: the candidate a rule returns, the scan context, small helpers.

Pure functions of a `Listing`.  Nothing here deserialises a checkpoint: the only bytes read are
tiny pointer files and the last bytes of single-file checkpoints (see `plan_reads`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from ..model import Entry, Listing, Verdict, basename, parent

# Single-file torch.save checkpoints.  `.ckpt` is Lightning's (a torch.save zip too).
TORCH_EXTS = (".pt", ".pth", ".bin", ".tar", ".ckpt")
TAIL_BYTES = 256
POINTER_FILES = ("latest", "latest_checkpointed_iteration.txt", "_CHECKPOINT_METADATA")
MAX_POINTER_BYTES = 64 * 1024
# A plain torch.save file seen only once is accepted after this long without change.
SETTLE_SECONDS = 60.0

_STEP_RE = re.compile(r"step[=_-]?(\d+)")
_INT_RE = re.compile(r"\d+")


@dataclass(slots=True)
class Candidate:
    """One checkpoint (a directory or a file) as the rules see it."""

    key: str
    step: int | None
    complete: bool
    ts: float  # commit time when complete, else the best estimate of when the save started
    size: int = 0


class Ctx:
    """One scan's context: the clock, the previous verdict, the URI scheme, and what the rules
    note on the side (a dangling pointer, files that need a second scan)."""

    def __init__(
        self, now: float, previous: Verdict | None, scheme: str = "file", settle: float = SETTLE_SECONDS
    ) -> None:
        self.now = now
        self.previous = previous
        self.first_scan = previous is None
        self.scheme = scheme
        self.settle = settle
        self.dangling = False
        self.seen: dict[str, tuple[int, float]] = {}


# Seconds a rename may land after the write it commits started: a save of tens of GB.  A ctime
# further after the mtime comes from something else (chmod, chown, a restore that set mtime).
RENAME_BOUND = 3600.0


def committed_at(e: Entry) -> float:
    """Commit time of a file its writer renames into place when finished (Lightning's fsspec
    transaction): the rename time, which local disks report as ctime, while mtime is when the
    write started.  Object stores give no ctime: there the time is when the upload started or
    completed, depending on the store (docs/checkpoints.md)."""
    if e.ctime is not None and 0.0 < e.ctime - e.mtime <= RENAME_BOUND:
        return e.ctime
    return e.mtime


def step_of(name: str) -> int | None:
    m = _STEP_RE.search(name)
    if m:
        return int(m.group(1))
    ints = _INT_RE.findall(name)
    return int(ints[-1]) if ints else None


def zip_complete(tail: bytes) -> bool:
    """True when `tail` (the last bytes of a file) ends with a zip end-of-central-directory
    record.  torch.save writes a zip with the EOCD last and no comment, so a file cut short by a
    kill or a full disk fails this check."""
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return False
    comment_len = int.from_bytes(tail[pos + 20 : pos + 22], "little")
    return pos + 22 + comment_len == len(tail)


def direct(listing: Listing, d: str) -> list[Entry]:
    base = d + "/" if d else ""
    return [e for e in listing.under(d) if "/" not in e.path[len(base) :]]


def size_of(entries: Iterable[Entry]) -> int:
    return sum(e.size for e in entries if e.link is None)


def newest(entries: Iterable[Entry]) -> float:
    return max((e.mtime for e in entries), default=0.0)


def oldest(entries: Iterable[Entry]) -> float:
    return min((e.mtime for e in entries), default=0.0)


def contiguous(ranks: Iterable[int]) -> bool:
    s = set(ranks)
    return not s or s == set(range(max(s) + 1))


def file_state(listing: Listing, e: Entry, ctx: Ctx, need_stable: bool) -> tuple[bool, bool]:
    """(complete, torn) of a single-file torch.save checkpoint.  torch.save writes in place,
    so a file is trusted when its zip tail is whole and (for writers that do not rename) its
    size and mtime did not move between two scans."""
    tail = listing.tails.get(e.path)
    if tail is not None and not zip_complete(tail):
        return False, True
    if not need_stable:
        return True, False
    prev = ctx.previous.seen.get(e.path) if ctx.previous is not None else None
    if prev is not None:
        return prev == (e.size, e.mtime), False
    return ctx.first_scan and ctx.now - e.mtime >= ctx.settle, False


def unpointed(listing: Listing, pattern: re.Pattern[str], pointed_bases: set[str]) -> list[Candidate]:
    """Save directories (`pattern` group 1 = step) in a directory with no pointer file yet.  The
    pointer is written after every save, the first one included, so these are that first save,
    still running or cut off."""
    out = []
    for d in sorted(listing.dirs()):
        m = pattern.match(basename(d))
        if m and parent(d) not in pointed_bases:
            files = listing.under(d)
            out.append(Candidate(d, int(m.group(1)), False, oldest(files), size_of(files)))
    return out


class Names:
    """The base names of files and of directories in a listing: what the sniffs look at."""

    def __init__(self, listing: Listing) -> None:
        self.files = {basename(e.path) for e in listing.under("")}
        self.dirs = {basename(d) for d in listing.dirs()}
