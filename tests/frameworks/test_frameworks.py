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
    Run("deepspeed", "complete", ("--every", "2", "--saves", "2"), "deepspeed", 4, False, False),
    Run("deepspeed", "zero2-complete", ("--every", "2", "--saves", "2", "--deepspeed", "2"), "deepspeed", 4, False, False),
    Run("deepspeed", "cut-first-save", FIRST, "deepspeed", None, True, True),
    Run("deepspeed", "cut-save", SECOND, "deepspeed", 2, True, True),
    # Lightning writes the whole file to a temp file in $TMPDIR and renames it: a torn save
    # leaves nothing in the store, so there is nothing in progress to see.
    Run("lightning", "complete", COMPLETE, "lightning", 4, False, False),
    Run("lightning", "cut-save", SECOND, "lightning", 2, False, True),
    Run("lightning", "cut-rotation", ROTATION, "lightning", 4, False, True),
    Run("orbax", "complete", COMPLETE, "orbax", 4, False, False),
    Run("orbax", "cut-first-save", FIRST, "orbax", None, True, True),
    Run("orbax", "cut-save", SECOND, "orbax", 2, True, True),
    Run("nemo", "complete", COMPLETE, "nemo", 4, False, False),
    Run("nemo", "cut-first-save", FIRST, "nemo", None, True, True),
    Run("nemo", "cut-save", SECOND, "nemo", 2, True, True),
    Run("nemo", "cut-rotation", ROTATION, "nemo", 4, False, True),
]


def interpreter(framework: str) -> str:
    if framework == "nemo" and os.environ.get("FRAMEWORKS_PYTHON_NEMO"):
        return os.environ["FRAMEWORKS_PYTHON_NEMO"]
    return os.environ.get("FRAMEWORKS_PYTHON", sys.executable)


@pytest.mark.parametrize("run", RUNS, ids=[r.id for r in RUNS])
async def test_framework_verdicts(run: Run, tmp_path):
    out, tmpdir = tmp_path / "store", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "TMPDIR": str(tmpdir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "JAX_PLATFORMS": "cpu", "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [interpreter(run.framework), str(WRITERS), run.framework, str(out), *run.args],
        capture_output=True, text=True, env=env, timeout=600,
    )
    last = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if run.killed:
        assert proc.returncode == -signal.SIGKILL and "killed" in last, proc.stderr[-3000:]
    else:
        assert proc.returncode == 0 and last.get("finished"), proc.stderr[-3000:]
    v = await judge(out)
    if run.last_step is None and not run.in_progress:
        assert v is not None and v.layout == "unknown"
    else:
        assert v is not None and v.layout == run.layout, v
        assert v.last_step == run.last_step, v
        assert v.in_progress is run.in_progress, v
        assert not v.pointer_dangling, v
        if v.last_complete_ts is not None:
            assert v.last_complete_ts <= time.time()
    if os.environ.get("CAPTURE_CHECKPOINT_FIXTURES") == "1":
        version = last.get("version") or _version(run.framework)
        manifest = capture(
            out, framework=run.framework, case=run.case, layout=run.layout, produced_by=version,
            command=f"writers.py {run.framework} OUT {' '.join(run.args)}",
            expect={"last_step": run.last_step, "in_progress": run.in_progress, "dangling": False},
        )
        write_manifest(manifest, FIXTURES / run.id)


def _version(framework: str) -> str:
    """For killed runs (no summary line): ask the interpreter that ran the writer."""
    mod = {"hf_trainer": "transformers", "deepspeed": "deepspeed", "lightning": "lightning",
           "orbax": "orbax.checkpoint", "nemo": "nemo"}[framework]
    code = f"import {mod} as m, torch; print('{mod}', m.__version__ + ',', 'torch', torch.__version__)"
    if framework == "orbax":
        code = "import orbax.checkpoint as m, jax; print('orbax-checkpoint', m.__version__ + ',', 'jax', jax.__version__)"
    return subprocess.run([interpreter(framework), "-c", code], capture_output=True, text=True).stdout.strip()
