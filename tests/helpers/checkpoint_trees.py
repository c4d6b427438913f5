"""Checkpoint trees for every layout, built by the tests themselves.

Each `Case` writes a small directory tree with explicit mtimes (offsets of `STEP` seconds from a
base time) and says what a correct verdict is: the step of the last complete checkpoint, which
file is its commit marker (its mtime is the expected commit time), whether a save is in
progress and since when, and whether a pointer dangles.  `upload` puts the same trees into an
S3 bucket in mtime order, one wall-clock second per distinct mtime, because S3 stamps
LastModified itself (whole seconds) and the rules compare markers with shards.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

STEP = 10.0  # seconds between the mtimes of successive groups of files


def zip_bytes(payload: bytes = b"weights" * 50) -> bytes:
    """A small file shaped like torch.save output: a zip ending with its central directory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


def torn_zip() -> bytes:
    """torch.save cut off part-way: no end-of-central-directory record."""
    return zip_bytes()[:-40]


@dataclass
class Tree:
    root: Path | None
    base: float
    # path -> (offset index, kind, payload or link target)
    items: dict[str, tuple[int, str, bytes | str]] = field(default_factory=dict)

    def t(self, k: int) -> float:
        return self.base + k * STEP

    def file(self, path: str, k: int, data: bytes = b"x" * 64) -> "Tree":
        self.items[path] = (k, "file", data)
        return self

    def link(self, path: str, target: str, k: int) -> "Tree":
        """A relative symlink at `path` pointing at `target` (relative to the link's dir)."""
        self.items[path] = (k, "link", target)
        return self

    def write(self) -> None:
        assert self.root is not None
        for path, (k, kind, data) in self.items.items():
            full = self.root / path
            full.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                full.write_bytes(data)  # type: ignore[arg-type]
                os.utime(full, (self.t(k), self.t(k)))
            else:
                os.symlink(data, full)  # type: ignore[arg-type]
                os.utime(full, (self.t(k), self.t(k)), follow_symlinks=False)


@dataclass
class Case:
    id: str
    layout: str
    build: Callable[[Tree], None]
    step: int | None  # last complete step; None = no complete checkpoint
    marker: str | None  # commit marker of the last complete checkpoint
    in_progress: bool = False
    since: int | None = None  # offset index of the in-progress start (local trees)
    dangling: bool = False
    sniffs_as: str | None = None  # what auto-detection says, when not `layout`
    marker_ts: Callable[[Tree], float] | None = None  # commit time not from a file's mtime
    s3: bool = True  # representable in object storage (no dangling local symlinks)
    two_scans: bool = False  # needs two equal scans (plain torch.save)


def _dcp(t: Tree, d: str, k: int, ranks: tuple[int, ...] = (0, 1), meta: bool = True) -> None:
    for r in ranks:
        t.file(f"{d}/__{r}_0.distcp", k)
    if meta:
        t.file(f"{d}/.metadata", k + 1)


def _ds(t: Tree, d: str, k: int, ranks: tuple[int, ...] = (0, 1)) -> None:
    t.file(f"{d}/mp_rank_00_model_states.pt", k, zip_bytes())
    for r in ranks:
        t.file(f"{d}/zero_pp_rank_{r}_mp_rank_00_optim_states.pt", k, zip_bytes())


def _hf(t: Tree, step: int, k: int, state: bool = True) -> None:
    d = f"checkpoint-{step}"
    t.file(f"{d}/model.safetensors", k).file(f"{d}/optimizer.pt", k, zip_bytes())
    if state:
        t.file(f"{d}/trainer_state.json", k + 1, json.dumps({"global_step": step}).encode())


def _orbax_meta(t: Tree, init_k: int, commit_k: int | None) -> bytes:
    meta = {"init_timestamp_nsecs": int(t.t(init_k) * 1e9)}
    if commit_k is not None:
        meta["commit_timestamp_nsecs"] = int(t.t(commit_k) * 1e9)
    return json.dumps(meta).encode()


def _orbax_step(t: Tree, name: str, k: int, commit: bool = True) -> None:
    t.file(f"{name}/default/array_metadatas/process_0", k)
    t.file(f"{name}/_CHECKPOINT_METADATA", k + 1, _orbax_meta(t, k, k + 1 if commit else None))


def _megatron_legacy(t: Tree, it: int, k: int, ranks: int = 2) -> None:
    for r in range(ranks):
        t.file(f"iter_{it:07d}/mp_rank_{r:02d}/model_optim_rng.pt", k, zip_bytes())


def _megatron_dist(t: Tree, it: int, k: int, finished: bool = True) -> None:
    d = f"iter_{it:07d}"
    t.file(f"{d}/common.pt", k, zip_bytes())
    _dcp(t, d, k, meta=finished)
    if finished:
        t.file(f"{d}/metadata.json", k + 1, b'{"sharded_backend": "torch_dist"}')


def _tracker(t: Tree, value: str, k: int) -> None:
    t.file("latest_checkpointed_iteration.txt", k, value.encode())


NEMO = "checkpoints/megatron_gpt--val_loss=1.00-step={}-consumed_samples=0.0"


def _cases() -> list[Case]:
    c: list[Case] = []

    # torch.distributed.checkpoint
    def dcp_complete(t: Tree) -> None:
        _dcp(t, "step_100", 0)
        _dcp(t, "step_200", 2)

    c.append(Case("dcp-complete", "dcp", dcp_complete, 200, "step_200/.metadata"))
    c.append(Case("dcp-interrupted-shards", "dcp",
                  lambda t: (dcp_complete(t), t.file("step_300/__0_0.distcp", 4)),
                  200, "step_200/.metadata", True, 4))
    c.append(Case("dcp-interrupted-metadata-tmp", "dcp",
                  lambda t: (dcp_complete(t), _dcp(t, "step_300", 4, meta=False),
                             t.file("step_300/.metadata.tmp", 5)),
                  200, "step_200/.metadata", True, 4))
    c.append(Case("dcp-rank-missing", "dcp",
                  lambda t: (dcp_complete(t), _dcp(t, "step_300", 4, ranks=(0, 2))),
                  200, "step_200/.metadata", True, 4))
    # overwrite=True into the same directory: the old .metadata stays while shards are replaced.
    c.append(Case("dcp-overwritten", "dcp",
                  lambda t: (_dcp(t, "step_100", 0), _dcp(t, "latest", 2),
                             t.file("latest/__0_0.distcp", 5)),
                  100, "step_100/.metadata", True, 5))

    # plain torch.save
    def ts_complete(t: Tree) -> None:
        t.file("model_step_100.pt", 0, zip_bytes()).file("model_step_200.pt", 2, zip_bytes())

    c.append(Case("torch_save-complete", "torch_save", ts_complete, 200, "model_step_200.pt", two_scans=True))
    c.append(Case("torch_save-interrupted", "torch_save",
                  lambda t: (ts_complete(t), t.file("model_step_300.pt", 4, torn_zip())),
                  200, "model_step_200.pt", True, 4, two_scans=True))
    c.append(Case("torch_save-overwritten", "torch_save",
                  lambda t: t.file("model_step_100.pt", 0, zip_bytes()).file("model_step_200.pt", 4, torn_zip()),
                  100, "model_step_100.pt", True, 4, two_scans=True))

    # Lightning
    def pl_complete(t: Tree) -> None:
        t.file("epoch=0-step=100.ckpt", 0, zip_bytes()).file("epoch=1-step=200.ckpt", 2, zip_bytes())
        t.link("last.ckpt", "epoch=1-step=200.ckpt", 2)

    c.append(Case("lightning-complete", "lightning", pl_complete, 200, "epoch=1-step=200.ckpt"))
    c.append(Case("lightning-interrupted", "lightning",
                  lambda t: (pl_complete(t), t.file("epoch=2-step=300.ckpt", 4, torn_zip())),
                  200, "epoch=1-step=200.ckpt", True, 4))
    c.append(Case("lightning-dangling", "lightning",
                  lambda t: (t.file("epoch=0-step=100.ckpt", 0, zip_bytes()),
                             t.link("last.ckpt", "epoch=1-step=200.ckpt", 2)),
                  100, "epoch=0-step=100.ckpt", dangling=True, s3=False))
    c.append(Case("lightning-fsdp-dir", "lightning",
                  lambda t: (_dcp(t, "epoch=0-step=100.ckpt", 0), _dcp(t, "epoch=1-step=200.ckpt", 2, meta=False)),
                  100, "epoch=0-step=100.ckpt/.metadata", True, 2))

    # Hugging Face Trainer
    def hf_complete(t: Tree) -> None:
        _hf(t, 100, 0)
        _hf(t, 200, 2)

    c.append(Case("hf_trainer-complete", "hf_trainer", hf_complete, 200, "checkpoint-200/trainer_state.json"))
    c.append(Case("hf_trainer-interrupted-weights", "hf_trainer",
                  lambda t: (hf_complete(t), _hf(t, 300, 4, state=False)),
                  200, "checkpoint-200/trainer_state.json", True, 4))
    c.append(Case("hf_trainer-interrupted-tmp", "hf_trainer",
                  lambda t: (hf_complete(t), t.file("tmp-checkpoint-300/model.safetensors", 4)),
                  200, "checkpoint-200/trainer_state.json", True, 4))
    c.append(Case("hf_trainer-overwritten", "hf_trainer",
                  lambda t: (hf_complete(t), t.file("checkpoint-200/model.safetensors", 5)),
                  100, "checkpoint-100/trainer_state.json", True, 5))

    # DeepSpeed
    def ds_complete(t: Tree) -> None:
        _ds(t, "global_step100", 0)
        _ds(t, "global_step200", 2)
        t.file("latest", 3, b"global_step200")

    c.append(Case("deepspeed-complete", "deepspeed", ds_complete, 200, "latest"))
    c.append(Case("deepspeed-interrupted-shards", "deepspeed",
                  lambda t: (ds_complete(t), t.file("global_step300/mp_rank_00_model_states.pt", 4, zip_bytes())),
                  200, "latest", True, 4))
    c.append(Case("deepspeed-interrupted-before-pointer", "deepspeed",
                  lambda t: (ds_complete(t), _ds(t, "global_step300", 4)),
                  200, "latest", True, 4))
    c.append(Case("deepspeed-dangling", "deepspeed",
                  lambda t: (_ds(t, "global_step100", 0), _ds(t, "global_step200", 2),
                             t.file("latest", 4, b"global_step300")),
                  200, "global_step200/mp_rank_00_model_states.pt", dangling=True))
    c.append(Case("deepspeed-rank-missing", "deepspeed",
                  lambda t: (_ds(t, "global_step100", 0), _ds(t, "global_step200", 2, ranks=(0, 2)),
                             t.file("latest", 3, b"global_step200")),
                  100, "global_step100/mp_rank_00_model_states.pt", dangling=True))

    # Orbax
    def ox_complete(t: Tree) -> None:
        _orbax_step(t, "100", 0)
        _orbax_step(t, "200", 2)

    ox_ts = lambda t: t.t(3)  # noqa: E731 - commit_timestamp_nsecs of step 200
    c.append(Case("orbax-complete", "orbax", ox_complete, 200, None, marker_ts=ox_ts))
    c.append(Case("orbax-interrupted", "orbax",
                  lambda t: (ox_complete(t), _orbax_step(t, "300.orbax-checkpoint-tmp-1700000000", 4, commit=False)),
                  200, None, True, 4, marker_ts=ox_ts))

    # Megatron-LM
    def mg_complete(t: Tree) -> None:
        _megatron_legacy(t, 100, 0)
        _megatron_legacy(t, 200, 2)
        _tracker(t, "200", 3)

    c.append(Case("megatron-complete", "megatron", mg_complete, 200, "latest_checkpointed_iteration.txt"))
    c.append(Case("megatron-interrupted", "megatron",
                  lambda t: (mg_complete(t), _megatron_legacy(t, 300, 4, ranks=1)),
                  200, "latest_checkpointed_iteration.txt", True, 4))
    c.append(Case("megatron-dangling", "megatron",
                  lambda t: (_megatron_legacy(t, 100, 0), _megatron_legacy(t, 200, 2), _tracker(t, "300", 4)),
                  200, "iter_0000200/mp_rank_01/model_optim_rng.pt", dangling=True))
    c.append(Case("megatron-torch_dist-interrupted", "megatron",
                  lambda t: (_megatron_dist(t, 100, 0), _megatron_dist(t, 200, 2), _tracker(t, "200", 4),
                             _megatron_dist(t, 300, 5, finished=False)),
                  200, "latest_checkpointed_iteration.txt", True, 5))

    # NeMo
    def nemo_complete(t: Tree) -> None:
        t.file(NEMO.format(100) + ".ckpt", 0, zip_bytes())
        t.file(NEMO.format(200) + ".ckpt", 2, zip_bytes())

    c.append(Case("nemo-complete", "nemo", nemo_complete, 200, NEMO.format(200) + ".ckpt", ))
    c.append(Case("nemo-interrupted", "nemo",
                  lambda t: (nemo_complete(t), t.file(NEMO.format(300) + "-unfinished", 4, b""),
                             t.file(NEMO.format(300) + ".ckpt", 5, zip_bytes())),
                  200, NEMO.format(200) + ".ckpt", True, 4))
    c.append(Case("nemo-interrupted-before-file", "nemo",
                  lambda t: (nemo_complete(t), t.file(NEMO.format(300) + "-unfinished", 4, b"")),
                  200, NEMO.format(200) + ".ckpt", True, 4))

    # Composer
    def cp_complete(t: Tree) -> None:
        t.file("ep0-ba100-rank0.pt", 0, zip_bytes()).file("ep1-ba200-rank0.pt", 2, zip_bytes())
        t.link("latest-rank0.pt", "ep1-ba200-rank0.pt", 2)

    c.append(Case("composer-complete", "composer", cp_complete, 200, "ep1-ba200-rank0.pt"))
    c.append(Case("composer-interrupted", "composer",
                  lambda t: (cp_complete(t), t.file("ep2-ba300-rank0.pt", 4, torn_zip())),
                  200, "ep1-ba200-rank0.pt", True, 4))
    c.append(Case("composer-dangling", "composer",
                  lambda t: (t.file("ep0-ba100-rank0.pt", 0, zip_bytes()),
                             t.link("latest-rank0.pt", "ep1-ba200-rank0.pt", 2)),
                  100, "ep0-ba100-rank0.pt", dangling=True))
    c.append(Case("composer-sharded", "composer",
                  lambda t: (_dcp(t, "ep0-ba100", 0), _dcp(t, "ep1-ba200", 2), t.link("latest-rank0.pt", "ep1-ba200", 3)),
                  200, "ep1-ba200/.metadata"))
    return c


CASES = _cases()


def build(case: Case, root: Path, base: float) -> Tree:
    tree = Tree(root, base)
    case.build(tree)
    tree.write()
    return tree


def upload(trees: dict[str, Tree], client, bucket: str, parallel: int = 16) -> None:
    """Upload several trees (prefix -> tree) in mtime order: every distinct offset is one
    wall-clock second later than the previous, so S3's LastModified keeps their order (the puts
    of one group run in parallel so a group does not straddle a second).  Local symlinks become
    what frameworks write to object storage instead: Composer a small `<name>.symlink` object
    naming the target, Lightning a copy of the file."""
    groups: dict[int, list[dict]] = {}
    for prefix, tree in trees.items():
        for path, (k, kind, data) in tree.items.items():
            key = f"{prefix}/{path}"
            if kind == "file":
                put = {"Key": key, "Body": data}
            else:
                target = os.path.normpath(os.path.join(os.path.dirname(path), str(data)))
                if path.rsplit("/", 1)[-1].startswith("latest-rank"):
                    put = {"Key": key + ".symlink", "Body": f"{prefix}/{target}".encode()}
                elif target in tree.items:
                    put = {"Key": key, "Body": tree.items[target][2]}
                else:
                    continue  # a dangling link has no object-store form
            groups.setdefault(k, []).append(put)
    with ThreadPoolExecutor(parallel) as pool:
        for k in sorted(groups):
            for _ in range(5):
                now = time.time()
                time.sleep(int(now) + 1 - now + 0.02)  # start at a fresh second
                started = time.time()
                list(pool.map(lambda kw: client.put_object(Bucket=bucket, **kw), groups[k]))
                if int(time.time()) == int(started):
                    break  # the whole group landed within one second: same LastModified
            else:
                raise RuntimeError("could not upload a group of objects within one second")
