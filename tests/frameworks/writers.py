"""Train tiny models with the real frameworks on CPU and cut their saves off.

Run by tests/frameworks/ in a subprocess, under the interpreter that has the frameworks
(`FRAMEWORKS_PYTHON`, or `FRAMEWORKS_PYTHON_<FRAMEWORK>` for NeMo and Composer):

    python writers.py FRAMEWORK OUT --every N --saves S [--keep K] [--kill save:I | delete:I]

Models are built from code (no downloads).  A save happens every `--every` steps, `--saves`
times.  `--kill save:I` SIGKILLs the process half-way through the first file write of the I-th
save (1-based); `--kill delete:I` SIGKILLs it at the I-th deletion of an old checkpoint (top-k
rotation), after removing one file of it.  The last line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import sys
from pathlib import Path

STATE = {"save": 0, "deletes": 0, "out": "", "kill": ("", 0)}


def _die(what: str) -> None:
    print(json.dumps({"killed": what, "save": STATE["save"]}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _inside(path) -> bool:
    try:
        return os.path.abspath(os.fspath(path)).startswith(STATE["out"])
    except TypeError:
        return False


def arm(out: str, kill: str) -> None:
    """Patch the writers every framework goes through: torch.save and the file deletions."""
    STATE["out"] = os.path.abspath(out)
    kind, _, idx = kill.partition(":")
    STATE["kill"] = (kind, int(idx or 0))
    import torch

    real_save = torch.save

    def save(obj, f, *a, **kw):
        if STATE["kill"] == ("save", STATE["save"]):
            buf = io.BytesIO()
            real_save(obj, buf, *a, **kw)
            data = buf.getvalue()[: max(1, len(buf.getvalue()) // 2)]
            if isinstance(f, (str, os.PathLike)):
                with open(f, "wb") as fh:
                    fh.write(data)
            else:
                f.write(data)
                f.flush()
            _die(f"save {STATE['save']} writing {f if isinstance(f, (str, os.PathLike)) else type(f).__name__}")
        return real_save(obj, f, *a, **kw)

    torch.save = save
    for mod in list(sys.modules.values()):  # modules that did `from torch import save`
        if getattr(mod, "save", None) is real_save and mod is not torch:
            setattr(mod, "save", save)

    def deleting(real):
        def wrapper(path, *a, **kw):
            # NeMo's own `-unfinished` markers are removed as a save's last step, not rotation.
            # Composer removes a `latest-rank0.pt` that may not exist yet: not a deletion.
            if (_inside(path) and STATE["kill"][0] == "delete" and os.path.lexists(path)
                    and not os.fspath(path).endswith("-unfinished")):
                STATE["deletes"] += 1
                if STATE["deletes"] == STATE["kill"][1]:
                    if os.path.isdir(path):  # partial deletion: one file gone
                        for root, _, files in os.walk(path):
                            if files:
                                os.remove(os.path.join(root, files[0]))
                                break
                    else:
                        real(path, *a, **kw)
                    _die(f"delete {path}")
            return real(path, *a, **kw)
        return wrapper

    shutil.rmtree = deleting(shutil.rmtree)
    os.remove = deleting(os.remove)
    os.unlink = deleting(os.unlink)


def counting(fn):
    """Wrap a framework's save entry point so the kill knows which save it is in."""
    def wrapper(*a, **kw):
        STATE["save"] += 1
        return fn(*a, **kw)
    return wrapper


# --- frameworks ---------------------------------------------------------------------------------


def hf_trainer(args) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=128, n_positions=16))
    ids = torch.randint(0, 128, (64, 16))
    data = [{"input_ids": x, "labels": x} for x in ids]
    extra = {}
    if args.deepspeed:
        extra["deepspeed"] = {
            "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
            "zero_optimization": {"stage": args.deepspeed}, "zero_allow_untested_optimizer": True,
        }
    targs = TrainingArguments(
        output_dir=args.out, save_strategy="steps", save_steps=args.every,
        max_steps=args.every * args.saves, save_total_limit=args.keep, per_device_train_batch_size=2,
        report_to=[], use_cpu=True, logging_steps=10_000, disable_tqdm=True, **extra,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=data)
    trainer._save_checkpoint = counting(trainer._save_checkpoint)
    trainer.train()


def _dist_init() -> None:
    import torch.distributed as dist

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        dist.init_process_group("gloo")


def deepspeed_engine(args) -> None:
    import deepspeed
    import torch

    _dist_init()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    cfg = {
        "train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": args.deepspeed or 1}, "zero_allow_untested_optimizer": True,
    }
    engine, *_ = deepspeed.initialize(
        model=model, optimizer=torch.optim.AdamW(model.parameters()), config=cfg, dist_init_required=False
    )
    save = counting(engine.save_checkpoint)
    for step in range(1, args.every * args.saves + 1):
        x = torch.randn(2, 32)
        loss = engine(x).pow(2).mean()
        engine.backward(loss)
        engine.step()
        if step % args.every == 0:
            save(args.out)


def _lightning_module(pl):
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(32, 1)

        def training_step(self, batch, _):
            return self.net(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def train_dataloader(self):
            ds = torch.utils.data.TensorDataset(torch.randn(256, 32))
            return torch.utils.data.DataLoader(ds, batch_size=2)

    return Tiny()


def lightning(args) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    torch.manual_seed(0)
    ckpt = ModelCheckpoint(
        dirpath=args.out, every_n_train_steps=args.every, save_top_k=args.keep or -1,
        monitor="step", mode="max", save_last="link",
    )
    trainer = L.Trainer(
        max_steps=args.every * args.saves, callbacks=[ckpt], logger=False, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.save_checkpoint = counting(trainer.save_checkpoint)
    trainer.fit(_lightning_module(L))


def nemo(args) -> None:
    import lightning.pytorch as pl
    import torch
    from nemo.utils.callbacks import NeMoModelCheckpoint

    torch.manual_seed(0)
    ckpt = NeMoModelCheckpoint(
        dirpath=args.out, filename="tiny--{step}-{epoch}", every_n_train_steps=args.every,
        save_top_k=args.keep or -1, monitor="step", mode="max", save_last=True,
        save_nemo_on_train_end=False, always_save_nemo=False,
    )
    trainer = pl.Trainer(
        max_steps=args.every * args.saves, callbacks=[ckpt], logger=False, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.save_checkpoint = counting(trainer.save_checkpoint)
    trainer.fit(_lightning_module(pl))


def orbax(args) -> None:
    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    from orbax.checkpoint._src.path import atomicity

    if STATE["kill"][0] == "save":
        real = atomicity.AtomicRenameTemporaryPath.finalize

        async def finalize(self, *a, **kw):  # the data is written; the rename has not happened
            if STATE["kill"] == ("save", STATE["save"]):
                _die(f"save {STATE['save']} before rename")
            return await real(self, *a, **kw)

        atomicity.AtomicRenameTemporaryPath.finalize = finalize
    if STATE["kill"][0] == "delete" and args.deletion_threads > 1:
        _cut_parallel_delete()
    opts = ocp.CheckpointManagerOptions(
        max_to_keep=args.keep or None, num_deletion_threads=args.deletion_threads or None
    )
    mngr = ocp.CheckpointManager(Path(args.out).absolute(), options=opts)
    params = {"w": jnp.ones((64, 64)), "b": jnp.zeros((64,))}
    for step in range(1, args.every * args.saves + 1):
        params = jax.tree_util.tree_map(lambda p: p - 0.01, params)
        if step % args.every == 0:
            STATE["save"] += 1
            mngr.save(step, args=ocp.args.StandardSave(params))
            mngr.wait_until_finished()
    mngr.close()


def _cut_parallel_delete() -> None:
    """Orbax 0.12 removes an old step on a local disk with `_ParallelDirectoryDeleter` (its
    `PathDeleter` picks it when `num_deletion_threads` > 1, by default min(16, cores // 2)): a
    scan thread queues one node per directory (the step directory first), worker threads
    `os.unlink` each node's files, and only then `path.rmtree()` removes the emptied directories.
    Cut after the first node's files are gone, in the finalize thread where Orbax deletes."""
    from orbax.checkpoint._src.path import deleter

    STATE["kill"] = ("orbax-" + STATE["kill"][0], STATE["kill"][1])  # not the generic unlink patch
    real = deleter._ParallelDirectoryDeleter._process_node
    real_delete = deleter._ParallelDirectoryDeleter.delete

    def delete(self, path):
        STATE["deletes"] += 1
        return real_delete(self, path)

    def process_node(self, node):
        real(self, node)
        if STATE["deletes"] == STATE["kill"][1] and node.files:
            _die(f"delete {node.path}: unlinked {sorted(os.path.basename(f) for f in node.files)}")

    deleter._ParallelDirectoryDeleter.delete = delete
    deleter._ParallelDirectoryDeleter._process_node = process_node


def composer(args) -> None:
    import torch
    from composer import Trainer
    from composer.models import ComposerClassifier

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 4))
    ds = torch.utils.data.TensorDataset(torch.randn(256, 32), torch.randint(0, 4, (256,)))
    trainer = Trainer(
        model=ComposerClassifier(net, num_classes=4),
        train_dataloader=torch.utils.data.DataLoader(ds, batch_size=2),
        max_duration=f"{args.every * args.saves}ba", save_folder=args.out,
        save_interval=f"{args.every}ba", save_num_checkpoints_to_keep=args.keep or -1,
        device="cpu", progress_bar=False, log_to_console=False,
    )
    from composer.utils import checkpoint as ck

    ck.save_checkpoint = counting(ck.save_checkpoint)
    import composer.callbacks.checkpoint_saver as cs

    cs.save_checkpoint = ck.save_checkpoint
    trainer.fit()


DISTS = {
    "hf_trainer": ("transformers", "accelerate", "torch"), "deepspeed": ("deepspeed", "torch"),
    "lightning": ("lightning", "torch"), "nemo": ("nemo-toolkit", "lightning", "torch"),
    "orbax": ("orbax-checkpoint", "jax"), "composer": ("mosaicml", "torch"),
}


def versions(framework: str, deepspeed: bool) -> str:
    """The versions that write the tree, printed before training so a killed run has them too."""
    from importlib.metadata import version

    dists = DISTS[framework] + (("deepspeed",) if deepspeed and framework == "hf_trainer" else ())
    return ", ".join(f"{d} {version(d)}" for d in dists)


WRITERS = {
    "hf_trainer": hf_trainer, "deepspeed": deepspeed_engine, "lightning": lightning,
    "nemo": nemo, "orbax": orbax, "composer": composer,
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=sorted(WRITERS))
    p.add_argument("out")
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--saves", type=int, default=2)
    p.add_argument("--keep", type=int, default=0)
    p.add_argument("--kill", default="")
    p.add_argument("--deepspeed", type=int, default=0, help="ZeRO stage (hf_trainer, deepspeed)")
    p.add_argument("--deletion-threads", type=int, default=0, help="Orbax num_deletion_threads")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(json.dumps({"version": versions(args.framework, bool(args.deepspeed))}), flush=True)
    arm(args.out, args.kill)
    WRITERS[args.framework](args)
    print(json.dumps({"finished": True, "saves": STATE["save"]}), flush=True)


if __name__ == "__main__":
    main()
