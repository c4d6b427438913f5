"""Orbax (JAX): `<step>.orbax-checkpoint-tmp*` renamed to `<step>/` on POSIX; on GCS written in
place and committed by `commit_success.txt`; `_CHECKPOINT_METADATA` carries the commit time.

Source: google/orbax checkpoint/orbax/checkpoint/_src/path/atomicity.py (docs/checkpoints.md).
"""

from __future__ import annotations

import json

from ..model import Listing, basename, join, parent
from .common import Candidate, Ctx, Names, newest, oldest, size_of, step_of

NAME = "orbax"
ORBAX_TMP = ".orbax-checkpoint-tmp"


def _meta(listing: Listing, d: str) -> dict:
    raw = listing.contents.get(join(d, "_CHECKPOINT_METADATA"))
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    """POSIX: a step is written as `<step>.orbax-checkpoint-tmp*` and renamed when done.  GCS:
    written in place and committed by `commit_success.txt`.  S3/Azure get the rename strategy,
    where a rename is copy + delete, so there the commit time inside `_CHECKPOINT_METADATA`
    must be present too."""
    out = []
    require_commit_file = ctx.scheme == "gs"
    require_commit_ts = ctx.scheme in ("s3", "az")
    for d in sorted(listing.dirs()):
        name = basename(d)
        files = listing.under(d)
        if any(ORBAX_TMP in part for part in parent(d).split("/")):
            continue  # inside a tmp dir: counted with it
        meta = _meta(listing, d)
        if ORBAX_TMP in name:
            start = meta.get("init_timestamp_nsecs")
            ts = start / 1e9 if isinstance(start, (int, float)) else oldest(files)
            out.append(Candidate(d, step_of(name.split(ORBAX_TMP)[0]), False, ts, size_of(files)))
            continue
        marker = listing.entries.get(join(d, "_CHECKPOINT_METADATA"))
        commit_file = listing.entries.get(join(d, "commit_success.txt"))
        if marker is None and commit_file is None:
            continue
        commit_ns = meta.get("commit_timestamp_nsecs")
        complete = True
        if require_commit_file and commit_file is None:
            complete = False
        if require_commit_ts and meta and not isinstance(commit_ns, (int, float)):
            complete = False
        if isinstance(commit_ns, (int, float)):
            ts = commit_ns / 1e9
        elif commit_file is not None:
            ts = commit_file.mtime
        elif marker is not None:
            ts = marker.mtime
        else:
            ts = newest(files)
        if not complete:
            start = meta.get("init_timestamp_nsecs")
            ts = start / 1e9 if isinstance(start, (int, float)) else oldest(files)
        out.append(Candidate(d, step_of(name), complete, ts, size_of(files)))
    return out


def sniff(names: Names) -> bool:
    return (
        "_CHECKPOINT_METADATA" in names.files or "commit_success.txt" in names.files
        or any(ORBAX_TMP in d for d in names.dirs)
    )
