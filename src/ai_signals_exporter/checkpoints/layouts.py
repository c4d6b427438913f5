"""Per-framework rules: which checkpoints in a listing are complete, which are still being written.

Pure functions of a `Listing` (plus the previous `Verdict` for the rules that need two scans).
Nothing here deserialises a checkpoint: the only bytes read are tiny pointer files and the last
bytes of single-file checkpoints (see `plan_reads`).  Every rule and its source is written up in
docs/checkpoints.md; the short version:

- age comes from a commit marker (`.metadata`, `trainer_state.json`, `latest`, the Megatron
  tracker, Orbax's commit time), never from a directory's mtime, which moves on rotation;
- a save that started after the last complete checkpoint and has not committed is "in progress";
  how long it has been in progress is what tells an abandoned (evicted) save from a slow one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from .model import EMPTY, Entry, Listing, Verdict, basename, join, merge_history, parent

LAYOUTS = (
    "dcp", "torch_save", "lightning", "hf_trainer", "deepspeed", "orbax", "megatron", "nemo",
    "composer",
)

# Single-file torch.save checkpoints.  `.ckpt` is Lightning's (a torch.save zip too).
TORCH_EXTS = (".pt", ".pth", ".bin", ".tar", ".ckpt")
TAIL_BYTES = 256
POINTER_FILES = ("latest", "latest_checkpointed_iteration.txt", "_CHECKPOINT_METADATA")
MAX_POINTER_BYTES = 64 * 1024
# A plain torch.save file seen only once is accepted after this long without change.
SETTLE_SECONDS = 60.0

_SHARD_RE = re.compile(r"^__(\d+)_(\d+)\.distcp$")
_HF_RE = re.compile(r"^checkpoint-(\d+)$")
_HF_RNG_RE = re.compile(r"^rng_state(?:_\d+)?\.pth$")
_DS_RE = re.compile(r"^global_step(\d+)$")
_ZERO_RE = re.compile(r"^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")
_MEGATRON_RE = re.compile(r"^iter_(\d{7,})$")  # {:07d}: 8 digits from 10M on
_COMPOSER_RE = re.compile(r"^ep(\d+)-ba(\d+)(?:-rank0)?(?:\.pt)?$")
_STEP_RE = re.compile(r"step[=_-]?(\d+)")
_INT_RE = re.compile(r"\d+")
ORBAX_TMP = ".orbax-checkpoint-tmp"
UNFINISHED = "-unfinished"


@dataclass(slots=True)
class Candidate:
    """One checkpoint (a directory or a file) as the rules see it."""

    key: str
    step: int | None
    complete: bool
    ts: float  # commit time when complete, else the best estimate of when the save started
    size: int = 0


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


def _direct(listing: Listing, d: str) -> list[Entry]:
    base = d + "/" if d else ""
    return [e for e in listing.under(d) if "/" not in e.path[len(base) :]]


def _size(entries: Iterable[Entry]) -> int:
    return sum(e.size for e in entries if e.link is None)


def _newest(entries: Iterable[Entry]) -> float:
    return max((e.mtime for e in entries), default=0.0)


def _oldest(entries: Iterable[Entry]) -> float:
    return min((e.mtime for e in entries), default=0.0)


def _contiguous(ranks: Iterable[int]) -> bool:
    s = set(ranks)
    return not s or s == set(range(max(s) + 1))


# --- torch.distributed.checkpoint ---------------------------------------------------------------


def dcp_dir(listing: Listing, d: str) -> Candidate | None:
    """The DCP rule for one directory, or None when it holds no DCP files.

    Complete: `.metadata` present (the coordinator renames `.metadata.tmp` to it after every
    rank's shards are written), no `.metadata.tmp`, shard ranks 0..N contiguous, and no shard
    newer than `.metadata` — with `overwrite=True` into the same directory the old `.metadata`
    stays while new shards replace the old ones."""
    files = _direct(listing, d)
    shards = [e for e in files if _SHARD_RE.match(basename(e.path))]
    meta = listing.entries.get(join(d, ".metadata"))
    tmp = listing.entries.get(join(d, ".metadata.tmp"))
    if not shards and meta is None and tmp is None:
        return None
    size = _size(files)
    step = step_of(basename(d)) if d else None
    ranks = [int(_SHARD_RE.match(basename(e.path)).group(1)) for e in shards]  # type: ignore[union-attr]
    if meta is not None and tmp is None and _contiguous(ranks) and _newest(shards) <= meta.mtime:
        return Candidate(d, step, True, meta.mtime, size)
    newer = [e for e in shards if meta is None or e.mtime > meta.mtime]
    started = _oldest(newer or shards or [tmp or meta])  # type: ignore[list-item]
    return Candidate(d, step, False, started, size)


def _dcp_dirs(listing: Listing, root: str = "") -> list[str]:
    out = set()
    for e in listing.under(root):
        name = basename(e.path)
        if name in (".metadata", ".metadata.tmp") or _SHARD_RE.match(name):
            out.add(parent(e.path))
    return sorted(out)


def nested_dcp_ok(listing: Listing, d: str) -> bool:
    """Every DCP directory inside `d` (FSDP state in an HF or Lightning checkpoint) is complete."""
    for sub in _dcp_dirs(listing, d):
        c = dcp_dir(listing, sub)
        if c is not None and not c.complete:
            return False
    return True


def _dcp(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    return [c for d in _dcp_dirs(listing) if (c := dcp_dir(listing, d)) is not None]


# --- plain torch.save ---------------------------------------------------------------------------


def _file_state(listing: Listing, e: Entry, ctx: "_Ctx", need_stable: bool) -> tuple[bool, bool]:
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


def _torch_save(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    out = []
    for e in listing.under(""):
        if e.link is not None or not e.path.endswith(TORCH_EXTS):
            continue
        ctx.seen[e.path] = (e.size, e.mtime)
        complete, _ = _file_state(listing, e, ctx, need_stable=True)
        out.append(Candidate(e.path, step_of(basename(e.path)), complete, e.mtime, e.size))
    return out


# --- Lightning and NeMo -------------------------------------------------------------------------


def _ckpt_dir(listing: Listing, d: str) -> Candidate:
    """A `.ckpt` directory (DeepSpeed or FSDP strategies): not atomic, so use the inner rules."""
    files = listing.under(d)
    inner = dcp_dir(listing, d) or next(
        (c for sub in _dcp_dirs(listing, d) if (c := dcp_dir(listing, sub)) is not None), None
    )
    step = step_of(basename(d))
    if inner is not None:
        return Candidate(d, step, inner.complete and nested_dcp_ok(listing, d), inner.ts, _size(files))
    if join(d, "latest") in listing.entries:
        sub = _Ctx(0.0, None)
        ds = [c for c in _deepspeed(listing, sub, root=d) if c.complete]
        ok = bool(ds) and not sub.dangling
        ts = max((c.ts for c in ds), default=_oldest(files))
        return Candidate(d, step, ok, ts if ok else _oldest(files), _size(files))
    if any(basename(e.path).endswith("model_states.pt") or _ZERO_RE.match(basename(e.path)) for e in files):
        # DeepSpeed rank files but no `latest` yet: rank 0 writes it after its own files.
        return Candidate(d, step, False, _oldest(files), _size(files))
    return Candidate(d, step, True, _newest(files), _size(files))


def _lightning_like(listing: Listing, ctx: "_Ctx", nemo: bool) -> list[Candidate]:
    out: list[Candidate] = []
    ckpt_dirs = sorted(
        d for d in listing.dirs()
        if d.endswith(".ckpt") or (nemo and "step=" in basename(d) and not d.endswith(UNFINISHED))
    )
    # Only the outermost matching directory is a checkpoint.
    tops = [d for d in ckpt_dirs if not any(d.startswith(o + "/") for o in ckpt_dirs if o != d)]
    for d in tops:
        out.append(_ckpt_dir(listing, d))
    for e in listing.under(""):
        if any(e.path.startswith(d + "/") for d in tops):
            continue
        if e.path.endswith(".ckpt") or (nemo and e.path.endswith(".nemo")):
            if e.link is not None:
                if not listing.exists(e.link):
                    ctx.dangling = True
                continue  # last.ckpt -> epoch=..ckpt: the target is a candidate of its own
            # Lightning saves single files through an fsspec transaction (temp + rename), so the
            # file appearing is the commit; the zip tail still catches a copy cut short.
            complete, _ = _file_state(listing, e, ctx, need_stable=False)
            out.append(Candidate(e.path, step_of(basename(e.path)), complete, e.mtime, e.size))
    if not nemo:
        return out
    # NeMo touches `<ckpt>-unfinished` before a save and deletes it after the save completed.
    markers = {
        e.path[: -len(UNFINISHED)]: e for e in listing.under("") if e.path.endswith(UNFINISHED)
    }
    if not markers:
        return out
    by_base = {}
    for c in out:
        base = c.key
        for suffix in (".nemo", ".ckpt", "-EMA"):
            base = base.removesuffix(suffix)
        by_base.setdefault(base, []).append(c)
    for base, marker in markers.items():
        hits = by_base.get(base, [])
        for c in hits:
            c.complete = False
            c.ts = marker.mtime
        if not hits:
            out.append(Candidate(base, step_of(basename(base)), False, marker.mtime, 0))
    return out


def _lightning(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    return _lightning_like(listing, ctx, nemo=False)


def _nemo(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    return _lightning_like(listing, ctx, nemo=True)


# --- Hugging Face Trainer -----------------------------------------------------------------------


def _hf_trainer(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    out = []
    for d in sorted(listing.dirs()):
        name = basename(d)
        files = listing.under(d)
        if name.startswith("tmp-checkpoint-"):
            out.append(Candidate(d, step_of(name[len("tmp-checkpoint-"):]), False, _oldest(files), _size(files)))
            continue
        m = _HF_RE.match(name)
        if not m:
            continue
        state = listing.entries.get(join(d, "trainer_state.json"))
        # trainer_state.json is written last; anything newer means the folder was overwritten in
        # place after it (a resumed run saving the same step) and is torn until a new one lands.
        # Except the RNG states: transformers <= 4.35 saved rng_state*.pth after
        # trainer_state.json, and every rank writes its own one without a barrier.
        weights = [e for e in files if not _HF_RNG_RE.match(basename(e.path))]
        complete = (
            state is not None
            and _newest(weights) <= state.mtime
            and nested_dcp_ok(listing, d)
            and _ds_inside_ok(listing, d)
        )
        ts = state.mtime if complete and state is not None else _oldest(
            [e for e in weights if state is None or e.mtime > state.mtime] or files
        )
        out.append(Candidate(d, int(m.group(1)), complete, ts, _size(files)))
    return out


def _ds_inside_ok(listing: Listing, d: str) -> bool:
    latest = join(d, "latest")
    if latest not in listing.entries:
        return True
    tag = listing.text(latest)
    return tag is None or _ds_dir_ok(listing, join(d, tag))


# --- DeepSpeed ----------------------------------------------------------------------------------


def _ds_dir_ok(listing: Listing, d: str) -> bool:
    """Model states present and ZeRO optimizer ranks 0..N contiguous."""
    names = [basename(e.path) for e in _direct(listing, d)]
    if not any(n.endswith("model_states.pt") for n in names):
        return False
    zero = [int(m.group(1)) for n in names if (m := _ZERO_RE.match(n))]
    return _contiguous(zero)


def _deepspeed(listing: Listing, ctx: "_Ctx", root: str | None = None) -> list[Candidate]:
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
            m = _DS_RE.match(name)
            if not m and name != tag:
                continue
            step = int(m.group(1)) if m else tag_step
            files = listing.under(d)
            if name == tag:
                continue
            if tag_step is not None and step is not None and step > tag_step:
                out.append(Candidate(d, step, False, _oldest(files), _size(files)))
            elif _ds_dir_ok(listing, d):
                # Superseded: no marker of its own any more; its newest file stands in (history only).
                out.append(Candidate(d, step, True, _newest(files), _size(files)))
        if tag is None:
            continue
        d = join(base, tag)
        if listing.is_dir(d) and _ds_dir_ok(listing, d):
            out.append(Candidate(d, tag_step, True, ptr.mtime, _size(listing.under(d))))
        else:
            ctx.dangling = True
    return out


# --- Orbax --------------------------------------------------------------------------------------


def _orbax_meta(listing: Listing, d: str) -> dict:
    raw = listing.contents.get(join(d, "_CHECKPOINT_METADATA"))
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _orbax(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
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
        meta = _orbax_meta(listing, d)
        if ORBAX_TMP in name:
            start = meta.get("init_timestamp_nsecs")
            ts = start / 1e9 if isinstance(start, (int, float)) else _oldest(files)
            out.append(Candidate(d, step_of(name.split(ORBAX_TMP)[0]), False, ts, _size(files)))
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
            ts = _newest(files)
        if not complete:
            start = meta.get("init_timestamp_nsecs")
            ts = start / 1e9 if isinstance(start, (int, float)) else _oldest(files)
        out.append(Candidate(d, step_of(name), complete, ts, _size(files)))
    return out


# --- Megatron-LM --------------------------------------------------------------------------------


def _megatron_dir_ok(listing: Listing, d: str) -> tuple[bool, float]:
    """(complete, commit-ish time) of one `iter_NNNNNNN/`: torch_dist needs `metadata.json`
    (rank 0 writes it after the DCP save) and a complete DCP directory; the legacy format needs
    `model_optim_rng.pt` in every `mp_rank_*` directory."""
    files = listing.under(d)
    meta_json = listing.entries.get(join(d, "metadata.json"))
    dcp = dcp_dir(listing, d)
    if meta_json is not None or dcp is not None or join(d, "common.pt") in listing.entries:
        ok = meta_json is not None and dcp is not None and dcp.complete
        return ok, meta_json.mtime if meta_json is not None else _oldest(files)
    ranks = [n for n in listing.child_dirs(d) if n.startswith("mp_rank_")]
    ok = bool(ranks) and all(join(d, r, "model_optim_rng.pt") in listing.entries for r in ranks)
    return ok, _newest(files)


def _megatron(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    out = []
    trackers = [e for e in listing.under("") if basename(e.path) == "latest_checkpointed_iteration.txt"]
    # The tracker is written after every save, the first one included: iterations in a save
    # directory without one are that first save, still running or cut off.
    tracked_bases = {parent(t.path) for t in trackers}
    for d in sorted(listing.dirs()):
        m = _MEGATRON_RE.match(basename(d))
        if m and parent(d) not in tracked_bases:
            files = listing.under(d)
            out.append(Candidate(d, int(m.group(1)), False, _oldest(files), _size(files)))
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
            m = _MEGATRON_RE.match(name)
            if not m or name == pointed:
                continue
            d = join(base, name)
            step = int(m.group(1))
            files = listing.under(d)
            if tracked is not None and step > tracked:
                out.append(Candidate(d, step, False, _oldest(files), _size(files)))
            else:
                ok, ts = _megatron_dir_ok(listing, d)
                out.append(Candidate(d, step, ok, ts if ok else _oldest(files), _size(files)))
        if pointed is None:
            continue
        d = join(base, pointed)
        ok, _ = _megatron_dir_ok(listing, d) if listing.is_dir(d) else (False, 0.0)
        if ok:
            out.append(Candidate(d, tracked, True, tracker.mtime, _size(listing.under(d))))
        else:
            ctx.dangling = True
    return out


# --- Composer -----------------------------------------------------------------------------------


def _composer_target(listing: Listing) -> tuple[Entry | None, str | None]:
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


def _composer(listing: Listing, ctx: "_Ctx") -> list[Candidate]:
    ptr, target = _composer_target(listing)
    out = []
    pointed: Candidate | None = None
    seen_keys = set()
    for e in listing.under(""):
        name = basename(e.path)
        m = _COMPOSER_RE.match(name)
        d = parent(e.path)
        if m is None and _COMPOSER_RE.match(basename(d)):
            if d in seen_keys:
                continue
            seen_keys.add(d)
            c = dcp_dir(listing, d) or Candidate(d, None, True, _newest(listing.under(d)), _size(listing.under(d)))
            c.step = int(_COMPOSER_RE.match(basename(d)).group(2))  # type: ignore[union-attr]
        elif m is not None and e.link is None and e.path.endswith(".pt"):
            complete, _ = _file_state(listing, e, ctx, need_stable=False)
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


# --- auto-detection and the verdict -------------------------------------------------------------


class _Ctx:
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


RULES: dict[str, Callable[[Listing, _Ctx], list[Candidate]]] = {
    "dcp": _dcp,
    "torch_save": _torch_save,
    "lightning": _lightning,
    "hf_trainer": _hf_trainer,
    "deepspeed": _deepspeed,
    "orbax": _orbax,
    "megatron": _megatron,
    "nemo": _nemo,
    "composer": _composer,
}


def sniff(listing: Listing) -> str:
    """Guess the layout from names alone, most specific first: an HF checkpoint may hold a
    DeepSpeed tree, a Lightning `.ckpt` directory a DeepSpeed or DCP one, a Megatron iteration a
    DCP one, and everything holds `.pt` files."""
    names = {basename(e.path) for e in listing.under("")}
    dirs = {basename(d) for d in listing.dirs()}
    if "latest_checkpointed_iteration.txt" in names or any(_MEGATRON_RE.match(d) for d in dirs):
        return "megatron"
    if (
        any(n.endswith(UNFINISHED) or n.endswith(".nemo") for n in names)
        # NeMo 2 checkpoints are directories named like `model--...-step=N-...`.
        or any("step=" in d and not d.endswith(".ckpt") for d in dirs)
    ):
        return "nemo"
    if any(n.startswith("latest-rank") for n in names):
        return "composer"
    if any(_HF_RE.match(d) or d.startswith("tmp-checkpoint-") for d in dirs):
        return "hf_trainer"
    if any(n.endswith(".ckpt") for n in names | dirs):  # before DeepSpeed: .ckpt dirs hold `latest`
        return "lightning"
    # `latest` alone is not enough: other trainers keep a `latest` file or symlink too.
    if any(_DS_RE.match(d) for d in dirs) or (
        "latest" in names and any(n.endswith("model_states.pt") or _ZERO_RE.match(n) for n in names)
    ):
        return "deepspeed"
    if (
        "_CHECKPOINT_METADATA" in names or "commit_success.txt" in names
        or any(ORBAX_TMP in d for d in dirs)
    ):
        return "orbax"
    if any(n in (".metadata", ".metadata.tmp") or _SHARD_RE.match(n) for n in names):
        return "dcp"
    if any(n.endswith(TORCH_EXTS) for n in names):
        return "torch_save"
    return "unknown"


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
        layout = sniff(listing)
        # Stay on a layout once seen: NeMo looks like Lightning between saves.
        if previous is not None and previous.layout == "nemo" and layout == "lightning":
            layout = "nemo"
    if layout == "unknown":
        return EMPTY
    ctx = _Ctx(now, previous, scheme, settle)
    cands = RULES[layout](listing, ctx)
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


def summarise(layout: str, cands: list[Candidate], ctx: _Ctx) -> Verdict:
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
            or (c.step is not None and last.step is not None and c.step > last.step)
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
    old = prev.complete_history_ts if prev is not None and prev.layout == layout else ()
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
