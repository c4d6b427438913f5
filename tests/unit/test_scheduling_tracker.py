"""The scheduling area's tracker behind the kube stores' listener hook: stores fed raw objects
(as the reflector feeds them), the tracker sees every change; no HTTP, no rescans."""

from __future__ import annotations

from ai_signals_exporter.checkpoints.model import Verdict
from ai_signals_exporter.checkpoints.observation import CHECKPOINTS, StoreObservation
from ai_signals_exporter.config import Config
from ai_signals_exporter.scheduling.area import SCHEDULING, SchedulingSource, derive, owned_scopes
from ai_signals_exporter.sim.objects import (
    admission_rejected,
    disrupted,
    make_event,
    make_node,
    make_pod,
    make_resource_quota,
    quota_exceeded_message,
)
from ai_signals_exporter.sources.kube_stores import KUBE_LISTENERS, Watch, make_store
from ai_signals_exporter.state import AppState

NOW = 1_800_000_000.0


def stores(state: AppState) -> dict:
    return {r: make_store(Watch(r), state, frozenset(), clock=lambda: NOW)
            for r in ("pods", "nodes", "resourcequotas", "events")}


def listed(store, objs) -> None:
    kept: dict = {}
    store.trim_into(objs, kept)
    store.replace(kept)


def attached(state: AppState, **kube) -> SchedulingSource:
    config = Config.model_validate({"kubernetes": {"enabled": True, **kube}})
    src = SchedulingSource(config, state, clock=lambda: NOW)
    src.attach()
    return src


def test_first_list_is_baseline_then_watch_changes_count_once_and_deletes_forget() -> None:
    state = AppState()
    src = attached(state)
    s = stores(state)
    old_failure = admission_rejected(make_pod("llm", "old", node="n1", gpu=1))
    running = make_pod("llm", "a", node="n1", gpu=1)
    listed(s["pods"], [old_failure, running, make_pod("web", "cpu", node="n1")])
    listed(s["nodes"], [make_node("n1")])
    tracker = src.tracker
    assert tracker is state[SCHEDULING] and tracker in state[KUBE_LISTENERS]
    assert tracker.state.admissions.totals == {}  # failed before we looked: baseline
    assert set(tracker._pods) == {old_failure["metadata"]["uid"], running["metadata"]["uid"]}  # no CPU pod

    s["pods"].apply(admission_rejected(running))
    s["pods"].apply(admission_rejected(running))  # the same pod again: once
    assert tracker.state.admissions.totals == {("n1", "unexpected_admission_error"): 1}
    # A re-list replays it: still once; a pod missing from the list is forgotten.
    listed(s["pods"], [admission_rejected(running)])
    assert tracker.state.admissions.totals == {("n1", "unexpected_admission_error"): 1}
    assert set(tracker._pods) == {running["metadata"]["uid"]}
    s["pods"].remove(running)
    assert len(tracker.state.admissions) == 0 and tracker._pods == {}


def test_pending_nodes_quotas_and_events_are_kept_incrementally() -> None:
    state = AppState()
    src = attached(state)
    s = stores(state)
    waiting = make_pod("ml", "p-0", owner=("Job", "p"), gpu=4)
    listed(s["pods"], [waiting])
    listed(s["nodes"], [make_node("n1"), make_node("cpu-1", gpus=0), make_node("n2", unschedulable=True)])
    listed(s["resourcequotas"], [make_resource_quota("ml", "gpu", {"requests.nvidia.com/gpu": 8}),
                                 make_resource_quota("ml", "cpu", {"requests.cpu": 8})])
    listed(s["events"], [])
    tracker = src.tracker
    assert list(tracker.pending) and set(tracker.nodes) == {"n1", "n2"} and set(tracker.quotas) == {"ml/gpu"}
    scheduled = make_pod("ml", "p-0", node="n1", owner=("Job", "p"), gpu=4)
    scheduled["metadata"]["uid"] = waiting["metadata"]["uid"]
    s["pods"].apply(scheduled)
    assert not tracker.pending
    msg = quota_exceeded_message("p-1", "gpu")
    ev = make_event("ml", ("Job", "p"), "FailedCreate", msg, count=1)
    s["events"].apply(ev)
    s["events"].apply(dict(ev, count=3))
    s["events"].apply(make_event("ml", ("Pod", "x"), "BackOff", "Back-off restarting failed container"))
    assert tracker.state.quota_rejections.totals == {("ml",): 3}
    assert len(tracker.state.quota_rejections) == 1  # only quota rejections are remembered
    names = {f.name: f for f in derive(state, src.config, NOW)}
    assert [s[1:3] for s in names["ai_gpu_offline_gpus"].samples] == [(("n2", "cordoned"), 8)]


def test_events_and_quotas_do_not_make_discovery_rescan() -> None:
    state = AppState()
    s = stores(state)
    gen = state.kube.generation
    s["events"].apply(make_event("ml", ("Pod", "x"), "BackOff", "Back-off"))
    s["resourcequotas"].apply(make_resource_quota("ml", "gpu", {"requests.nvidia.com/gpu": 8}))
    assert state.kube.generation == gen
    s["pods"].apply(make_pod("ml", "x", node="n1"))
    assert state.kube.generation == gen + 1


def test_disruption_of_a_job_with_a_store_counts_work_lost_once_per_episode() -> None:
    state = AppState()
    state[CHECKPOINTS]["ckpt"] = StoreObservation(
        "ckpt", "file:///x", "ml", "train", "dcp", None,
        verdict=Verdict(layout="dcp", last_complete_ts=NOW - 1000, last_step=1, size_bytes=1,
                        in_progress=False, in_progress_since=None))
    src = attached(state)
    s = stores(state)
    pods = [make_pod("ml", f"train-{i}", node="n1", owner=("Job", "train"), gpu=8) for i in range(2)]
    listed(s["pods"], pods)
    for pod in pods:
        s["pods"].apply(disrupted(pod, at="2027-01-15T08:00:00Z"))  # NOW = 08:00:00Z
    loss = src.tracker.state.work_lost.stores[("ckpt", "ml", "train")]
    assert loss.interruptions == {"preemption": 1}
    assert loss.lost_seconds == 1000 and loss.lost_gpu_seconds == 1000 * 16


def test_node_agent_owns_node_families_only() -> None:
    assert owned_scopes(Config.model_validate({"kubernetes": {"enabled": True, "node_scope": "n1"}})) == {"node"}
    assert owned_scopes(Config.model_validate({"kubernetes": {"enabled": True}})) == {"node", "cluster"}
    state = AppState()
    src = attached(state, node_scope="n1")
    names = {f.name for f in derive(state, src.config, NOW)}
    assert names == {"ai_gpu_node_admission_failures_total", "ai_gpu_pod_disruptions_total"}  # offline: cluster


def test_a_failing_listener_is_counted_and_never_stops_the_store() -> None:
    class Broken:
        def applied(self, resource, record):
            raise RuntimeError("bug")

        removed = replaced = applied

    state = AppState()
    state[KUBE_LISTENERS].append(Broken())
    s = stores(state)
    pod = make_pod("ml", "x", node="n1", gpu=1)
    listed(s["pods"], [pod])
    s["pods"].apply(pod)
    s["pods"].remove(pod)
    assert "pods" in state.kube.synced and state.kube.pods == {}
    assert state.selfmon.errors[("kube", "exception")] == 3
