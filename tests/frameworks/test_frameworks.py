"""Real frameworks on CPU: train tiny models, cut saves off, judge the trees live.

Each case runs `writers.py` (a real training loop of the framework, SIGKILLed at a save or at a
rotation where asked), then points the real `CheckpointSource` at the tree it left and checks the
verdict against what the run did.  With `CAPTURE_CHECKPOINT_FIXTURES=1` the tree is also
captured into tests/fixtures/checkpoints/<framework>-<case>/, which the default suite replays
(tests/unit/test_checkpoint_replay.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.checkpoint_fixtures import FIXTURES, capture, judge, write_manifest

WRITERS = Path(__file__).with_name("writers.py")


@dataclass(frozen=True)
class Run:
    framework: str
    case: str
    args: tuple[str, ...]
    layout: str
    last_step: int | None
    in_progress: bool
    killed: bool
    dangling: bool = False
    ranks: int = 1  # > 1: launched by torchrun, gloo backend

    @property
    def id(self) -> str:
        return f"{self.framework}-{self.case}"


# Saves every 2 steps, 2 saves: steps 2 and 4.  keep 1 = rotation on the second save.
COMPLETE = ("--every", "2", "--saves", "2", "--keep", "1")
FIRST = ("--every", "2", "--saves", "2", "--kill", "save:1")
SECOND = ("--every", "2", "--saves", "2", "--kill", "save:2")
ROTATION = ("--every", "2", "--saves", "2", "--keep", "1", "--kill", "delete:1")

RUNS = [
    Run("hf_trainer", "complete", COMPLETE, "hf_trainer", 4, False, False),
    Run("hf_trainer", "cut-first-save", FIRST, "hf_trainer", None, True, True),
    Run("hf_trainer", "cut-save", SECOND, "hf_trainer", 2, True, True),
    Run("hf_trainer", "cut-rotation", ROTATION, "hf_trainer", 4, False, True),
    Run("hf_trainer", "2ranks-complete", COMPLETE, "hf_trainer", 4, False, False, ranks=2),
    Run("hf_trainer", "2ranks-cut-save", SECOND, "hf_trainer", 2, True, True, ranks=2),
    Run("hf_trainer", "deepspeed-zero2-2ranks-complete", (*COMPLETE, "--deepspeed", "2"), "hf_trainer", 4, False, False, ranks=2),
    Run("hf_trainer", "deepspeed-zero1-cut-save", (*SECOND, "--deepspeed", "1"), "hf_trainer", 2, True, True, ranks=1),
    Run("deepspeed", "zero2-2ranks-cut-first-save", (*FIRST, "--deepspeed", "2"), "deepspeed", None, True, True, ranks=2),
    Run("deepspeed", "complete", ("--every", "2", "--saves", "2"), "deepspeed", 4, False, False),
    Run("deepspeed", "zero2-complete", ("--every", "2", "--saves", "2", "--deepspeed", "2"), "deepspeed", 4, False, False),
    Run("deepspeed", "cut-first-save", FIRST, "deepspeed", None, True, True),
    Run("deepspeed", "cut-save", SECOND, "deepspeed", 2, True, True),
    # Lightning writes the whole file to a temp file in $TMPDIR and renames it: a torn save
    # leaves nothing in the store, so there is nothing in progress to see.
    Run("lightning", "complete", COMPLETE, "lightning", 4, False, False),
    Run("lightning", "cut-save", SECOND, "lightning", 2, False, True),
    # Lightning deletes the old top-k file before it moves the `last.ckpt` link: cut in between,
    # the link dangles (resuming from "last" would fail), while the new checkpoint is complete.
    Run("lightning", "cut-rotation", ROTATION, "lightning", 4, False, True, dangling=True),
    Run("orbax", "complete", COMPLETE, "orbax", 4, False, False),
    Run("orbax", "cut-first-save", FIRST, "orbax", None, True, True),
    Run("orbax", "cut-save", SECOND, "orbax", 2, True, True),
    # Orbax deletes an old step after the new one is finalized.  With more than one deletion
    # thread (its default from 4 cores up) the step directory's own files go first
    # (`_CHECKPOINT_METADATA`, `commit_success.txt`), leaving `default/` with its own
    # `commit_success.txt`; with one thread it is `shutil.rmtree`, cut after one file.
    Run("orbax", "cut-rotation", (*ROTATION, "--deletion-threads", "4"), "orbax", 4, False, True),
    Run("orbax", "cut-rotation-rmtree", (*ROTATION, "--deletion-threads", "1"), "orbax", 4, False, True),
    Run("composer", "complete", COMPLETE, "composer", 4, False, False),
    # Before the first `latest-rank0.pt` exists the file name alone says Composer.
    Run("composer", "cut-first-save", FIRST, "composer", None, True, True),
    Run("composer", "cut-save", SECOND, "composer", 2, True, True),
    Run("composer", "cut-rotation", ROTATION, "composer", 4, False, True),
    Run("nemo", "complete", COMPLETE, "nemo", 4, False, False),
    Run("nemo", "cut-first-save", FIRST, "nemo", None, True, True),
    # NeMo calls save_checkpoint twice per save (the numbered file, then its `last` twin):
    # the third call is the step-4 save.
    Run("nemo", "cut-save", ("--every", "2", "--saves", "2", "--kill", "save:3"), "nemo", 2, True, True),
    Run("nemo", "cut-rotation", ROTATION, "nemo", 4, False, True),
]


def interpreter(framework: str) -> str:
    """NeMo pins an older Lightning, Composer an older torch: each may have its own venv."""
    own = os.environ.get(f"FRAMEWORKS_PYTHON_{framework.upper()}")
    if own:
        return own
    return os.environ.get("FRAMEWORKS_PYTHON", sys.executable)


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
async def test_framework_verdicts(run: Run, tmp_path):
    out, tmpdir = tmp_path / "store", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "JAX_PLATFORMS": "cpu", "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONWARNINGS": "ignore"}
    launcher = [interpreter(run.framework)]
    if run.ranks > 1 or "--deepspeed" in run.args:  # DeepSpeed without torchrun's env looks for MPI
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={run.ranks}"]
    proc = subprocess.run(
        [*launcher, str(WRITERS), run.framework, str(out), *run.args],
        capture_output=True, text=True, env=env, timeout=600,
    )
    lines = [d for x in proc.stdout.splitlines() if (d := _json(x)) is not None]
    last = lines[-1] if lines else {}
    if run.killed:
        # Killed itself with SIGKILL; under torchrun the launcher reports the failed worker.
        assert proc.returncode in (-signal.SIGKILL, 1) and any("killed" in x for x in lines), proc.stderr[-3000:]
    else:
        assert proc.returncode == 0 and last.get("finished"), proc.stderr[-3000:]
    v = await judge(out)
    if run.last_step is None and not run.in_progress:
        assert v is not None and v.layout == "unknown"
    else:
        assert v is not None and v.layout == run.layout, v
        assert v.last_step == run.last_step, v
        assert v.in_progress is run.in_progress, v
        assert v.pointer_dangling is run.dangling, v
        if v.last_complete_ts is not None:
            assert v.last_complete_ts <= time.time()
    if os.environ.get("CAPTURE_CHECKPOINT_FIXTURES") == "1":
        version = next(x["version"] for x in lines if "version" in x)
        manifest = capture(
            out, framework=run.framework, case=run.case, layout=run.layout, produced_by=version,
            command=f"{' '.join(launcher[1:])} writers.py {run.framework} OUT {' '.join(run.args)}".strip(),
            expect={"last_step": run.last_step, "in_progress": run.in_progress, "dangling": run.dangling},
        )
        write_manifest(manifest, FIXTURES / run.id)


LIVE = ["hf_trainer", "deepspeed", "lightning", "orbax", "nemo", "composer"]


@pytest.mark.parametrize("framework", LIVE)
async def test_live_scans_while_training(framework, tmp_path):
    """Scan the store over and over while a run saves 5 times with rotation: the label never
    changes once set, the last complete step never goes back, and the end state is the last save."""
    from ai_signals_exporter.config import load_config_text
    from ai_signals_exporter.sources.checkpoints import CheckpointSource
    from ai_signals_exporter.state import AppState

    out, tmpdir = tmp_path / "store", tmp_path / "tmp"
    out.mkdir(), tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "JAX_PLATFORMS": "cpu", "DS_ACCELERATOR": "cpu",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"}
    launcher = [interpreter(framework)]
    if framework == "deepspeed":
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    proc = subprocess.Popen(
        [*launcher, str(WRITERS), framework, str(out), "--every", "2", "--saves", "5", "--keep", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    cfg = load_config_text(f"checkpoints:\n  stores:\n    - {{name: run, uri: 'file://{out}'}}\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    seen = []
    try:
        while proc.poll() is None:  # the condition: the run is still going
            await src.run_once()
            v = state.checkpoints["run"].verdict
            seen.append((v.layout, v.last_step))
    finally:
        proc.kill()
    assert proc.wait() == 0
    await src.run_once()
    await src.run_once()
    v = state.checkpoints["run"].verdict
    assert v.layout == framework and v.last_step == 10 and not v.in_progress
    labels = {lay for lay, _ in seen if lay != "unknown"}
    assert labels <= {framework}, seen
    steps = [s for _, s in seen if s is not None]
    assert steps == sorted(steps), seen


def _json(line: str) -> dict | None:
    """The writer's JSON lines; frameworks print dict reprs of their own."""
    try:
        d = json.loads(line)
    except ValueError:
        return None
    return d if isinstance(d, dict) else None
