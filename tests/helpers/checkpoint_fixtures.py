"""Checkpoint trees captured from real framework runs, and their replay.

A capture is `tests/fixtures/checkpoints/<framework>-<case>/manifest.json`:

    {"framework": "hf_trainer", "case": "cut-save", "layout": "hf_trainer",
     "produced_by": "transformers 5.24.0, torch 2.13.0+cpu",   # versions that wrote the tree
     "command": "writers.py hf_trainer OUT --every 2 --saves 2 --kill save:2",
     "expect": {"last_step": 2, "in_progress": true, "dangling": false},
     "entries": [{"path": "checkpoint-2/trainer_state.json", "size": 1234,
                  "mtime": -3.2, "ctime": -3.2,      # seconds relative to the newest mtime
                  "text": "..." | "b64": "..." |     # small files verbatim
                  "head": "<b64>", "tail": "<b64>",  # big files: first and last bytes
                  "link": "epoch=0-step=4.ckpt"}]}   # symlinks: the relative target

`replay` recreates a capture under a directory: small files byte for byte, big files sparse
(head and tail in place, a hole between), symlinks as symlinks, and mtimes relative to a
chosen base.  Times written *inside* files move with them: the `*_timestamp_nsecs` fields of
Orbax's `_CHECKPOINT_METADATA` are shifted by the same amount (`newest_mtime` is the capture's
absolute newest mtime).  ctimes cannot be set; tests read the recorded ones from the manifest.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
SMALL = 4096  # files up to this size are kept whole
EDGE = 512  # bytes kept from each end of a bigger file (zip tails, safetensors headers)


@dataclass
class Capture:
    dir: Path
    data: dict

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def expect(self) -> dict:
        return self.data["expect"]


def captures() -> list[Capture]:
    """Every committed capture.  An empty fixture folder is an error, not a skip."""
    out = [Capture(p.parent, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*/manifest.json"))]
    if not out:
        raise FileNotFoundError(f"no captured checkpoint trees under {FIXTURES}")
    return out


def capture(root: Path, *, framework: str, case: str, layout: str, produced_by: str,
            command: str, expect: dict) -> dict:
    """The manifest of the tree under `root`."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            st = os.lstat(full)
            row: dict = {"path": rel, "size": st.st_size, "mtime": st.st_mtime, "ctime": st.st_ctime}
            if os.path.islink(full):
                row["link"] = os.readlink(full)
            else:
                raw = open(full, "rb").read(SMALL + 1)
                if st.st_size <= SMALL:
                    try:
                        row["text"] = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        row["b64"] = base64.b64encode(raw).decode()
                else:
                    with open(full, "rb") as f:
                        head = f.read(EDGE)
                        f.seek(st.st_size - EDGE)
                        tail = f.read(EDGE)
                    row["head"], row["tail"] = base64.b64encode(head).decode(), base64.b64encode(tail).decode()
            rows.append(row)
    newest = max((r["mtime"] for r in rows), default=0.0)
    for r in rows:
        r["mtime"] = round(r["mtime"] - newest, 6)
        r["ctime"] = round(r["ctime"] - newest, 6)
    return {
        "framework": framework, "case": case, "layout": layout, "produced_by": produced_by,
        "command": command, "expect": expect, "newest_mtime": newest, "entries": rows,
    }


def replay(cap: Capture, root: Path, base: float) -> None:
    """Recreate the captured tree under `root`, its newest mtime at `base`."""
    links = []
    for r in cap.data["entries"]:
        full = root / r["path"]
        full.parent.mkdir(parents=True, exist_ok=True)
        if "link" in r:
            links.append((full, r))
            continue
        with open(full, "wb") as f:
            if "text" in r:
                f.write(_shift_times(r, base - cap.data["newest_mtime"]).encode("utf-8"))
            elif "b64" in r:
                f.write(base64.b64decode(r["b64"]))
            else:
                f.write(base64.b64decode(r["head"]))
                tail = base64.b64decode(r["tail"])
                f.seek(r["size"] - len(tail))
                f.write(tail)
            f.truncate(r["size"])
        os.utime(full, (base + r["mtime"], base + r["mtime"]))
    for full, r in links:
        os.symlink(r["link"], full)
        os.utime(full, (base + r["mtime"], base + r["mtime"]), follow_symlinks=False)


def _shift_times(row: dict, by: float) -> str:
    """Orbax records its init and commit times in `_CHECKPOINT_METADATA`: keep them in step
    with the replayed mtimes."""
    if not row["path"].endswith("_CHECKPOINT_METADATA"):
        return row["text"]
    data = json.loads(row["text"])
    for k, v in data.items():
        if k.endswith("_timestamp_nsecs") and isinstance(v, int):
            data[k] = v + int(by * 1e9)
    return json.dumps(data)


def write_manifest(manifest: dict, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


async def judge(root: Path, layout: str = "auto"):
    """The verdict the real `CheckpointSource` gives a store at `root` (two scans: plain
    torch.save files want two equal ones)."""
    from ai_signals_exporter.config import load_config_text
    from ai_signals_exporter.sources.checkpoints import CheckpointSource
    from ai_signals_exporter.state import AppState

    cfg = load_config_text(
        f"checkpoints:\n  stores:\n    - {{name: run, uri: 'file://{root}', layout: {layout}}}\n"
    )
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    await src.run_once()
    return state.checkpoints["run"].verdict
