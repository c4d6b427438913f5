"""Plain data for checkpoint detection: one store's listing and the verdict drawn from it.

A listing is object-store shaped on purpose: a flat set of files with size and modification
time, directories existing only as path prefixes.  Local disk is read into the same shape, so
one set of rules serves `file://`, `s3://`, `gs://` and `az://`.  The only extra a local disk
gives is a symlink target (`Entry.link`), which Lightning's `last.ckpt` and Composer's
`latest-rank0.pt` rely on.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class Entry:
    path: str  # relative to the store root, '/'-separated, no leading '/'
    size: int
    mtime: float  # unix seconds (S3 LastModified has 1 s resolution)
    # Symlink target relative to the store root (file:// only).  Size and mtime are then the
    # target's; a dangling link keeps its own mtime and size 0.
    link: str | None = None
    # Inode change time (file:// only).  A rename sets it, so for writers that commit by renaming
    # a finished temp file (Lightning) it is the commit time where mtime is the write's start.
    ctime: float | None = None


class Listing:
    """All files of one store, plus the few small reads the layouts asked for."""

    def __init__(
        self,
        entries: Iterable[Entry],
        contents: Mapping[str, bytes] | None = None,
        tails: Mapping[str, bytes] | None = None,
    ) -> None:
        self.entries: dict[str, Entry] = {e.path: e for e in entries}
        self._paths = sorted(self.entries)
        self._dirs: frozenset[str] | None = None
        # Full contents of tiny pointer files (DeepSpeed `latest`, Megatron tracker, ...).
        self.contents: dict[str, bytes] = dict(contents or {})
        # The last bytes of single-file checkpoints, for the zip end-of-central-directory check.
        self.tails: dict[str, bytes] = dict(tails or {})

    def __len__(self) -> int:
        return len(self.entries)

    def under(self, prefix: str) -> list[Entry]:
        """Every file below directory `prefix` ("" = the whole store), recursively."""
        if not prefix:
            return [self.entries[p] for p in self._paths]
        lo = prefix.rstrip("/") + "/"
        i = bisect.bisect_left(self._paths, lo)
        out = []
        while i < len(self._paths) and self._paths[i].startswith(lo):
            out.append(self.entries[self._paths[i]])
            i += 1
        return out

    def is_dir(self, path: str) -> bool:
        lo = path.rstrip("/") + "/"
        i = bisect.bisect_left(self._paths, lo)
        return i < len(self._paths) and self._paths[i].startswith(lo)

    def exists(self, path: str) -> bool:
        return path in self.entries or self.is_dir(path)

    def dirs(self) -> set[str]:
        """Every directory that holds at least one file, at any depth (computed once)."""
        if self._dirs is None:
            out: set[str] = set()
            for p in self._paths:
                parts = p.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    out.add("/".join(parts[:i]))
            self._dirs = frozenset(out)
        return set(self._dirs)

    def child_dirs(self, parent: str) -> set[str]:
        """Immediate sub-directory names of `parent` ("" = root)."""
        base = parent.rstrip("/") + "/" if parent else ""
        out = set()
        for e in self.under(parent):
            rest = e.path[len(base) :]
            if "/" in rest:
                out.add(rest.split("/", 1)[0])
        return out

    def text(self, path: str) -> str | None:
        raw = self.contents.get(path)
        if raw is None:
            return None
        return raw.decode("utf-8", "replace").strip()


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


@dataclass(frozen=True)
class Verdict:
    """What one scan says about one store.  Timestamps are unix seconds."""

    layout: str  # the detected layout; "unknown" when nothing recognisable was found
    last_complete_ts: float | None  # commit-marker time of the newest complete checkpoint
    last_step: int | None
    size_bytes: int | None  # bytes of that checkpoint (all its files)
    in_progress: bool  # a save newer than the last complete one has not (yet) committed
    in_progress_since: float | None  # earliest start estimate of those saves
    complete_history_ts: tuple[float, ...] = ()  # recent commit times, oldest first
    last_complete_key: str | None = None  # path of the checkpoint (for logs and the landing page)
    in_progress_keys: tuple[str, ...] = ()
    # A pointer (`latest`, tracker, `last.ckpt`, `latest-rank0.pt`) names something missing or torn.
    pointer_dangling: bool = False
    # path -> (size, mtime) of files whose completeness needs two equal scans (plain torch.save).
    seen: Mapping[str, tuple[int, float]] = field(default_factory=dict)


EMPTY = Verdict("unknown", None, None, None, False, None)

HISTORY_KEEP = 16


def merge_history(old: Iterable[float], new: Iterable[float], keep: int = HISTORY_KEEP) -> tuple[float, ...]:
    """Union of commit times, oldest first.  Times within a second are one checkpoint: S3
    reports whole seconds while a local disk reports fractions for the same object."""
    out: list[float] = []
    for ts in sorted([*old, *new]):
        if out and ts - out[-1] < 1.0:
            out[-1] = max(out[-1], ts)
            continue
        out.append(ts)
    return tuple(out[-keep:])


def learned_interval(history: Iterable[float], span: int = 8) -> float | None:
    """Median spacing of the most recent complete checkpoints; None with fewer than two.

    The median, not the mean: one missed save (a restart) doubles a gap, and must not teach the
    alert that twice the usual interval is normal."""
    ts = sorted(history)[-span:]
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b > a]
    if not gaps:
        return None
    return float(statistics.median(gaps))
