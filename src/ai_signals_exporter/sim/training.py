"""Simulated training jobs that write checkpoints on a schedule, sometimes cut off mid-save.

A `TrainingJob` writes real checkpoint trees in the order the framework does (DCP: shards, then
`.metadata.tmp` renamed to `.metadata`; HF Trainer: weights, optimizer, then
`trainer_state.json`; plain torch.save: one zip written in place), spread over `save_seconds`.
Every `interrupt_every`-th save stops part-way, as an eviction would, and leaves the partial
checkpoint on disk.  Old step directories are rotated away (`keep`).

    job = TrainingJob(tmp / "run", layout="dcp", interval=20, interrupt_every=3)
    task = job.start()          # background task; await job.stop() to end it
    await job.save(step=100)    # or drive saves by hand (tests)

`attach(cluster)` adds two jobs to a `SimCluster`: a DCP job as a static `checkpoints.stores`
entry and, with Kubernetes, an HF Trainer job discovered from its pod's
`ai-signals.io/checkpoint-uri` annotation (a static entry without Kubernetes).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from .objects import make_pod

log = logging.getLogger(__name__)

LAYOUTS = ("dcp", "hf_trainer", "torch_save")


def _zip_payload(step: int, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", json.dumps({"step": step}).encode())
        z.writestr("archive/data/0", os.urandom(size))
        z.writestr("archive/version", b"3\n")
    return buf.getvalue()


class TrainingJob:
    def __init__(
        self,
        root: str | Path,
        *,
        layout: str = "dcp",
        interval: float = 20.0,
        save_seconds: float = 3.0,
        steps_per_save: int = 100,
        ranks: int = 2,
        interrupt_every: int = 0,  # 0 = never; 3 = every third save is cut off
        keep: int = 3,
        shard_bytes: int = 16 * 1024,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        self.root = Path(root)
        self.layout = layout
        self.interval = interval
        self.save_seconds = save_seconds
        self.steps_per_save = steps_per_save
        self.ranks = ranks
        self.interrupt_every = interrupt_every
        self.keep = keep
        self.shard_bytes = shard_bytes
        self.step = 0
        self.saves = 0
        self.completed: list[int] = []
        self.interrupted: list[int] = []
        self._task: asyncio.Task | None = None
        self.root.mkdir(parents=True, exist_ok=True)

    # --- one save, in the framework's order -----------------------------------------------------

    def _name(self, step: int) -> str:
        return {"dcp": f"step_{step}", "hf_trainer": f"checkpoint-{step}", "torch_save": f"model_step_{step}.pt"}[self.layout]

    def _parts(self, step: int) -> list[tuple[str, bytes]]:
        """(relative path, bytes) in write order; the last part is the commit."""
        d = self._name(step)
        blob = os.urandom(self.shard_bytes)
        if self.layout == "dcp":
            parts = [(f"{d}/__{r}_0.distcp", blob) for r in range(self.ranks)]
            return parts + [(f"{d}/.metadata", json.dumps({"step": step}).encode())]
        if self.layout == "hf_trainer":
            return [
                (f"{d}/model.safetensors", blob),
                (f"{d}/optimizer.pt", _zip_payload(step, self.shard_bytes)),
                (f"{d}/trainer_state.json", json.dumps({"global_step": step}).encode()),
            ]
        return [(d, _zip_payload(step, self.shard_bytes))]

    def _write(self, rel: str, data: bytes, mtime: float | None, cut: bool = False) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/.metadata"):
            # DCP's coordinator writes .metadata.tmp and renames it: the rename is the commit.
            tmp = path.with_name(".metadata.tmp")
            tmp.write_bytes(data)
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, path)
            return
        path.write_bytes(data[: len(data) // 2] if cut else data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))

    async def save(self, step: int | None = None, *, interrupt: bool = False, at: float | None = None) -> bool:
        """Write one checkpoint; with `interrupt` stop part-way (torn).  `at` backdates the
        files (history for the demo) and skips the pauses.  Returns True when committed."""
        self.step = step if step is not None else self.step + self.steps_per_save
        parts = self._parts(self.step)
        pause = 0.0 if at is not None else self.save_seconds / len(parts)
        for i, (rel, data) in enumerate(parts):
            last = i == len(parts) - 1
            if interrupt and (last or i >= max(1, len(parts) // 2)):
                if self.layout == "torch_save":  # torch.save writes in place: a truncated zip
                    self._write(rel, data, at, cut=True)
                self.interrupted.append(self.step)
                log.info("training sim: save of step %d interrupted", self.step)
                return False
            self._write(rel, data, None if at is None else at + i * 0.5)
            if pause:
                await asyncio.sleep(pause)
        self.completed.append(self.step)
        self._rotate()
        return True

    def _rotate(self) -> None:
        """Keep the newest `keep` checkpoints (complete or torn), like save_total_limit."""
        names = []
        for p in self.root.iterdir():
            digits = "".join(ch for ch in p.name if ch.isdigit())
            if digits:
                names.append((int(digits), p))
        for _, p in sorted(names)[: max(0, len(names) - self.keep)]:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    # --- schedule -------------------------------------------------------------------------------

    async def backfill(self, count: int = 2) -> None:
        """Complete checkpoints dated in the past, so the expected interval is known at once."""
        now = time.time()
        for i in range(count - 1, -1, -1):  # the newest one "just now": the schedule continues from it
            await self.save(at=now - i * self.interval - 1)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.saves += 1
            cut = bool(self.interrupt_every) and self.saves % self.interrupt_every == 0
            try:
                await self.save(interrupt=cut)
            except OSError:  # the temporary directory went away at shutdown
                log.debug("training sim: write failed", exc_info=True)

    def start(self) -> asyncio.Task:
        self._task = asyncio.create_task(self.run(), name=f"training-sim:{self.root.name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


async def attach(
    cluster: Any,
    *,
    interval: float = 20.0,
    save_seconds: float = 3.0,
    interrupt_every: int = 3,
    start: bool = True,
) -> list[TrainingJob]:
    """Add a DCP pre-training job (static store) and an HF Trainer fine-tuning job (discovered
    from its pod annotation with Kubernetes, static otherwise); both write into `cluster.tmpdir`."""
    base = Path(cluster.tmpdir) / "checkpoints"
    ckpt = cluster.config.setdefault("checkpoints", {})
    stores = ckpt.setdefault("stores", [])
    pretrain = TrainingJob(
        base / "llm-pretrain", layout="dcp", interval=interval, save_seconds=save_seconds,
        interrupt_every=interrupt_every,
    )
    stores.append({
        "name": "llm-pretrain",
        "uri": pretrain.root.resolve().as_uri(),
        "layout": "auto",
        "labels": {"namespace": "ml", "job": "llm-pretrain"},
    })
    finetune = TrainingJob(
        base / "finetune", layout="hf_trainer", interval=interval * 1.5, save_seconds=save_seconds,
        interrupt_every=interrupt_every + 1,
    )
    uri = finetune.root.resolve().as_uri()
    if getattr(cluster, "kubernetes", False):
        cluster.kube.add(make_pod(
            "ml", "finetune-0", owner=("Job", "finetune"),
            annotations={"ai-signals.io/checkpoint-uri": uri, "ai-signals.io/checkpoint-layout": "hf_trainer"},
        ))
    else:
        stores.append({
            "name": "ml/finetune", "uri": uri, "layout": "hf_trainer",
            "labels": {"namespace": "ml", "job": "finetune"},
        })
    jobs = [pretrain, finetune]
    for job in jobs:
        await job.backfill()
        if start:
            job.start()
            cluster.on_stop(job.stop)
    return jobs
