"""CheckpointSource end to end: config -> source -> state -> derive -> rendered /metrics values."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from ai_signals_exporter.config import load_config_text
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.signals.checkpoints import derive
from ai_signals_exporter.sim.training import TrainingJob
from ai_signals_exporter.sources.checkpoints import CheckpointSource
from ai_signals_exporter.state import AppState, PodInfo
from tests.helpers.checkpoint_trees import CASES, build

NAMES = {
    "ai_checkpoint_last_complete_timestamp_seconds", "ai_checkpoint_age_seconds",
    "ai_checkpoint_last_step", "ai_checkpoint_size_bytes", "ai_checkpoint_in_progress",
    "ai_checkpoint_in_progress_age_seconds", "ai_checkpoint_expected_interval_seconds",
    "ai_checkpoint_pointer_dangling",
}


def values(state: AppState, cfg, now: float) -> tuple[bytes, dict[str, dict[tuple, float]]]:
    body = render(derive(state, cfg, now))
    parsed = parse_families(body, NAMES)
    out: dict[str, dict[tuple, float]] = {}
    for name, samples in parsed.items():
        for labels, v in samples:
            out.setdefault(name, {})[(labels["store"], labels["namespace"], labels["job"], labels["layout"])] = v
    return body, out


def promtool_ok(body: bytes) -> None:
    res = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stdout + res.stderr


def case(id_: str):
    return next(c for c in CASES if c.id == id_)


async def test_every_layout_through_source_to_metrics(tmp_path):
    base = time.time() - 7200
    stores = []
    for c in CASES:
        build(c, tmp_path / c.id, base)
        stores.append(f"    - {{name: {c.id}, uri: 'file://{tmp_path / c.id}', layout: {c.layout},"
                      f" labels: {{namespace: ml, job: {c.id}}}}}")
    cfg = load_config_text("checkpoints:\n  stores:\n" + "\n".join(stores) + "\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    await src.run_once()  # plain torch.save files are trusted after two equal scans
    now = time.time()
    body, m = values(state, cfg, now)
    promtool_ok(body)
    for c in CASES:
        key = (c.id, "ml", c.id, c.layout)
        assert state.selfmon.targets[("checkpoints", c.id)] is True
        assert m["ai_checkpoint_last_step"][key] == c.step, c.id
        assert m["ai_checkpoint_in_progress"][key] == (1 if c.in_progress else 0), c.id
        assert m["ai_checkpoint_pointer_dangling"][key] == (1 if c.dangling else 0), c.id
        ts = m["ai_checkpoint_last_complete_timestamp_seconds"][key]
        assert m["ai_checkpoint_age_seconds"][key] == pytest.approx(now - ts, abs=1e-3)
        assert ts < now - 7000  # the fixture's commit time, not the time of the scan
        if c.in_progress:
            assert m["ai_checkpoint_in_progress_age_seconds"][key] == pytest.approx(now - (base + c.since * 10), abs=0.01)
        else:
            assert m["ai_checkpoint_in_progress_age_seconds"][key] == 0
    # Learned from the two complete checkpoints 20 s apart in the DCP fixture.
    assert m["ai_checkpoint_expected_interval_seconds"][("dcp-complete", "ml", "dcp-complete", "dcp")] == 20


async def test_failed_store_keeps_last_good_reading(tmp_path):
    root = tmp_path / "run"
    build(case("deepspeed-complete"), root, time.time() - 600)
    cfg = load_config_text(f"""
checkpoints:
  stores:
    - name: run
      uri: file://{root}
      expected_interval: 5m
      labels: {{namespace: ml, job: run}}
""")
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    _, good = values(state, cfg, time.time())
    key = ("run", "ml", "run", "deepspeed")
    assert good["ai_checkpoint_expected_interval_seconds"][key] == 300
    root.rename(tmp_path / "gone")  # the volume went away
    await src.run_once()
    assert state.selfmon.targets[("checkpoints", "run")] is False
    assert state.selfmon.errors[("checkpoints", "storage")] == 1
    later = time.time() + 100
    _, m = values(state, cfg, later)
    # Same commit time, age still growing: an unlistable store does not look fresher.
    assert m["ai_checkpoint_last_complete_timestamp_seconds"][key] == good["ai_checkpoint_last_complete_timestamp_seconds"][key]
    assert m["ai_checkpoint_age_seconds"][key] == pytest.approx(later - good["ai_checkpoint_last_complete_timestamp_seconds"][key])
    assert src.targets()[0].up is False and src.targets()[0].last_error == "storage"


async def test_timeout_marks_store_down(tmp_path, monkeypatch):
    build(case("dcp-complete"), tmp_path, time.time() - 600)
    cfg = load_config_text(f"checkpoints: {{timeout: 100ms, stores: [{{name: slow, uri: 'file://{tmp_path}'}}]}}\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    from ai_signals_exporter.checkpoints import stores

    original = stores.LocalTree.list

    async def slow_list(self, max_objects, page_size):
        await asyncio.sleep(1)  # a hung NFS mount
        return await original(self, max_objects, page_size)

    monkeypatch.setattr(stores.LocalTree, "list", slow_list)
    await src.run_once()
    assert state.selfmon.targets[("checkpoints", "slow")] is False
    assert state.selfmon.errors[("checkpoints", "timeout")] == 1
    assert state.checkpoints["slow"].verdict is None
    assert derive(state, cfg, time.time())[0].samples == []


async def test_hung_mount_holds_one_thread_not_one_per_scan(tmp_path, monkeypatch):
    # A hung NFS mount blocks os.scandir for good; the scan times out but its thread cannot be
    # cancelled.  Starting a new walk every scan would pile up threads until the default
    # executor (shared with /metrics compression) is exhausted: one walk per store at a time.
    import threading

    from ai_signals_exporter.checkpoints import stores

    build(case("dcp-complete"), tmp_path, time.time() - 600)
    cfg = load_config_text(f"checkpoints: {{timeout: 100ms, stores: [{{name: nfs, uri: 'file://{tmp_path}'}}]}}\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    release, calls = threading.Event(), []
    original = stores._walk

    def hung_walk(root, max_objects, deadline):
        calls.append(root)
        release.wait(10)
        return original(root, max_objects, time.monotonic() + 10)

    monkeypatch.setattr(stores, "_walk", hung_walk)
    try:
        for _ in range(3):
            await src.run_once()
    finally:
        release.set()
    assert len(calls) == 1
    assert state.selfmon.errors[("checkpoints", "timeout")] == 3
    for _ in range(50):  # the walk returns once the mount answers; then scans work again
        await asyncio.sleep(0.02)
        await src.run_once()
        if state.checkpoints["nfs"].up:
            break
    assert state.checkpoints["nfs"].up and state.checkpoints["nfs"].verdict.last_complete_ts is not None


def _pod(uid: str, ns: str, name: str, workload: str, annotations: dict[str, str]) -> PodInfo:
    return PodInfo(uid=uid, namespace=ns, name=name, node="n1", phase="Running", ip="10.0.0.1",
                   labels={}, annotations=annotations, workload_kind="Job", workload=workload, requests={})


async def test_stores_discovered_from_pod_annotations(tmp_path):
    build(case("hf_trainer-interrupted-weights"), tmp_path / "ft", time.time() - 600)
    cfg = load_config_text("kubernetes: {enabled: true}\n")
    state = AppState()
    uri = f"file://{tmp_path / 'ft'}"
    ann = {"ai-signals.io/checkpoint-uri": uri, "ai-signals.io/checkpoint-layout": "hf_trainer"}
    # Two pods of one job share one store; a bad layout annotation falls back to auto.
    state.kube.pods = {
        "a": _pod("a", "ml", "ft-0", "finetune", ann),
        "b": _pod("b", "ml", "ft-1", "finetune", ann),
        "c": _pod("c", "team", "x-0", "other", {"ai-signals.io/checkpoint-uri": uri,
                                                 "ai-signals.io/checkpoint-layout": "pickle"}),
        "d": _pod("d", "team", "web", "web", {}),
    }
    src = CheckpointSource(cfg, state)
    assert src.enabled()
    await src.run_once()
    assert sorted(state.checkpoints) == ["ml/finetune", "team/other"]
    assert state.selfmon.errors[("checkpoints", "config")] == 1
    _, m = values(state, cfg, time.time())
    assert m["ai_checkpoint_last_step"] == {
        ("ml/finetune", "ml", "finetune", "hf_trainer"): 200,
        ("team/other", "team", "other", "hf_trainer"): 200,  # auto-detected
    }
    assert m["ai_checkpoint_in_progress"][("ml/finetune", "ml", "finetune", "hf_trainer")] == 1
    del state.kube.pods["c"]
    await src.run_once()
    assert sorted(state.checkpoints) == ["ml/finetune"]
    assert ("checkpoints", "team/other") not in state.selfmon.targets


async def test_finished_job_stops_being_a_store(tmp_path):
    # A Job that finished keeps its Succeeded pods until they are garbage-collected; its
    # checkpoints stop changing, which is not a stale checkpoint: no work is at risk.  Failed
    # pods still count: between retries of a crash-looping Job they may be all there is.
    build(case("hf_trainer-complete"), tmp_path / "ft", time.time() - 600)
    cfg = load_config_text("kubernetes: {enabled: true}\n")
    state = AppState()
    ann = {"ai-signals.io/checkpoint-uri": f"file://{tmp_path / 'ft'}"}
    state.kube.pods = {
        "a": _pod("a", "ml", "ft-0", "finetune", ann),
        "b": _pod("b", "ml", "ft-1", "finetune", ann),
    }
    src = CheckpointSource(cfg, state)
    await src.run_once()
    assert sorted(state.checkpoints) == ["ml/finetune"]
    state.kube.pods["a"].phase = state.kube.pods["b"].phase = "Failed"  # waiting for a retry
    await src.run_once()
    assert sorted(state.checkpoints) == ["ml/finetune"]
    state.kube.pods["a"].phase = state.kube.pods["b"].phase = "Succeeded"
    await src.run_once()
    assert state.checkpoints == {}
    _, m = values(state, cfg, time.time())
    assert "ai_checkpoint_age_seconds" not in m


async def test_simulated_job_saves_and_interruptions(tmp_path):
    job = TrainingJob(tmp_path / "job", layout="dcp", interval=60, save_seconds=0.0)
    await job.backfill(3)
    cfg = load_config_text(f"checkpoints: {{stores: [{{name: job, uri: '{job.root.as_uri()}'}}]}}\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    key = ("job", "", "job", "dcp")
    _, m = values(state, cfg, time.time())
    assert m["ai_checkpoint_last_step"][key] == 300
    assert m["ai_checkpoint_expected_interval_seconds"][key] == pytest.approx(60, abs=1)
    assert m["ai_checkpoint_in_progress"][key] == 0
    assert await job.save(interrupt=True) is False  # evicted mid-save: shards, no .metadata
    await src.run_once()
    _, m = values(state, cfg, time.time())
    assert m["ai_checkpoint_last_step"][key] == 300 and m["ai_checkpoint_in_progress"][key] == 1
    assert await job.save() is True
    await src.run_once()
    _, m = values(state, cfg, time.time())
    assert m["ai_checkpoint_last_step"][key] == 500 and m["ai_checkpoint_in_progress"][key] == 0
    assert m["ai_checkpoint_age_seconds"][key] < 5


@pytest.mark.parametrize("layout", ["dcp", "hf_trainer", "torch_save"])
async def test_periodic_loop_against_running_job(tmp_path, layout):
    job = TrainingJob(tmp_path / "job", layout=layout, interval=0.4, save_seconds=0.1, interrupt_every=2, keep=10)
    cfg = load_config_text(f"checkpoints: {{interval: 150ms, stores: [{{name: j, uri: '{job.root.as_uri()}'}}]}}\n")
    state = AppState()
    src = CheckpointSource(cfg, state)
    job.start()
    loop = asyncio.create_task(src.run())
    seen_in_progress = False
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            v = state.checkpoints.get("j") and state.checkpoints["j"].verdict
            if v and v.in_progress:
                seen_in_progress = True
            if seen_in_progress and len(job.completed) >= 3 and v and v.last_step == job.completed[-1]:
                break
    finally:
        loop.cancel()
        await job.stop()
        await asyncio.gather(loop, return_exceptions=True)
    v = state.checkpoints["j"].verdict
    assert seen_in_progress and job.interrupted
    assert v.layout == layout and v.last_step == job.completed[-1]
    assert state.selfmon.sources["checkpoints"].last_success > 0


async def test_large_store_judged_off_the_event_loop(tmp_path):
    # Above 2000 objects detect runs in a worker thread; the verdict must be the same.
    for step in range(1, 41):
        d = tmp_path / f"step_{step * 100}"
        d.mkdir()
        for r in range(55):
            (d / f"__{r}_0.distcp").write_bytes(b"x")
        if step < 40:
            (d / ".metadata").write_bytes(b"m")
    cfg = load_config_text(f"checkpoints: {{stores: [{{name: big, uri: 'file://{tmp_path}'}}]}}\n")
    state = AppState()
    await CheckpointSource(cfg, state).run_once()
    obs = state.checkpoints["big"]
    assert obs.objects == 40 * 55 + 39
    assert obs.verdict.last_step == 3900 and obs.verdict.in_progress_keys == ("step_4000",)


async def test_unexpected_error_fails_only_its_store(tmp_path, monkeypatch):
    good = tmp_path / "good"
    build(case("dcp-complete"), good, time.time() - 600)
    (tmp_path / "bad").mkdir()
    cfg = load_config_text(f"""
checkpoints:
  stores:
    - {{name: good, uri: 'file://{good}'}}
    - {{name: bad, uri: 'file://{tmp_path}/bad'}}
""")
    state = AppState()
    from ai_signals_exporter.checkpoints import stores

    original = stores.LocalTree.list

    async def broken(self, max_objects, page_size):
        if self.root.endswith("/bad"):
            raise RuntimeError("a bug, or an error type nobody expected")
        return await original(self, max_objects, page_size)

    monkeypatch.setattr(stores.LocalTree, "list", broken)
    await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.targets[("checkpoints", "good")] is True
    assert state.selfmon.targets[("checkpoints", "bad")] is False
    assert state.selfmon.errors[("checkpoints", "exception")] == 1
    assert state.checkpoints["good"].verdict.last_step == 200
