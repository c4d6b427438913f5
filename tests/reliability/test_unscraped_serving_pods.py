"""End to end over the watch: the daemonset overlay's cluster instance, with its shipped
ConfigMap, reports the serving pods no node agent scrapes, and stops when an agent becomes
ready on their node (docs/deploy.md; the pure count is in tests/unit/test_node_agent_coverage.py)."""

from __future__ import annotations

from ai_signals_exporter.sim.objects import make_node, make_pod

from ..helpers.kube import running_kube_api
from .common import eventually, running_exporter
from .test_rbac import render, workload_config

GAUGE = "ai_signals_exporter_serving_pods_without_node_agent"
AGENT = {"app.kubernetes.io/name": "ai-signals-exporter", "ai-signals.io/role": "node"}


async def test_cluster_instance_counts_serving_pods_until_their_node_has_an_agent(tmp_path) -> None:
    docs = render("overlays/daemonset")
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"]
    config = workload_config(docs, deploy)
    async with running_kube_api() as api:
        api.add(make_node("gpu-1"))
        api.add(make_node("cpu-1", gpus=0))
        api.add(make_pod("ai-signals", "agent-gpu-1", node="gpu-1", owner=("DaemonSet", "agent"), labels=AGENT))
        api.add(make_pod("llm", "on-gpu", node="gpu-1", labels={"ai-signals.io/serving": "true"}))
        api.add(make_pod("llm", "on-cpu", node="cpu-1", labels={"ai-signals.io/serving": "true"}))
        api.add(make_pod("web", "frontend", node="cpu-1", labels={"app": "web"}))
        config["kubernetes"].update(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")),
                                    watch_timeout="5s", request_timeout="2s", backoff_max="300ms")
        async with running_exporter(config) as ex:
            state = ex.exporter.state

            def gauge() -> float | None:
                got = ex.families({GAUGE}).get(GAUGE)
                return got[0][1] if got else None

            await eventually(lambda: state.kube.pods_synced and len(state.kube.pods) == 4, timeout=15)
            assert gauge() == 1  # on-cpu: the DaemonSet's nodeSelector leaves cpu-1 out
            api.add(make_pod("ai-signals", "agent-cpu-1", node="cpu-1", owner=("DaemonSet", "agent"),
                             labels=AGENT))  # the selector widened
            await eventually(lambda: gauge() == 0, timeout=15)
