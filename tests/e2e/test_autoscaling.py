"""The autoscaling claim of issue 16, end to end on a simulated clock.

A workload of 2 vLLM-like replicas (nominal capacity 1,000 tokens/s each, the HPA target 0.8 of
it) takes a step in load from 1,200 to 4,000 tokens/s; each new replica takes 3 s to schedule,
90 s to download its weights and 30 s to load them (sim/coldstart.py).  Every 5 s of the
simulated clock the exporter's own code turns the simulated pods and engine counters into
/metrics (kube records decoded from Pod JSON, the cold-start tracker, serving and lifecycle
derives, rendered text); every 15 s those samples are pushed into a real Prometheus at that
timestamp, the shipped recording rules (rules/serving.yaml, in file order) are evaluated by that
Prometheus at that timestamp and their results pushed back (what its rule manager would do), and
an autoscaler computes the desired replicas from the rule outputs with the targets of the
shipped deploy/autoscaling/hpa.yaml, then the shipped 60 s scale-up stabilization.

Three identical workloads run side by side, one per autoscaler model:
  hpa          the HPA's own replica calculation (kubernetes pkg/controller/podautoscaler/
               replica_calculator.go, v1.31): an Object metric with a Value target gives
               ceil(ready pods x metric / target) (getUsageRatioReplicaCount, 10 % tolerance),
               one with an AverageValue target ceil(total / target); on the shipped inputs
               (…capacity_ratio:avg and …requests_waiting:sum);
  current_avg  ceil(current replicas x metric / target) -- the issue's formula, replicas that are
               starting included -- on the average over the pods that report (the rule before
               issue 16);
  current_per_replica  the same formula on …capacity_ratio:per_replica (ready + starting).
The load needs ceil(4000 / (1000 x 0.8)) = 5 replicas.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from ai_signals_exporter.config import Config
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.serving.coldstart import COLDSTART, note_tokens, track
from ai_signals_exporter.serving.history import TargetHistory, TargetIdentity, keep_seconds
from ai_signals_exporter.serving.selection import ServingSelection
from ai_signals_exporter.signals import serving, serving_lifecycle
from ai_signals_exporter.sim.coldstart import ScalingWorkload, StartProfile
from ai_signals_exporter.sources.kube_objects import parse_time, pod_from_json, workload_from_json
from ai_signals_exporter.state import AppState

from ..helpers.promstack import prometheus, query
from ..helpers.remote_write import push

REPO = Path(__file__).resolve().parents[2]
T0 = parse_time("2026-01-05T10:00:00Z")
STEP_AT, BEFORE, AFTER = 60.0, 1200.0, 4000.0
CAPACITY = 1000.0
DURATION = 600.0
# rules/serving.yaml before issue 16: the average over the pods that report.
OLD_RATIO = ("avg by (namespace, workload_kind, workload) (sum by (namespace, workload_kind, workload, pod)"
             " (ai_serving_token_capacity_ratio{namespace=\"current-avg\"}))")
MODELS = {  # namespace -> (capacity-ratio query, queue query, multiply by all replicas?)
    "hpa": ('workload:ai_serving_token_capacity_ratio:avg{namespace="hpa"}',
            'workload:ai_serving_requests_waiting:sum{namespace="hpa"}', False),
    "current-avg": (OLD_RATIO, None, True),
    "current-per-replica": ('workload:ai_serving_token_capacity_ratio:per_replica{namespace="current-per-replica"}',
                            None, True),
}


def load(t: float) -> float:
    return AFTER if t >= T0 + STEP_AT else BEFORE


def hpa_targets() -> dict[str, float]:
    hpa = yaml.safe_load((REPO / "deploy" / "autoscaling" / "hpa.yaml").read_text())
    behavior = hpa["spec"]["behavior"]
    out = {"min": hpa["spec"]["minReplicas"], "max": hpa["spec"]["maxReplicas"],
           "up_window": behavior["scaleUp"]["stabilizationWindowSeconds"],
           "down_window": behavior["scaleDown"]["stabilizationWindowSeconds"]}
    for m in hpa["spec"]["metrics"]:
        target = m["object"]["target"]
        raw = str(target.get("value") or target.get("averageValue"))
        out[m["object"]["metric"]["name"]] = float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
    return out


def recording_rules() -> list[tuple[str, str]]:
    doc = yaml.safe_load((REPO / "rules" / "serving.yaml").read_text())
    return [(r["record"], r["expr"]) for g in doc["groups"] for r in g["rules"] if "record" in r]


class Exporter:
    """The exporter's code path for one simulated cluster, minus HTTP: kube records from Pod JSON,
    serving histories fed like the serving source feeds them, the tracker, derive and render."""

    def __init__(self, workloads: list[ScalingWorkload]) -> None:
        self.config = Config.model_validate({
            "kubernetes": {"enabled": True},
            "serving": {"interval": "5s", "window": "30s",
                        "discovery": {"label_selector": "ai-signals.io/serving=true"}}})
        self.state = AppState()
        self.workloads = workloads
        self.selection = ServingSelection(self.config.serving.discovery)

    def tick(self, now: float) -> None:
        kube = self.state.kube
        kube.pods, kube.deployments = {}, {}
        for w in self.workloads:
            w.advance(now)
            kube.deployments[f"{w.namespace}/{w.name}"] = workload_from_json(w.deployment_object(), "Deployment")
            for p in w.pods:
                kube.pods[p.uid] = pod_from_json(w.pod_object(p, now))
                if not p.ready(now):  # the engine answers /metrics once loaded
                    continue
                url = f"http://{w.namespace}.{p.name}:8000/metrics"
                h = self.state.serving.get(url)
                if h is None:
                    h = self.state.serving[url] = TargetHistory(url, TargetIdentity(
                        w.namespace, p.name, "Deployment", w.name, capacity_tokens_per_second=w.capacity), "vllm")
                snap = w.snapshot(p)
                h.append(now, snap, keep_seconds(self.config.serving.window, self.config.serving.interval))
                note_tokens(h, now, snap)
        kube.synced = {"pods", "nodes", "deployments"}
        track(self.state[COLDSTART], kube.pods.values(), self.selection, self.state.serving.values(), now)

    def samples(self, now: float) -> list[tuple[dict[str, str], float, float]]:
        fams = serving.derive(self.state, self.config, now) + serving_lifecycle.derive(self.state, self.config, now)
        text = render(fams).decode()
        return [({"__name__": s.name, **s.labels}, s.value, now)
                for fam in text_string_to_metric_families(text) for s in fam.samples]


def evaluate_rules(url: str, rules: list[tuple[str, str]], now: float) -> None:
    for record, expr in rules:  # in file order: later rules read earlier results, as in a group
        out = [({**r["metric"], "__name__": record}, float(r["value"][1]), now) for r in query(url, expr, now)]
        push(url, out)


TOLERANCE = 0.1  # the HPA's default --horizontal-pod-autoscaler-tolerance


def desired(current: int, multiplier: int, ratio: float | None, waiting: float | None,
            targets: dict[str, float]) -> int:
    """Per metric: Value target -> current when within the tolerance, else
    ceil(multiplier x metric / target) (the HPA multiplies by its ready pods); AverageValue
    target -> ceil(total / target) unless total / (target x current) is within the tolerance.
    The largest proposal wins, within min/max."""
    proposals = []
    if ratio is not None:
        usage = ratio / targets["ai_serving_token_capacity_ratio"]
        proposals.append(current if abs(usage - 1) <= TOLERANCE else math.ceil(multiplier * usage))
    if waiting is not None:
        target = targets["ai_serving_requests_waiting"]
        within = abs(waiting / (target * current) - 1) <= TOLERANCE
        proposals.append(current if within else math.ceil(waiting / target))
    if not proposals:
        return current
    return int(min(targets["max"], max(targets["min"], *proposals)))


class Stabilizer:
    """The HPA's behavior stabilization (stabilizeRecommendationWithBehaviors): scale up to the
    lowest recommendation of the last scaleUp window, down to the highest of the scaleDown
    window.  Rate policies (pods per period) are left out: they would slow both rule sets alike."""

    def __init__(self, up: float, down: float) -> None:
        self.up, self.down, self.recs = up, down, []

    def __call__(self, now: float, current: int, raw: int) -> int:
        self.recs.append((now, raw))
        up = min(r for t, r in self.recs if t > now - self.up)
        down = max(r for t, r in self.recs if t > now - self.down)
        return min(max(current, up), down)


def one(url: str, expr: str, now: float) -> float | None:
    res = query(url, expr, now)
    return float(res[0]["value"][1]) if res else None


def test_starting_replicas_counted_do_not_overshoot(tmp_path):
    targets = hpa_targets()
    need = math.ceil(AFTER / (CAPACITY * targets["ai_serving_token_capacity_ratio"]))
    profile = StartProfile(scheduling=3, init=90, startup=30)
    runs = {ns: ScalingWorkload(ns, "llama", load, capacity=CAPACITY, profile=profile) for ns in MODELS}
    for w in runs.values():
        w.scale(2, T0, ready=True)
    exporter = Exporter(list(runs.values()))
    rules = recording_rules()
    history: dict[str, list[tuple[float, int, int, float | None, int, int]]] = {ns: [] for ns in runs}
    stabilize = {ns: Stabilizer(targets["up_window"], targets["down_window"]) for ns in runs}
    with prometheus(tmp_path / "prom", {"global": {"scrape_interval": "15s"}},
                    ("--web.enable-remote-write-receiver",)) as url:
        t = T0
        while t <= T0 + DURATION:
            exporter.tick(t)
            if (t - T0) % 15 == 0:
                push(url, exporter.samples(t))
                evaluate_rules(url, rules, t)
                if t - T0 >= 30:  # rates need a few scrapes
                    for ns, w in runs.items():
                        ratio_q, waiting_q, all_replicas = MODELS[ns]
                        ratio = one(url, ratio_q, t)
                        waiting = one(url, waiting_q, t) if waiting_q else None
                        current, ready = len(w.pods), len(w.ready_pods(t))
                        raw = desired(current, current if all_replicas else ready, ratio, waiting, targets)
                        wanted = stabilize[ns](t, current, raw)
                        history[ns].append((t - T0, ready, current - ready, ratio, raw, wanted))
                        w.scale(wanted, t)  # (the simulated workload only scales up)
            t += 5
        # The cold-start histogram of the new replicas reached Prometheus through the rules.
        p90 = one(url, 'workload:ai_serving_cold_start_seconds:p90{namespace="hpa",phase="total"}', T0 + DURATION)
        init = one(url, 'workload:ai_serving_cold_start_seconds:mean{namespace="hpa",phase="init"}', T0 + DURATION)

    for ns in runs:
        print(f"\n{ns}: t(s) ready starting capacity_ratio raw_recommendation desired")
        for row in history[ns]:
            if row[0] % 30 == 0 or row[0] <= 240:
                print("  %4d %3d %3d %6s %3d %3d" % (row[0], row[1], row[2],
                                                     "-" if row[3] is None else f"{row[3]:.2f}", row[4], row[5]))
    peak = {ns: max(r[5] for r in history[ns]) for ns in runs}
    raw = {ns: max(r[4] for r in history[ns]) for ns in runs}
    final = {ns: len(w.pods) for ns, w in runs.items()}
    print(f"\nneed {need} replicas; max desired (after the shipped 60 s scale-up stabilization) {peak},"
          f" max raw recommendation {raw}, final replicas {final};"
          f" cold start p90 total {p90:.0f} s, mean init {init:.0f} s")
    for ns in ("hpa", "current-per-replica"):
        assert peak[ns] <= need + 1, (ns, history[ns])
        assert final[ns] >= need, (ns, history[ns])  # and it does scale to what the load needs
    # An autoscaler multiplying by all replicas overshoots on the average over ready pods.
    assert peak["current-avg"] > need + 1, history["current-avg"]
    assert 120 <= p90 <= 180 and 85 <= init <= 95
