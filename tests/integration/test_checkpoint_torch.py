"""Real PyTorch (CPU build) writes the checkpoints: DCP and plain torch.save, complete and killed
with SIGKILL part-way.  The verdict must agree with whether PyTorch can load the result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ai_signals_exporter.checkpoints import detect
from ai_signals_exporter.checkpoints.layouts import sniff, zip_complete
from ai_signals_exporter.checkpoints.stores import LocalTree, scan

pytestmark = pytest.mark.torch

# Runs in a subprocess.  `hang` makes the save stop at a chosen stage and wait to be killed:
# DCP before the coordinator commits `.metadata` (all shards written), torch.save after the
# first MiB reached the file.
WRITER = r"""
import io, sys, time, warnings
warnings.simplefilter("ignore")
import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemWriter


def save(kind, path, step, hang):
    torch.manual_seed(step)
    state = {"model": {"w": torch.randn(512, 512), "b": torch.randn(512)}, "step": torch.tensor(step)}
    if kind == "dcp":
        writer = FileSystemWriter(path, overwrite=True)
        if hang:
            original = writer.finish
            def finish(metadata, results):
                print("COMMITTING", flush=True)
                time.sleep(120)
                return original(metadata, results)
            writer.finish = finish
        dcp.save(state, storage_writer=writer)
        return

    class Slow(io.FileIO):
        written = 0
        def write(self, b):
            n = super().write(b)
            Slow.written += n
            if hang and Slow.written > (1 << 20):
                print("COMMITTING", flush=True)
                time.sleep(120)
            return n

    with Slow(path, "wb") as f:
        torch.save(state, f)


if __name__ == "__main__":
    save(sys.argv[1], sys.argv[2], int(sys.argv[3]), True)
"""


def write(kind: str, path: Path, step: int, kill: bool) -> None:
    """A complete save runs here; a killed one in a subprocess, SIGKILLed at the hang point."""
    if not kill:
        ns: dict = {"__name__": "writer"}
        exec(WRITER, ns)
        ns["save"](kind, str(path), step, False)
        return
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, kind, str(path), str(step)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "COMMITTING"  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)  # eviction: no grace period, no cleanup
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL


async def verdict(root: Path, layout: str):
    listing = await scan(LocalTree(root.as_uri()), 10_000, 100)
    now = time.time()
    first = detect(listing, now, None, layout)
    return listing, detect(listing, now + 1, first, layout)


def loads_dcp(path: Path) -> bool:
    import torch
    import torch.distributed.checkpoint as dcp

    state = {"model": {"w": torch.zeros(512, 512), "b": torch.zeros(512)}, "step": torch.tensor(0)}
    try:
        dcp.load(state, checkpoint_id=str(path))
        return True
    except BaseException as exc:  # CheckpointException is not an Exception subclass
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return False


def loads_file(path: Path) -> bool:
    import torch

    try:
        torch.load(path, weights_only=True)
        return True
    except Exception:
        return False


async def test_dcp_killed_before_commit(tmp_path):
    write("dcp", tmp_path / "step_100", 100, kill=False)
    write("dcp", tmp_path / "step_200", 200, kill=True)
    assert (tmp_path / "step_200" / "__0_0.distcp").exists()
    assert not (tmp_path / "step_200" / ".metadata").exists()
    listing, v = await verdict(tmp_path, "dcp")
    assert sniff(listing) == "dcp"
    assert v.last_step == 100
    assert v.last_complete_ts == (tmp_path / "step_100" / ".metadata").stat().st_mtime
    assert v.in_progress and v.in_progress_keys == ("step_200",)
    assert loads_dcp(tmp_path / "step_100") and not loads_dcp(tmp_path / "step_200")


async def test_dcp_overwrite_in_place_killed(tmp_path):
    ckpt = tmp_path / "ckpt"
    write("dcp", ckpt, 100, kill=False)
    _, before = await verdict(tmp_path, "dcp")
    assert before.last_complete_ts is not None and not before.in_progress
    time.sleep(0.05)
    write("dcp", ckpt, 200, kill=True)  # new shards over the old ones; old .metadata still there
    assert (ckpt / ".metadata").exists()
    _, v = await verdict(tmp_path, "dcp")
    assert v.last_complete_ts is None  # the only checkpoint is torn: nothing complete on disk
    assert v.in_progress and v.in_progress_since > before.last_complete_ts


async def test_torch_save_killed_part_way(tmp_path):
    write("torch_save", tmp_path / "model_step_100.pt", 100, kill=False)
    write("torch_save", tmp_path / "model_step_200.pt", 200, kill=True)
    torn = tmp_path / "model_step_200.pt"
    assert torn.stat().st_size > (1 << 20)
    listing, v = await verdict(tmp_path, "torch_save")
    assert sniff(listing) == "torch_save"
    assert zip_complete(listing.tails["model_step_100.pt"])
    assert not zip_complete(listing.tails["model_step_200.pt"])
    assert v.last_step == 100
    assert v.last_complete_ts == (tmp_path / "model_step_100.pt").stat().st_mtime
    assert v.in_progress and v.in_progress_keys == ("model_step_200.pt",)
    assert loads_file(tmp_path / "model_step_100.pt") and not loads_file(torn)
