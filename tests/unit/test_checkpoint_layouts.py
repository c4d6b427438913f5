"""Layout rules on fixture trees: every layout complete, interrupted, overwritten, dangling."""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from ai_signals_exporter.checkpoints import Entry, Listing, detect, learned_interval, plan_reads
from ai_signals_exporter.checkpoints.layouts import sniff, zip_complete
from ai_signals_exporter.checkpoints.model import merge_history
from ai_signals_exporter.checkpoints.stores import LocalTree, ScanError, scan
from tests.helpers.checkpoint_trees import CASES, Case, build, torn_zip, zip_bytes


async def _listing(root) -> Listing:
    return await scan(LocalTree(f"file://{root}"), max_objects=10_000, page_size=100)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_layout_case(case: Case, tmp_path):
    base = time.time() - 10_000
    tree = build(case, tmp_path, base)
    listing = await _listing(tmp_path)
    now = time.time()
    first = detect(listing, now, None, case.layout)
    v = detect(listing, now + 1, first, case.layout)  # second scan: torch.save needs two
    assert v.layout == case.layout
    assert v.last_step == case.step
    if case.marker_ts is not None:
        expected_ts = case.marker_ts(tree)
    else:
        expected_ts = listing.entries[case.marker].mtime if case.marker else None
    assert v.last_complete_ts == pytest.approx(expected_ts, abs=1e-3)
    assert v.in_progress is case.in_progress
    if case.in_progress:
        assert v.in_progress_since == pytest.approx(tree.t(case.since), abs=1e-3)
    assert v.pointer_dangling is case.dangling
    assert v.size_bytes and v.size_bytes > 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_auto_detects_layout(case: Case, tmp_path):
    build(case, tmp_path, time.time() - 10_000)
    listing = await _listing(tmp_path)
    assert sniff(listing) == (case.sniffs_as or case.layout)
    v = detect(listing, time.time(), None, "auto")
    assert v.layout == (case.sniffs_as or case.layout)


async def test_age_from_marker_not_directory_mtime(tmp_path):
    # Rotation deletes an old checkpoint and touches the parent directory; the age must not move.
    case = next(c for c in CASES if c.id == "hf_trainer-complete")
    tree = build(case, tmp_path, time.time() - 5000)
    os.utime(tmp_path / "checkpoint-200")  # directory mtime = now
    os.utime(tmp_path)
    v = detect(await _listing(tmp_path), time.time(), None, "hf_trainer")
    assert v.last_complete_ts == pytest.approx(tree.t(3), abs=1e-3)


def test_fresh_torch_save_needs_two_equal_scans():
    now = 1_000_000.0
    e = Entry("model_step_5.pt", 1000, now - 5)
    listing = Listing([e], tails={e.path: zip_bytes()})
    first = detect(listing, now, None, "torch_save")
    assert first.last_complete_ts is None and first.in_progress
    second = detect(listing, now + 15, first, "torch_save")
    assert second.last_complete_ts == e.mtime and not second.in_progress
    # Grew between scans: still being written.
    grown = Entry("model_step_5.pt", 2000, now + 10)
    third = detect(Listing([grown], tails={e.path: zip_bytes()}), now + 30, first, "torch_save")
    assert third.last_complete_ts is None and third.in_progress
    assert third.in_progress_since == first.in_progress_since  # the save started no later than first seen


def test_old_torch_save_trusted_on_first_scan_but_not_torn():
    now = 1_000_000.0
    ok = Entry("a_1.pt", 1000, now - 3600)
    torn = Entry("a_2.pt", 1000, now - 3000)
    v = detect(Listing([ok, torn], tails={ok.path: zip_bytes(), torn.path: torn_zip()}), now, None, "torch_save")
    assert v.last_step == 1 and v.in_progress and v.in_progress_since == torn.mtime


def test_zip_tail_check():
    assert zip_complete(zip_bytes()[-256:])
    assert not zip_complete(torn_zip()[-256:])
    assert not zip_complete(b"")
    assert not zip_complete(zip_bytes()[-256:-1])


def test_orbax_on_gcs_requires_commit_file():
    meta = json.dumps({"init_timestamp_nsecs": 10**18}).encode()
    entries = [
        Entry("100/_CHECKPOINT_METADATA", 10, 1000.0), Entry("100/commit_success.txt", 1, 1010.0),
        Entry("200/_CHECKPOINT_METADATA", 10, 2000.0), Entry("200/default/x", 10, 1990.0),
    ]
    listing = Listing(entries, contents={"200/_CHECKPOINT_METADATA": meta})
    gcs = detect(listing, 3000.0, None, "orbax", scheme="gs")
    assert gcs.last_step == 100 and gcs.last_complete_ts == 1010.0 and gcs.in_progress
    assert gcs.in_progress_since == 1e9
    posix = detect(listing, 3000.0, None, "orbax", scheme="file")
    assert posix.last_step == 200 and not posix.in_progress


def test_orbax_on_s3_requires_commit_time():
    meta = json.dumps({"init_timestamp_nsecs": 1_500 * 10**9}).encode()
    entries = [Entry("7/_CHECKPOINT_METADATA", 10, 1600.0), Entry("7/d/x", 10, 1550.0)]
    v = detect(Listing(entries, contents={"7/_CHECKPOINT_METADATA": meta}), 2000.0, None, "orbax", scheme="s3")
    assert v.last_complete_ts is None and v.in_progress and v.in_progress_since == 1500.0


@pytest.mark.parametrize("scheme", ["file", "gs", "s3", "az"])
@pytest.mark.parametrize("left", [
    ("_CHECKPOINT_METADATA", "default/_METADATA"),  # commit_success.txt deleted first
    ("commit_success.txt", "default/commit_success.txt"),  # the metadata deleted first
    ("default/commit_success.txt",),  # the parallel deleter's first node: both root files
    ("default/manifest.ocdbt",),
])
def test_orbax_half_deleted_old_step_is_no_save(left, scheme):
    """Orbax deletes an old step file by file (on GCS in listing or batch order, locally by its
    parallel deleter): whatever is left of it, the newer step stays last and nothing is saving."""
    meta = json.dumps({"init_timestamp_nsecs": 900 * 10**9, "commit_timestamp_nsecs": 950 * 10**9}).encode()
    new_meta = json.dumps({"init_timestamp_nsecs": 1900 * 10**9, "commit_timestamp_nsecs": 1950 * 10**9}).encode()
    entries = [Entry(f"2/{name}", 10, 950.0) for name in left] + [
        Entry("4/_CHECKPOINT_METADATA", 10, 1950.0), Entry("4/commit_success.txt", 1, 1951.0),
        Entry("4/default/commit_success.txt", 1, 1949.0), Entry("4/default/manifest.ocdbt", 10, 1948.0),
    ]
    contents = {"4/_CHECKPOINT_METADATA": new_meta}
    if "_CHECKPOINT_METADATA" in left:
        contents["2/_CHECKPOINT_METADATA"] = meta
    v = detect(Listing(entries, contents=contents), 3000.0, None, "auto", scheme=scheme)
    assert (v.layout, v.last_step, v.last_complete_ts) == ("orbax", 4, 1950.0), v
    assert not v.in_progress and not v.pointer_dangling, v


def test_orbax_step_moved_to_todelete_subdir_is_no_newer_save():
    """`CheckpointManagerOptions(todelete_subdir="trash")` renames an old step to
    `trash/<step>/` (one rename, no partial tree): still an old complete step, never the last."""
    entries = [
        Entry("trash/2/_CHECKPOINT_METADATA", 10, 950.0), Entry("trash/2/commit_success.txt", 1, 951.0),
        Entry("4/_CHECKPOINT_METADATA", 10, 1950.0), Entry("4/commit_success.txt", 1, 1951.0),
    ]
    v = detect(Listing(entries), 3000.0, None, "auto")
    assert (v.layout, v.last_step, v.last_complete_key, v.in_progress) == ("orbax", 4, "4", False), v


def test_history_and_learned_interval():
    assert learned_interval(()) is None
    assert learned_interval((100.0,)) is None
    # One missed save must not teach that a double gap is normal.
    assert learned_interval((0.0, 600.0, 1200.0, 2400.0, 3000.0)) == 600.0
    assert merge_history((100.0, 200.0), (200.4, 300.0)) == (100.0, 200.4, 300.0)
    assert len(merge_history(range(0, 100_000, 10), ())) == 16


def test_history_accumulates_across_scans_after_rotation():
    def listing(steps):
        return Listing([Entry(f"step_{s}/.metadata", 1, float(s)) for s in steps]
                       + [Entry(f"step_{s}/__0_0.distcp", 1, s - 1.0) for s in steps])

    v1 = detect(listing([600, 1200]), 1300.0, None, "dcp")
    v2 = detect(listing([1200, 1800]), 1900.0, v1, "dcp")  # step 600 rotated away
    assert v2.complete_history_ts == (600.0, 1200.0, 1800.0)
    assert learned_interval(v2.complete_history_ts) == 600.0


def test_plan_reads_is_bounded_and_newest_first():
    entries = [Entry(f"global_step{i}/latest", 10, float(i)) for i in range(100)]
    entries += [Entry(f"m_{i}.pt", 10_000, float(i)) for i in range(100)]
    entries += [Entry("huge/latest", 10**9, 1e9)]
    full, tails = plan_reads(entries, max_contents=5, max_tails=3)
    assert full == [f"global_step{i}/latest" for i in (99, 98, 97, 96, 95)]
    assert tails == ["m_99.pt", "m_98.pt", "m_97.pt"]


def test_unknown_store_is_empty():
    v = detect(Listing([Entry("README.md", 10, 1.0)]), 10.0, None, "auto")
    assert v.layout == "unknown" and v.last_complete_ts is None and not v.in_progress


async def test_local_scan_bounded_and_missing_root(tmp_path):
    for i in range(30):
        (tmp_path / f"f{i}").write_bytes(b"x")
    with pytest.raises(ScanError) as exc:
        await scan(LocalTree(f"file://{tmp_path}"), max_objects=10, page_size=5)
    assert exc.value.reason == "too_large"
    with pytest.raises(ScanError) as exc:
        await scan(LocalTree(f"file://{tmp_path}/nope"), max_objects=10, page_size=5)
    assert exc.value.reason == "storage"


async def test_symlink_entries(tmp_path):
    (tmp_path / "a.ckpt").write_bytes(zip_bytes())
    (tmp_path / "last.ckpt").symlink_to("a.ckpt")
    (tmp_path / "gone.ckpt").symlink_to("missing.ckpt")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "abs").symlink_to(tmp_path / "a.ckpt")
    listing = await _listing(tmp_path)
    assert listing.entries["last.ckpt"].link == "a.ckpt"
    assert listing.entries["last.ckpt"].size == len(zip_bytes())
    assert listing.entries["d/abs"].link == "a.ckpt"
    assert listing.entries["gone.ckpt"].size == 0
    assert "last.ckpt" in listing.tails and zip_complete(listing.tails["last.ckpt"])


def _files(spec: dict[str, float], contents: dict[str, bytes] | None = None) -> Listing:
    return Listing([Entry(p, 100, m) for p, m in spec.items()], contents=contents)


def test_hf_trainer_with_deepspeed_inside():
    files = {
        "checkpoint-10/global_step10/mp_rank_00_model_states.pt": 1.0,
        "checkpoint-10/latest": 2.0, "checkpoint-10/trainer_state.json": 3.0,
        "checkpoint-20/global_step20/zero_pp_rank_0_mp_rank_00_optim_states.pt": 11.0,  # model states missing
        "checkpoint-20/latest": 12.0, "checkpoint-20/trainer_state.json": 13.0,
    }
    contents = {"checkpoint-10/latest": b"global_step10", "checkpoint-20/latest": b"global_step20\n"}
    v = detect(_files(files, contents), 100.0, None, "auto")
    assert v.layout == "hf_trainer" and v.last_step == 10 and v.last_complete_ts == 3.0
    assert v.in_progress and v.in_progress_keys == ("checkpoint-20",)


def test_lightning_deepspeed_directory_checkpoint():
    files = {
        "epoch=0-step=50.ckpt/checkpoint/mp_rank_00_model_states.pt": 1.0,
        "epoch=0-step=50.ckpt/latest": 2.0,
        "epoch=1-step=100.ckpt/checkpoint/zero_pp_rank_0_mp_rank_00_optim_states.pt": 5.0,
        "epoch=1-step=100.ckpt/latest": 6.0,
    }
    contents = {"epoch=0-step=50.ckpt/latest": b"checkpoint", "epoch=1-step=100.ckpt/latest": b"checkpoint"}
    v = detect(_files(files, contents), 100.0, None, "auto")
    assert v.layout == "lightning" and v.last_step == 50 and v.last_complete_ts == 2.0
    assert v.in_progress and v.in_progress_since == 5.0


def test_nemo2_directory_checkpoints_with_marker():
    d1 = "ckpt/model--reduced_train_loss=1.0-step=99-consumed_samples=800.0"
    d2 = "ckpt/model--reduced_train_loss=0.9-step=199-consumed_samples=1600.0"
    files = {
        f"{d1}/weights/.metadata": 3.0, f"{d1}/weights/__0_0.distcp": 2.0, f"{d1}/context/model.yaml": 4.0,
        f"{d2}/weights/__0_0.distcp": 12.0, f"{d2}-unfinished": 10.0,
    }
    v = detect(_files(files), 100.0, None, "auto")
    assert v.layout == "nemo" and v.last_step == 99 and v.last_complete_ts == 3.0  # weights/.metadata
    assert v.in_progress and v.in_progress_since == 10.0
    # The marker goes away once the save finished: complete, and the layout stays nemo.
    del files[f"{d2}-unfinished"]
    files[f"{d2}/weights/.metadata"] = 13.0
    v2 = detect(_files(files), 100.0, v, "auto")
    assert v2.layout == "nemo" and v2.last_step == 199 and not v2.in_progress


def test_megatron_release_tracker():
    files = {"release/mp_rank_00/model_optim_rng.pt": 1.0, "latest_checkpointed_iteration.txt": 2.0}
    v = detect(_files(files, {"latest_checkpointed_iteration.txt": b"release"}), 10.0, None, "auto")
    assert v.layout == "megatron" and v.last_complete_ts == 2.0 and not v.pointer_dangling


def test_hf_trainer_rng_state_after_trainer_state_is_complete():
    # transformers <= 4.35 saved rng_state*.pth *after* trainer_state.json, and with several
    # processes each rank writes its own rng_state_<rank>.pth without a barrier.  Neither is an
    # in-place overwrite: the checkpoint is complete.
    files = {
        "checkpoint-100/model.safetensors": 1.0, "checkpoint-100/optimizer.pt": 2.0,
        "checkpoint-100/trainer_state.json": 3.0, "checkpoint-100/rng_state.pth": 3.2,
        "checkpoint-200/model.safetensors": 11.0, "checkpoint-200/optimizer.pt": 12.0,
        "checkpoint-200/trainer_state.json": 13.0, "checkpoint-200/rng_state_0.pth": 13.1,
        "checkpoint-200/rng_state_1.pth": 14.5,
    }
    v = detect(_files(files), 100.0, None, "auto")
    assert v.layout == "hf_trainer" and v.last_step == 200 and v.last_complete_ts == 13.0
    assert not v.in_progress
    # A resumed run overwriting the same folder still makes it torn.
    files["checkpoint-200/model.safetensors"] = 50.0
    v = detect(_files(files), 100.0, None, "auto")
    assert v.last_step == 100 and v.in_progress and v.in_progress_since == 50.0


def test_history_counts_a_pointer_checkpoint_once_after_it_is_superseded():
    # DeepSpeed/Megatron: the current checkpoint's time is the pointer's mtime; once superseded it
    # has no marker and its newest file stands in.  The same checkpoint must not enter the
    # history twice (gaps of a few seconds would make the learned interval tiny).
    def ds(steps: list[int]) -> Listing:
        es = []
        for s in steps:
            es.append(Entry(f"global_step{s}/mp_rank_00_model_states.pt", 100, float(s)))
            es.append(Entry(f"global_step{s}/zero_pp_rank_0_mp_rank_00_optim_states.pt", 100, float(s)))
        es.append(Entry("latest", 10, steps[-1] + 5.0))
        return Listing(es, contents={"latest": f"global_step{steps[-1]}".encode()})

    v = None
    for k in range(1, 8):
        steps = [600 * i for i in range(max(1, k - 2), k + 1)]
        v = detect(ds(steps), steps[-1] + 30.0, v, "deepspeed")
        gaps = [b - a for a, b in zip(v.complete_history_ts, v.complete_history_ts[1:])]
        assert all(g > 500 for g in gaps), v.complete_history_ts
        if k >= 2:
            assert learned_interval(v.complete_history_ts) == pytest.approx(600.0, abs=5.0)

    def megatron(iters: list[int]) -> Listing:
        es = [Entry(f"iter_{i:07d}/mp_rank_00/model_optim_rng.pt", 100, float(i)) for i in iters]
        es.append(Entry("latest_checkpointed_iteration.txt", 4, iters[-1] + 20.0))
        return Listing(es, contents={"latest_checkpointed_iteration.txt": str(iters[-1]).encode()})

    v = None
    for k in range(1, 6):
        v = detect(megatron([1000 * i for i in range(1, k + 1)]), k * 1000 + 60.0, v, "megatron")
    assert learned_interval(v.complete_history_ts) == pytest.approx(1000.0, abs=20.0)
    assert len(v.complete_history_ts) == 5


def test_history_survives_an_in_place_save_and_grows_with_it():
    # One model.pt rewritten by every save: the same key, a new commit time each time; while it
    # is being rewritten there is no complete checkpoint, and the history must not be lost.
    def one(size: int, mtime: float, ok: bool = True) -> Listing:
        e = Entry("model.pt", size, mtime)
        return Listing([e], tails={e.path: zip_bytes() if ok else torn_zip()})

    v = detect(one(10, 0.0), 1000.0, None, "torch_save")
    v = detect(one(10, 1200.0), 1300.0, v, "torch_save")  # rewritten: needs a second look
    v = detect(one(10, 1200.0), 1360.0, v, "torch_save")
    v = detect(one(5, 2400.0, ok=False), 2410.0, v, "torch_save")  # being rewritten
    assert v.last_complete_ts is None and v.complete_history_ts == (0.0, 1200.0)
    v = detect(one(10, 2420.0), 2480.0, v, "torch_save")
    v = detect(one(10, 2420.0), 2540.0, v, "torch_save")
    assert v.complete_history_ts == (0.0, 1200.0, 2420.0)


def test_lightning_deepspeed_directory_without_latest_is_in_progress():
    # DeepSpeed writes the `latest` tag file after the rank files: a `.ckpt` directory with
    # DeepSpeed states and no `latest` yet is a save in progress, not a complete checkpoint.
    files = {
        "epoch=0-step=50.ckpt/checkpoint/mp_rank_00_model_states.pt": 1.0,
        "epoch=0-step=50.ckpt/checkpoint/zero_pp_rank_0_mp_rank_00_optim_states.pt": 1.5,
        "epoch=0-step=50.ckpt/latest": 2.0,
        "epoch=1-step=100.ckpt/checkpoint/mp_rank_00_model_states.pt": 5.0,
        "epoch=1-step=100.ckpt/checkpoint/zero_pp_rank_0_mp_rank_00_optim_states.pt": 6.0,
    }
    contents = {"epoch=0-step=50.ckpt/latest": b"checkpoint"}
    v = detect(_files(files, contents), 100.0, None, "auto")
    assert v.layout == "lightning" and v.last_step == 50 and v.last_complete_ts == 2.0
    assert v.in_progress and v.in_progress_since == 5.0


def test_history_counts_a_last_copy_once():
    # Lightning `save_last=True` writes last.ckpt as a second full save right after the numbered
    # one, NeMo a `-last` twin with the same step: the same state, so one entry in the history,
    # or the learned interval becomes the duration of one save.
    interval, save = 600.0, 40.0
    lightning = nemo = None
    for k in range(1, 8):
        t = k * interval
        lightning = detect(
            Listing([Entry(f"epoch={k}-step={k * 100}.ckpt", 100, t), Entry("last.ckpt", 100, t + save)]),
            t + save + 10, lightning, "lightning",
        )
        stem = f"ckpt/model--val_loss=0.5-step={k * 100}-epoch={k}"
        nemo = detect(
            Listing([Entry(f"{stem}.ckpt", 100, t), Entry(f"{stem}-last.ckpt", 100, t + save)]),
            t + save + 10, nemo, "nemo",
        )
        assert lightning.last_step == k * 100 and lightning.last_complete_ts == t + save
        assert nemo.last_step == k * 100
        if k >= 2:
            assert learned_interval(lightning.complete_history_ts) == interval
            assert learned_interval(nemo.complete_history_ts) == interval


def test_latest_pointer_alone_does_not_make_deepspeed():
    # A `latest` file or symlink is common outside DeepSpeed (e.g. `latest -> step200/` next to
    # DCP step directories); judged as DeepSpeed the store had no complete checkpoint at all.
    files = {
        "step100/model/.metadata": 3.0, "step100/model/__0_0.distcp": 2.0,
        "step200/model/.metadata": 13.0, "step200/model/__0_0.distcp": 12.0,
    }
    entries = [Entry(p, 100, m) for p, m in files.items()] + [Entry("latest", 0, 13.0, link="step200")]
    listing = Listing(entries)
    assert sniff(listing) == "dcp"
    v = detect(listing, 100.0, None, "auto")
    assert v.layout == "dcp" and v.last_complete_ts == 13.0 and not v.in_progress
    # DeepSpeed itself is still recognised by its rank files, with or without global_step names.
    ds = _files({"checkpoint/mp_rank_00_model_states.pt": 1.0, "latest": 2.0}, {"latest": b"checkpoint"})
    assert sniff(ds) == "deepspeed"
    assert detect(ds, 10.0, None, "auto").last_complete_ts == 2.0


def test_megatron_iterations_past_ten_million():
    # Megatron names iterations `iter_{:07d}`: at 10,000,000 and beyond they have 8 digits.
    files = {
        "iter_9999999/mp_rank_00/model_optim_rng.pt": 1.0,
        "iter_10000000/mp_rank_00/model_optim_rng.pt": 5.0, "latest_checkpointed_iteration.txt": 6.0,
        "iter_10000001/mp_rank_00/distrib_optim.pt": 9.0,  # saving the next one
    }
    v = detect(_files(files, {"latest_checkpointed_iteration.txt": b"10000000"}), 20.0, None, "auto")
    assert v.layout == "megatron" and v.last_step == 10_000_000 and v.last_complete_ts == 6.0
    assert v.in_progress and v.in_progress_keys == ("iter_10000001",) and v.in_progress_since == 9.0


def test_megatron_first_save_without_tracker_is_in_progress():
    # Megatron writes the tracker after every save, the first one included: an iteration
    # directory with no tracker yet is the first save, still running or cut off.
    files = {"run/iter_0000100/mp_rank_00/model_optim_rng.pt": 5.0, "run/iter_0000100/mp_rank_01/x": 4.0}
    v = detect(_files(files), 20.0, None, "auto")
    assert v.layout == "megatron" and v.last_complete_ts is None
    assert v.in_progress and v.in_progress_keys == ("run/iter_0000100",) and v.in_progress_since == 4.0


def test_config_layouts_match_the_registry():
    """`config.Layout` is a static Literal for the schema; it must name exactly the registered
    layout modules (plus "auto"), so adding a framework module without it fails here."""
    from typing import get_args

    from ai_signals_exporter.checkpoints.layouts import LAYOUTS, REGISTRY
    from ai_signals_exporter.config import Layout

    assert set(get_args(Layout)) == {"auto", *LAYOUTS}
    for name, lay in REGISTRY.items():
        module = lay.rule.__module__.rsplit(".", 1)[-1]
        assert module == name, f"layout {name} must live in checkpoints/layouts/{name}.py"


# --- issue 14: defects found with the real frameworks -------------------------------------------


def test_deepspeed_first_save_without_latest_is_in_progress():
    # deepspeed 0.19 engine killed during its first save: rank files on disk, no `latest` yet.
    files = {"global_step3/mp_rank_00_model_states.pt": 5.0}
    v = detect(_files(files), 100.0, None, "auto")
    assert v.layout == "deepspeed"
    assert v.last_complete_ts is None
    assert v.in_progress and v.in_progress_since == 5.0 and v.in_progress_keys == ("global_step3",)


def test_nemo_marker_around_a_deletion_is_not_a_save():
    # NeMo 3.0 touches `<old>-unfinished` before removing an old checkpoint, too.  Killed there:
    # a marker (newer than everything) next to a newer complete checkpoint.
    old, new = "run--step=4-epoch=0-last", "run--step=9-epoch=1-last"
    files = {f"{new}.ckpt": 20.0, f"{old}-unfinished": 21.0, f"{old}.ckpt": 10.0}
    v = detect(_files(files), 100.0, None, "nemo")
    assert v.last_step == 9 and v.last_complete_ts == 20.0
    assert not v.in_progress
    # The old file already gone, only the marker left: still no save in progress.
    del files[f"{old}.ckpt"]
    v = detect(_files(files), 100.0, None, "nemo")
    assert v.last_step == 9 and not v.in_progress


def test_nemo_marker_of_a_newer_save_still_counts():
    files = {"run--step=4-epoch=0.ckpt": 10.0, "run--step=9-epoch=1-unfinished": 21.0}
    v = detect(_files(files), 100.0, None, "nemo")
    assert v.last_step == 4 and v.in_progress and v.in_progress_since == 21.0


@pytest.mark.parametrize("name,layout", [
    ("ep0-ba3-rank0.pt", "composer"),  # Composer before its first `latest-rank0.pt` pointer
    ("run--step=4-epoch=0.ckpt", "nemo"),  # NeMo 3.0 between saves: no marker, `--step=` names
])
def test_sniff_by_framework_names_before_any_pointer(name, layout):
    assert sniff(_files({name: 1.0})) == layout


def test_history_does_not_depend_on_the_layout_label():
    files = {"global_step1/mp_rank_00_model_states.pt": 1.0, "latest": 2.0}
    v1 = detect(_files(files, {"latest": b"global_step1"}), 10.0, None, "deepspeed")
    files.update({"global_step2/mp_rank_00_model_states.pt": 11.0, "latest": 12.0})
    v2 = detect(_files(files, {"latest": b"global_step2"}), 20.0, v1, "deepspeed")
    relabelled = dataclasses.replace(v2, layout="lightning")  # e.g. a configured layout was set
    files.update({"global_step3/mp_rank_00_model_states.pt": 21.0, "latest": 22.0})
    v3 = detect(_files(files, {"latest": b"global_step3"}), 30.0, relabelled, "deepspeed")
    assert v3.complete_history_ts == (2.0, 12.0, 22.0)


def test_lightning_commit_time_is_the_rename_time():
    # Lightning writes the whole file to a temp file and renames it: mtime is when the write
    # started, ctime (local disk) when the rename committed it.
    e = Entry("epoch=0-step=10.ckpt", 100, 50.0, ctime=53.4)
    v = detect(Listing([e]), 100.0, None, "lightning")
    assert v.last_complete_ts == 53.4
    # A ctime far after the mtime is a later chmod/backup/restore, not the commit.
    e = Entry("epoch=0-step=10.ckpt", 100, 50.0, ctime=50.0 + 7200)
    assert detect(Listing([e]), 10_000.0, None, "lightning").last_complete_ts == 50.0


async def test_local_scan_reports_ctime(tmp_path):
    (tmp_path / "a.ckpt").write_bytes(zip_bytes())
    st = os.stat(tmp_path / "a.ckpt")
    listing = await _listing(tmp_path)
    assert listing.entries["a.ckpt"].ctime == st.st_ctime


async def test_layout_label_sticks_per_store(tmp_path):
    """The `layout` label of a store never flips: an empty store emits no series, the first
    detected layout sticks although a later listing sniffs differently, a configured layout wins."""
    from ai_signals_exporter.config import load_config_text
    from ai_signals_exporter.signals.checkpoints import derive
    from ai_signals_exporter.sources.checkpoints import CheckpointSource
    from ai_signals_exporter.state import AppState

    auto, fixed = tmp_path / "auto", tmp_path / "fixed"
    auto.mkdir(), fixed.mkdir()
    cfg = load_config_text(
        "checkpoints:\n  stores:\n"
        f"    - {{name: a, uri: 'file://{auto}'}}\n"
        f"    - {{name: f, uri: 'file://{fixed}', layout: deepspeed}}\n"
    )
    state = AppState()
    src = CheckpointSource(cfg, state)

    def layouts() -> set[tuple[str, str]]:
        return {
            (s[1][0], s[1][fam.labelnames.index("layout")])
            for fam in derive(state, cfg, time.time()) if "layout" in fam.labelnames for s in fam.samples
        }

    await src.run_once()
    assert ("a", "unknown") not in layouts()  # empty: no `layout="unknown"` series
    # Lightning-looking first save, then a NeMo marker shows up: the label stays.
    (auto / "epoch=0-step=1.ckpt").write_bytes(zip_bytes())
    await src.run_once()
    assert ("a", "lightning") in layouts()
    (auto / "epoch=0-step=2-unfinished").write_bytes(b"")
    (fixed / "latest-rank0.pt").symlink_to("missing.pt")
    await src.run_once()
    seen = layouts()
    assert {lay for store, lay in seen if store == "a"} == {"lightning"}
    assert {lay for store, lay in seen if store == "f"} == {"deepspeed"}


def test_marker_of_a_higher_step_counts_when_the_newest_complete_is_a_last_copy():
    # nemo-toolkit 3.0.0, killed writing step 4: the marker shares its mtime (one clock tick) with
    # the `last.ckpt` copy of step 2 written just before, so only the step tells it is newer.
    files = {"tiny--step=2-epoch=0.ckpt": 10.0, "last.ckpt": 10.002, "tiny--step=4-epoch=0-unfinished": 10.002}
    v = detect(_files(files), 100.0, None, "nemo")
    assert v.last_step == 2 and v.in_progress and v.in_progress_since == 10.002


def test_nemo_deletion_marker_when_the_newest_file_is_a_last_copy():
    # With save_last=True NeMo 3.0 writes a step-less `last.ckpt` after the numbered file: the
    # step comes from the numbered checkpoints, not from the newest file.
    files = {"run--step=9-epoch=1.ckpt": 20.0, "last.ckpt": 20.5, "run--step=4-epoch=0-unfinished": 21.0}
    v = detect(_files(files), 100.0, None, "nemo")
    assert v.last_step == 9 and not v.in_progress
