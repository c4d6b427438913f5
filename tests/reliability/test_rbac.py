"""Least privilege, derived rather than asserted: run each shipped workload (every overlay's
Deployment, DaemonSet, StatefulSet) with the config its pods mount against the test API server,
drive it through watch drops and a 410 relist, log every API call, derive the RBAC rules those
calls need, and compare them with what the ServiceAccount of that workload is bound to in what
`kubectl kustomize deploy/...` renders: no verb missing, no grant extra, per workload (the node
agents of the daemonset overlay have their own ServiceAccount and ClusterRole).

Pod Security "restricted" for the workload is proven in
tests/rules/test_deploy.py::test_workload_passes_pod_security_restricted (not repeated here).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ai_signals_exporter.sim.kubeapi import rbac_rules
from ai_signals_exporter.sim.objects import make_node, make_pod

from ..helpers.kube import running_kube_api
from ..helpers.rbac import WORKLOAD_KINDS, grants, workload_grants
from .common import eventually, running_exporter

# Timing-sensitive: also run under a CPU hog by scripts/test (-m timing).
pytestmark = pytest.mark.timing

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# Non-resource paths every authenticated client may GET through the default
# system:discovery / system:public-info-viewer ClusterRoles: no grant of ours needed.
DISCOVERY_PREFIXES = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is a test dependency (scripts/test installs it)"
    out = subprocess.run([kubectl, "kustomize", str(DEPLOY / overlay)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


# (overlay, workload kind, the consumers the role of its shipped config runs)
WORKLOADS = [
    ("base", "Deployment", ("serving", "gpu", "checkpoints")),
    # Node agents: node-local work only, no quota, event or workload watch.
    ("overlays/daemonset", "DaemonSet", ("serving", "gpu")),
    ("overlays/daemonset", "Deployment", ("checkpoints",)),  # the cluster instance
    ("overlays/sharded", "StatefulSet", ("serving", "gpu", "checkpoints")),
]
OVERLAYS = sorted({o for o, _, _ in WORKLOADS})


def test_every_shipped_workload_has_its_rbac_derived() -> None:
    """A workload added to an overlay without a row above would keep whatever it is bound to."""
    shipped = {(o, d["kind"]) for o in OVERLAYS for d in render(o) if d["kind"] in WORKLOAD_KINDS}
    assert shipped == {(o, k) for o, k, _ in WORKLOADS}
    assert {p.parent.name for p in (DEPLOY / "overlays").glob("*/kustomization.yaml")} == \
        {o.split("/")[1] for o in OVERLAYS if "/" in o}


def workload_config(docs: list[dict], w: dict) -> dict:
    volume = next(v for v in w["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"]]
    return yaml.safe_load(cm["data"]["config.yaml"])


@pytest.mark.parametrize("overlay,kind,consumers", WORKLOADS, ids=[f"{o}:{k}" for o, k, _ in WORKLOADS])
async def test_service_account_grants_equal_the_calls_the_code_makes(overlay, kind, consumers, tmp_path,
                                                                     monkeypatch) -> None:
    docs = render(overlay)
    (w,) = [d for d in docs if d["kind"] == kind]
    granted = workload_grants(docs, w)
    config = workload_config(docs, w)
    # The downward-API variables of the DaemonSet and the StatefulSet.
    monkeypatch.setenv("NODE_NAME", "gpu-1")
    monkeypatch.setenv("POD_NAME", f"{w['metadata']['name']}-0")
    if config.get("global", {}).get("total_shards"):
        # Which keys a shard owns changes none of its API calls (every shard lists and watches
        # all pods and nodes); one shard of one owns the test's few objects, so every consumer runs.
        config["global"]["total_shards"] = 1

    async with running_kube_api() as api:
        api.add(make_node("gpu-1"))
        api.add(make_node("cpu-1", gpus=0))
        # One pod per consumer, so every discovery path runs over real objects.
        api.add(make_pod("gpu-operator", "dcgm-exporter-x", node="gpu-1", owner=("DaemonSet", "dcgm"),
                         labels={"app": "nvidia-dcgm-exporter"}, ip="127.0.0.1"))
        api.add(make_pod("llm", "llama-0", node="gpu-1", owner=("Deployment", "llama"), gpu=1,
                         labels={"ai-signals.io/serving": "true"}, ip="127.0.0.1"))
        api.add(make_pod("ml", "train-0", node="gpu-1", owner=("Job", "train"), gpu=1,
                         annotations={"ai-signals.io/checkpoint-uri": (tmp_path / "ckpt").as_uri()}))
        (tmp_path / "ckpt").mkdir()
        kube = config.setdefault("kubernetes", {})
        kube.update(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")),
                    watch_timeout="5s", request_timeout="2s", backoff_max="300ms")
        config["global"] = {**config.get("global", {}), "refresh_interval": "100ms"}
        config.setdefault("serving", {}).update(interval="500ms", window="5s", timeout="300ms")
        config.setdefault("gpu", {}).update(interval="500ms", timeout="300ms")
        if "checkpoints" in consumers:
            config.setdefault("checkpoints", {}).update(interval="500ms")

        async with running_exporter(config) as ex:
            state = ex.exporter.state

            def consumers_ran() -> bool:
                sm = state.selfmon.targets
                return (state.kube.pods_synced and state.kube.nodes_synced and api.watch_count() >= 2
                        and all(any(k[0] == c for k in sm) for c in consumers))

            await eventually(consumers_ran, timeout=20)
            # Issue 12: a node agent no longer lists the checkpoint store of the job on its node
            # (each node of a multi-node job did); the cluster instance no longer scrapes.
            ran = {k[0] for k in state.selfmon.targets}
            assert ran & {"serving", "gpu", "checkpoints"} == set(consumers)
            api.drop_watches()  # re-watch path
            await eventually(lambda: api.watch_count() >= 2, timeout=10)
            api.set_down(True)  # relist path after 410 Gone
            api.add(make_pod("llm", "llama-1", node="gpu-1", labels={"ai-signals.io/serving": "true"}))
            api.compact()
            api.set_down(False)
            await eventually(lambda: ("llm", "llama-1") in {(p.namespace, p.name) for p in state.kube.pods.values()},
                             timeout=15)
            await eventually(lambda: api.watch_count() >= 2, timeout=10)

    calls = [r for r in api.requests if r[0] != "unavailable"]  # 503s while we held it down
    assert not [r for r in calls if r[0] not in ("get", "list", "watch")], "only reads, ever"
    for verb, path, resource in calls:
        if not resource:
            assert verb == "get" and path.startswith(DISCOVERY_PREFIXES), (verb, path)
    needed = grants(rbac_rules(calls))
    assert needed == granted, f"missing: {sorted(needed - granted)}; extra: {sorted(granted - needed)}"
    # The derivation saw real traffic: lists and watches of both resources.
    assert {("", r, v) for r in ("pods", "nodes") for v in ("list", "watch")} <= needed


def test_derivation_notices_a_missing_grant() -> None:
    """The comparison is not vacuous: a role without `watch` on nodes differs from the calls."""
    calls = [("list", "/api/v1/nodes", "nodes"), ("watch", "/api/v1/nodes", "nodes")]
    narrow = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    assert grants(rbac_rules(calls)) - grants(narrow) == {("", "nodes", "watch")}


# Enabling a resource (an area asks KubeSource for it) must add exactly its list and watch, in
# its own API group, and nothing else: the ClusterRole then grows by one rule per resource.
_EXTRA = {
    "resourcequotas": "",
    "events": "",
    "deployments": "apps",
    "statefulsets": "apps",
    "leaderworkersets": "leaderworkerset.x-k8s.io",
}


async def _calls_with(resources: list[str], tmp_path: Path) -> set[tuple[str, str, str]]:
    from ai_signals_exporter.state import AppState

    from ..helpers.kube import kube_config, running_kube_source, wait_for

    async with running_kube_api() as api:
        api.add(make_node("gpu-1"))
        api.add(make_pod("llm", "llama-0", node="gpu-1", owner=("Deployment", "llama"), gpu=1))
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state, resources=resources):
            await wait_for(lambda: set(resources) <= state.kube.synced and api.watch_count() == len(resources))
            api.drop_watches()  # the re-watch path too
            await wait_for(lambda: api.watch_count() == len(resources))
    return grants(rbac_rules(api.requests))


@pytest.mark.parametrize("resource", sorted(_EXTRA))
async def test_enabling_a_resource_adds_exactly_its_list_and_watch(resource, tmp_path) -> None:
    base = await _calls_with(["pods", "nodes"], tmp_path)
    assert base == {("", r, v) for r in ("pods", "nodes") for v in ("list", "watch")}
    grown = await _calls_with(["pods", "nodes", resource], tmp_path)
    assert grown - base == {(_EXTRA[resource], resource, "list"), (_EXTRA[resource], resource, "watch")}
    assert base <= grown
