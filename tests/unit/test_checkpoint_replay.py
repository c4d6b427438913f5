"""Checkpoint trees captured from real framework runs (tests/frameworks), replayed.

Every capture is recreated in tmp_path (small files verbatim, big files sparse, symlinks,
relative mtimes) and judged by the real `CheckpointSource`; the expected verdict is what the run
did (which save was cut off, and where), recorded in the manifest with the framework version.
CI covers every framework this way without installing any of them.
"""

from __future__ import annotations

import time

import pytest

from ai_signals_exporter.checkpoints.layouts import detect
from ai_signals_exporter.checkpoints.model import Entry, Listing
from ai_signals_exporter.checkpoints.stores import LocalTree, scan
from tests.helpers.checkpoint_fixtures import captures, judge, replay

CAPTURES = captures()
FRAMEWORKS = {"hf_trainer", "deepspeed", "lightning", "orbax", "nemo", "composer"}


def test_every_framework_is_captured_complete_and_cut():
    by_fw: dict[str, set[str]] = {}
    for cap in CAPTURES:
        by_fw.setdefault(cap.data["framework"], set()).add(cap.data["case"])
        assert cap.data["produced_by"].split()[0] in (
            "transformers", "deepspeed", "lightning", "orbax-checkpoint", "nemo-toolkit", "mosaicml"
        ), cap.id
        assert any(ch.isdigit() for ch in cap.data["produced_by"]), cap.id  # a version, not a name
    assert set(by_fw) >= FRAMEWORKS
    for fw, cases in by_fw.items():
        assert "complete" in cases and any(c.startswith("cut-") for c in cases), fw
    # Every framework that rotates its own checkpoints (the DeepSpeed engine does not) is also
    # captured cut during a deletion.
    for fw in FRAMEWORKS - {"deepspeed"}:
        assert "cut-rotation" in by_fw[fw], fw


@pytest.mark.parametrize("cap", CAPTURES, ids=[c.id for c in CAPTURES])
async def test_replayed_tree(cap, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    base = time.time() - 10_000  # far enough back that the replay's own ctimes do not count
    replay(cap, root, base)
    v = await judge(root)
    want = cap.expect
    if want["last_step"] is None and not want["in_progress"]:
        assert v.layout == "unknown"
        return
    assert v.layout == cap.data["layout"]
    assert v.last_step == want["last_step"]
    assert v.in_progress is want["in_progress"]
    assert v.pointer_dangling is want["dangling"]
    if v.last_complete_ts is not None:
        assert base - 600 < v.last_complete_ts <= base  # a commit marker's time, not the scan's
    # The configured layout gives the same verdict.
    fixed = await judge(root, cap.data["layout"])
    assert (fixed.last_step, fixed.in_progress) == (v.last_step, v.in_progress)


@pytest.mark.parametrize(
    "cap", [c for c in CAPTURES if c.data["layout"] == "lightning"], ids=lambda c: c.id
)
def test_lightning_capture_commit_time_is_the_recorded_rename(cap):
    """The ctimes recorded with the run (a replay cannot set them) date Lightning's checkpoints."""
    base = 1_700_000_000.0
    entries = [
        Entry(r["path"], r["size"], base + r["mtime"], ctime=base + r["ctime"])
        for r in cap.data["entries"] if "link" not in r
    ]
    v = detect(Listing(entries), base + 60, None, "lightning")
    newest = max((e for e in entries if e.path.endswith(".ckpt")), key=lambda e: e.mtime)
    assert v.last_complete_ts == pytest.approx(max(newest.mtime, newest.ctime))


ORBAX_ROTATIONS = [c for c in CAPTURES if c.data["layout"] == "orbax" and c.data["case"].startswith("cut-rotation")]


@pytest.mark.parametrize("scheme", ["file", "gs", "s3", "az"])
@pytest.mark.parametrize("cap", ORBAX_ROTATIONS, ids=lambda c: c.id)
async def test_orbax_half_deleted_step_is_no_save(cap, scheme, tmp_path):
    """Orbax killed while deleting step 2 leaves it without the markers it had (the parallel
    deleter unlinks the step directory's own files first): on every store kind the newest step
    stays the last complete one, and the half-deleted step is neither a save nor a torn store."""
    replay(cap, tmp_path, time.time() - 10_000)
    listing = await scan(LocalTree(f"file://{tmp_path}"), max_objects=10_000, page_size=100)
    old = {p.split("/", 1)[1] for p in listing.entries if p.startswith("2/")}
    new = {p.split("/", 1)[1] for p in listing.entries if p.startswith("4/")}
    assert "_CHECKPOINT_METADATA" in new and "_CHECKPOINT_METADATA" not in old  # cut mid-delete
    assert "default/commit_success.txt" in old  # the item's own marker outlives the step's
    v = detect(listing, time.time(), None, "auto", scheme=scheme)
    assert (v.layout, v.last_step, v.last_complete_key) == ("orbax", 4, "4"), v
    assert not v.in_progress and not v.in_progress_keys and not v.pointer_dangling, v
