"""Cold-start phases, replicas by state and sample age, on pods decoded from real-shaped objects
(sim/objects.make_pod -> kube_objects.pod_from_json, the watch's own decode path)."""

from __future__ import annotations

import pytest

from ai_signals_exporter.config import Config
from ai_signals_exporter.engines.base import ModelSnapshot
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.serving.coldstart import (
    BUCKETS,
    COLDSTART,
    ColdStartState,
    Histogram,
    note_tokens,
    track,
)
from ai_signals_exporter.serving.history import TargetHistory, TargetIdentity
from ai_signals_exporter.serving.selection import ServingSelection
from ai_signals_exporter.signals import serving_lifecycle
from ai_signals_exporter.sim.objects import make_deployment, make_pod
from ai_signals_exporter.sources.kube_objects import parse_time, pod_from_json, workload_from_json
from ai_signals_exporter.state import AppState

SEL = ServingSelection(Config.model_validate(
    {"serving": {"discovery": {"label_selector": "ai-signals.io/serving=true"}}}).serving.discovery)
LABELS = {"ai-signals.io/serving": "true"}
T0 = parse_time("2026-01-05T10:00:00Z")
KEY = ("llm", "Deployment", "llama")


def at(seconds: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(T0 + seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name="llama-1", *, uid=None, node="gpu-1", ready=True, created=0, scheduled=3, initialized=63,
        ready_at=153, started=None, restarts=0, phase=None, labels=LABELS):
    obj = make_pod("llm", name, node=node, owner=("Deployment", "llama"), gpu=1, labels=labels,
                   ip="10.0.0.9" if node else None, ready=ready, phase=phase, created=at(created),
                   scheduled_at=at(scheduled), initialized_at=at(initialized), ready_at=at(ready_at),
                   started_at=at(started if started is not None else initialized), restarts=restarts)
    obj["metadata"]["uid"] = uid or name
    return pod_from_json(obj)


def history(name="llama-1"):
    return TargetHistory(url=f"http://{name}", identity=TargetIdentity("llm", name, "Deployment", "llama"),
                         engine="vllm")


def tokens(h, ts, total):
    snap = {"m": ModelSnapshot(generation_tokens=total)}
    h.append(ts, snap, 120)
    note_tokens(h, ts, snap)


def counts(cs):
    return {phase: (h.count, h.sum) for (key, phase), h in cs.histograms.items() if h.count}


def test_phases_of_one_start_observed_once():
    cs = ColdStartState()
    h = history()
    track(cs, [], SEL, [h], T0 - 10)  # the baseline: nothing yet
    p = pod(ready=False, node="", phase="Pending")
    track(cs, [p], SEL, [h], T0 + 1)
    # Served at zero from the first sight of a start, so its first observation is an increase.
    assert {phase: h.count for (_, phase), h in cs.histograms.items()} == dict.fromkeys(
        ("scheduling", "init", "startup", "first_token", "total"), 0)
    p = pod()  # scheduled at 3, initialized at 63 (weights), ready at 153 (engine load)
    track(cs, [p], SEL, [h], T0 + 155)
    assert counts(cs) == {"scheduling": (1, 3.0), "init": (1, 60.0), "startup": (1, 90.0)}
    tokens(h, T0 + 156, 0)
    track(cs, [p], SEL, [h], T0 + 156)
    assert "first_token" not in counts(cs)  # ready, but no token counted yet
    tokens(h, T0 + 161, 40)
    for now in (T0 + 161, T0 + 166, T0 + 300):  # later passes and a re-list observe nothing more
        track(cs, [pod()], SEL, [h], now)
    assert counts(cs) == {"scheduling": (1, 3.0), "init": (1, 60.0), "startup": (1, 90.0),
                          "first_token": (1, 8.0), "total": (1, 161.0)}


def test_pods_already_ready_when_the_tracker_starts_are_not_observed():
    cs = ColdStartState()
    h = history()
    tokens(h, T0 + 500, 1000)
    track(cs, [pod()], SEL, [h], T0 + 500)  # exporter (re)started: this start was someone else's
    track(cs, [pod()], SEL, [h], T0 + 505)
    assert cs.histograms == {}
    # A pod created before the baseline, first seen ready later (its watch event came late).
    track(cs, [pod(), pod("llama-2", uid="u2", created=-100)], SEL, [h], T0 + 510)
    assert counts(cs) == {}
    # A pod that was still starting at the restart is observed by this exporter.
    h3 = history("llama-3")
    track(cs, [pod("llama-3", uid="u3", ready=False, created=400)], SEL, [h, h3], T0 + 515)
    tokens(h3, T0 + 700, 5)
    track(cs, [pod("llama-3", uid="u3", created=400, ready_at=690)], SEL, [h, h3], T0 + 700)
    assert counts(cs)["total"] == (1, 300.0)


def test_restarted_container_is_a_new_start_of_startup_and_first_token_only():
    cs = ColdStartState()
    h = history()
    track(cs, [], SEL, [h], T0 - 1)
    track(cs, [pod(ready=False)], SEL, [h], T0 + 1)
    tokens(h, T0 + 160, 10)
    track(cs, [pod()], SEL, [h], T0 + 160)
    assert counts(cs)["total"][0] == 1
    # The engine crashes at 1000 and its container restarts at 1002; Ready is still the old one
    # for a moment, then False, then True at 1062.
    track(cs, [pod(restarts=1, started=1002)], SEL, [h], T0 + 1003)
    track(cs, [pod(restarts=1, started=1002, ready=False)], SEL, [h], T0 + 1005)
    tokens(h, T0 + 1005, 0)  # the new engine's counters start from zero
    track(cs, [pod(restarts=1, started=1002, ready_at=1062)], SEL, [h], T0 + 1063)
    tokens(h, T0 + 1070, 3)
    track(cs, [pod(restarts=1, started=1002, ready_at=1062)], SEL, [h], T0 + 1070)
    c = counts(cs)
    assert c["startup"] == (2, 90.0 + 60.0)
    assert c["first_token"] == (2, 7.0 + 8.0)
    assert c["scheduling"][0] == c["init"][0] == c["total"][0] == 1


def test_restart_before_first_ready_is_part_of_the_first_start():
    cs = ColdStartState()
    h = history()
    track(cs, [], SEL, [h], T0 - 1)
    track(cs, [pod(ready=False)], SEL, [h], T0 + 1)
    track(cs, [pod(ready=False, restarts=2, started=120)], SEL, [h], T0 + 121)
    track(cs, [pod(restarts=2, started=120, ready_at=200)], SEL, [h], T0 + 201)
    assert counts(cs)["startup"] == (1, 137.0)  # initialized 63 -> ready 200, crashes included


def test_gone_pods_are_remembered_then_forgotten():
    cs = ColdStartState()
    track(cs, [], SEL, [], T0 - 1)
    track(cs, [pod(ready=False)], SEL, [], T0 + 1)
    track(cs, [pod()], SEL, [], T0 + 160)
    track(cs, [], SEL, [], T0 + 200)  # a re-list in progress / pod gone
    track(cs, [pod()], SEL, [], T0 + 300)
    assert counts(cs)["startup"][0] == 1
    track(cs, [], SEL, [], T0 + 300 + 3601)
    assert cs.pods == {}


def test_unselected_and_finished_pods_are_ignored():
    cs = ColdStartState()
    track(cs, [], SEL, [], T0 - 1)
    track(cs, [pod(labels={"app": "x"}), pod("done", uid="u9", phase="Succeeded", ready=False)], SEL, [], T0 + 1)
    assert cs.pods == {}


def test_histogram_buckets_and_overflow():
    h = Histogram()
    for v in (0.0, 1.0, 1.5, 3600.0, 5000.0):
        h.observe(v)
    cum = dict(h.cumulative())
    assert cum["1"] == 2 and cum["2"] == 3 and cum["3600"] == 4 and cum["+Inf"] == 5
    assert len(cum) == len(BUCKETS) + 1 and h.sum == pytest.approx(8602.5)


def test_note_tokens_restarts_with_the_engine():
    h = history()
    tokens(h, 10, 0)
    assert h.first_token_at is None
    tokens(h, 15, 5)
    tokens(h, 20, 50)
    assert h.first_token_at == 15
    tokens(h, 25, 0)  # restarted engine
    assert h.first_token_at is None
    tokens(h, 30, 2)
    assert h.first_token_at == 30


def config(**kube):
    return Config.model_validate({"kubernetes": {"enabled": True, **kube},
                                  "serving": {"discovery": {"label_selector": "ai-signals.io/serving=true"}}})


def rendered(state, cfg, now):
    body = render(serving_lifecycle.derive(state, cfg, now))
    return body, parse_families(body, {
        "ai_serving_replicas", "ai_serving_sample_age_seconds", "ai_serving_cold_start_seconds_bucket",
        "ai_serving_cold_start_seconds_count", "ai_serving_cold_start_bound_seconds"})


def test_replicas_by_state_and_zero_replica_workloads():
    state = AppState()
    kube = state.kube
    p_ready = pod("llama-1", uid="a")
    p_start = pod("llama-2", uid="b", ready=False)
    p_pending = pod("llama-3", uid="c", node="", phase="Pending", ready=False)
    p_term = pod("llama-4", uid="d")
    p_term.deleting = True
    for p in (p_ready, p_start, p_pending, p_term):
        kube.pods[p.uid] = p
    idle = workload_from_json(make_deployment("llm", "idle", replicas=0, template_labels=LABELS), "Deployment")
    other = workload_from_json(make_deployment("llm", "web", replicas=3, labels=LABELS), "Deployment")
    kube.deployments = {"llm/idle": idle, "llm/web": other}
    _, fams = rendered(state, config(), T0)
    got = {(lab["workload"], lab["state"]): v for lab, v in fams["ai_serving_replicas"]}
    assert got == {("llama", "starting"): 2, ("llama", "ready"): 1, ("llama", "terminating"): 1,
                   ("idle", "starting"): 0, ("idle", "ready"): 0, ("idle", "terminating"): 0}
    # Node agents see only their node's pods: they count no replicas.
    _, fams = rendered(state, config(node_scope="gpu-1"), T0)
    assert "ai_serving_replicas" not in fams


def test_sample_age_and_histogram_exposition():
    state = AppState()
    h = history()
    tokens(h, T0 + 100, 10)
    state.serving[h.url] = h
    cs = state[COLDSTART]
    cs.observe(KEY, "total", 200.0)
    body, fams = rendered(state, config(), T0 + 130)
    assert [v for _, v in fams["ai_serving_sample_age_seconds"]] == [30.0]
    buckets = {lab["le"]: v for lab, v in fams["ai_serving_cold_start_seconds_bucket"]}
    assert buckets["180"] == 0 and buckets["240"] == 1 and buckets["+Inf"] == 1
    assert fams["ai_serving_cold_start_seconds_count"] == [
        ({"namespace": "llm", "workload_kind": "Deployment", "workload": "llama", "phase": "total"}, 1.0)]
    assert b"# TYPE ai_serving_cold_start_seconds histogram" in body


def test_cold_start_bound_from_the_pod_annotation():
    state = AppState()
    p = pod()
    p.annotations["ai-signals.io/cold-start-bound-seconds"] = "1200"
    state.kube.pods[p.uid] = p
    _, fams = rendered(state, config(), T0)
    assert fams["ai_serving_cold_start_bound_seconds"][0][1] == 1200.0


def test_serving_workloads_are_watched_at_cluster_scope_only():
    from ai_signals_exporter.areas import kube_watches

    def watched(**kube):
        cfg = Config.model_validate({"kubernetes": kube})
        return [w.resource for w in kube_watches(cfg)]

    serving_kinds = ["deployments", "statefulsets", "leaderworkersets"]
    assert [r for r in watched(enabled=True) if r in serving_kinds] == serving_kinds
    assert not set(serving_kinds) & set(watched(enabled=True, node_scope="gpu-1"))  # node agents count no replicas
    assert not set(serving_kinds) & set(watched(enabled=False))
    off = Config.model_validate({"kubernetes": {"enabled": True}, "serving": {"discovery": {"enabled": False}}})
    assert not set(serving_kinds) & {w.resource for w in kube_watches(off)}


def test_a_loading_pod_is_no_scrape_target_but_an_unready_serving_one_is():
    from ai_signals_exporter.serving.coldstart import loading
    from ai_signals_exporter.sources.serving import target_for_pod

    starting = pod(ready=False, ready_at=63, started=63)  # Ready=False since before its container started
    assert loading(starting) and target_for_pod(starting, 8000, "/metrics") is None
    flapping = pod(ready=False, ready_at=500, started=63)  # went unready while serving (probe under load)
    assert not loading(flapping) and target_for_pod(flapping, 8000, "/metrics") is not None
    restarted = pod(ready=False, ready_at=1000, started=1002, restarts=1)  # crashed at 1000, loading again
    assert loading(restarted) and target_for_pod(restarted, 8000, "/metrics") is None
    assert not loading(pod()) and target_for_pod(pod(), 8000, "/metrics") is not None
