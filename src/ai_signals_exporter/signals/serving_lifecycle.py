"""Serving replicas over their life: cold-start phases, replicas by state, and sample age.

Part of the serving area (areas.py renders these after signals/serving.py).  Pure: reads the
cold-start tracker's histograms (serving/coldstart.py, advanced by the serving source), the kube
records and the serving histories.

Why the autoscaling rules need these (docs/deploy.md): a replica still loading weights serves no
tokens, so an average over the pods that report rates says "saturated" until it is ready, and an
HPA multiplying that by the replica count keeps adding replicas; a workload at zero replicas has
no per-pod series at all; a dead pod's last values must not hold an average up.
"""

from __future__ import annotations

from ..config import Config
from ..expo.families import Family, FamilySpec
from ..serving.coldstart import COLDSTART, PHASES  # noqa: F401 (PHASES documented with the family)
from ..serving.selection import ServingSelection, annotation_number
from .serving import LABELS, model_labels
from ..state import AppState

WORKLOAD_LABELS = ("namespace", "workload_kind", "workload")
STATES = ("starting", "ready", "terminating")
BOUND_ANNOTATION = "ai-signals.io/cold-start-bound-seconds"

COLD_START = FamilySpec(
    "ai_serving_cold_start_seconds", "histogram",
    "Seconds per cold-start phase of a serving pod (scheduling, init, startup, first_token, total), "
    "one observation per phase per pod start.", (*WORKLOAD_LABELS, "phase"),
)
REPLICAS = FamilySpec(
    "ai_serving_replicas", "gauge",
    "Serving pods per workload by state (starting: not yet ready; ready; terminating), "
    "0 for selected workloads with no pods in that state.", (*WORKLOAD_LABELS, "state"),
)
SAMPLE_AGE = FamilySpec(
    "ai_serving_sample_age_seconds", "gauge",
    "Seconds since the newest successful scrape of the pod, the sample its rates end at.", LABELS,
)
COLD_START_BOUND = FamilySpec(
    "ai_serving_cold_start_bound_seconds", "gauge",
    "A workload's cold-start bound from the pod annotation ai-signals.io/cold-start-bound-seconds "
    "(ServingColdStartSlow uses its default where absent).", WORKLOAD_LABELS,
)
FAMILIES = (COLD_START, REPLICAS, SAMPLE_AGE, COLD_START_BOUND)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    cold, replicas, age, bound = (spec.new() for spec in FAMILIES)
    cs = state[COLDSTART]
    for (key, phase), hist in sorted(cs.histograms.items()):
        labels = (*key, phase)
        for le, n in hist.cumulative():
            cold.add(labels, n, "_bucket", (("le", le),))
        cold.add(labels, hist.sum, "_sum")
        cold.add(labels, hist.count, "_count")

    for history in state.serving.values():
        if not history.samples:
            continue
        ts, snapshot = history.samples[-1]
        for model in snapshot:
            age.add(model_labels(history, model), max(0.0, now - ts))

    # Replicas need every pod of a workload, pending ones included: the node agents of the
    # DaemonSet topology see only their node's pods, so only a cluster-scope instance counts them.
    kc, discovery = config.kubernetes, config.serving.discovery
    if kc.enabled and discovery.enabled and not kc.node_scope:
        _replicas(state, ServingSelection(discovery), replicas, bound)
    return [cold, replicas, age, bound]


def _replicas(state: AppState, selection: ServingSelection, replicas: Family, bound: Family) -> None:
    kube = state.kube
    counts: dict[tuple[str, str, str], dict[str, int]] = {}
    bounds: dict[tuple[str, str, str], float] = {}
    for store in (kube.deployments, kube.statefulsets, kube.leaderworkersets):
        for w in store.values():
            if selection.workload(w):
                key = (w.namespace, w.kind, w.name)
                counts.setdefault(key, dict.fromkeys(STATES, 0))
                b = annotation_number(w.annotations.get(BOUND_ANNOTATION))
                if b is not None:
                    bounds[key] = b
    for pod in kube.pods.values():
        if pod.phase in ("Succeeded", "Failed") or not selection.pod(pod):
            continue
        key = (pod.namespace, pod.workload_kind, pod.workload)
        by_state = counts.setdefault(key, dict.fromkeys(STATES, 0))
        if pod.deleting or pod.deleted_at is not None:
            by_state["terminating"] += 1
        elif pod.ready:
            by_state["ready"] += 1
        else:
            by_state["starting"] += 1
        b = annotation_number(pod.annotations.get(BOUND_ANNOTATION))
        if b is not None:
            bounds.setdefault(key, b)
    for key in sorted(counts):
        for st in STATES:
            replicas.add((*key, st), counts[key][st])
    for key in sorted(bounds):
        bound.add(key, bounds[key])
