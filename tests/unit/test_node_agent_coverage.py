"""Serving pods nobody scrapes in the node-agent topology: the cluster instance counts the
selected, running serving pods on nodes with no ready node-agent pod
(ai_signals_exporter_serving_pods_without_node_agent, docs/deploy.md)."""

from __future__ import annotations

import pytest

from ai_signals_exporter.config import ServingDiscovery, load_config_text
from ai_signals_exporter.serving.selection import ServingSelection, pods_without_node_agent
from ai_signals_exporter.signals import selfmon
from ai_signals_exporter.sim.objects import make_pod
from ai_signals_exporter.sources.kube_objects import pod_from_json
from ai_signals_exporter.state import AppState

AGENTS = "app.kubernetes.io/name=ai-signals-exporter,ai-signals.io/role=node"
AGENT_LABELS = {"app.kubernetes.io/name": "ai-signals-exporter", "ai-signals.io/role": "node"}
SERVING = {"ai-signals.io/serving": "true"}
SELECTION = ServingSelection(ServingDiscovery(label_selector="ai-signals.io/serving=true"))


def pod(name, node, labels, **kw):
    return pod_from_json(make_pod("ns", name, node=node, labels=labels, **kw))


def cluster():
    return [
        pod("agent-a", "gpu-a", AGENT_LABELS, owner=("DaemonSet", "agent")),
        pod("agent-b", "gpu-b", AGENT_LABELS, owner=("DaemonSet", "agent"), ready=False),  # crash-looping
        pod("llm-a", "gpu-a", SERVING),        # scraped by agent-a
        pod("llm-b", "gpu-b", SERVING),        # agent not ready: nobody
        pod("llm-cpu", "cpu-1", SERVING),      # no agent on CPU nodes: nobody
        pod("web", "cpu-1", {}),               # not a serving pod
        pod("llm-pending", "", SERVING, phase="Pending", ready=False),  # nowhere yet: not counted
        pod("llm-done", "cpu-1", SERVING, phase="Succeeded", ready=False),
    ]


def test_counts_serving_pods_on_nodes_without_a_ready_agent():
    assert pods_without_node_agent(cluster(), SELECTION, AGENTS) == 2


def test_a_node_that_gets_its_agent_is_covered():
    pods = cluster() + [pod("agent-c", "cpu-1", AGENT_LABELS, owner=("DaemonSet", "agent"))]
    assert pods_without_node_agent(pods, SELECTION, AGENTS) == 1
    # Another workload's pods with only one of the agent labels do not count as agents.
    impostor = pod("other", "gpu-b", {"ai-signals.io/role": "node"})
    assert pods_without_node_agent(pods + [impostor], SELECTION, AGENTS) == 1


def _config(extra: str):
    return load_config_text(
        "global: {role: cluster}\nkubernetes:\n  enabled: true\n" + extra
        + "serving:\n  discovery: {label_selector: ai-signals.io/serving=true}\n", "test")


def _gauge(config, state):
    fams = {f.name: f for f in selfmon.derive(state, config, 0.0)}
    return [s for s in fams[selfmon.WITHOUT_AGENT.name].samples]


def test_cluster_instance_reports_the_count_only_when_told_the_agents():
    state = AppState()
    for p in cluster():
        state.kube.pods[p.uid] = p
    (sample,) = _gauge(_config(f"  node_agent_selector: {AGENTS}\n"), state)
    assert sample[2] == 2
    assert _gauge(_config(""), state) == []  # single instance or shards: no agents to miss


@pytest.mark.parametrize("extra,needle", [
    ("  node_agent_selector: 'a in (b'\n", "node_agent_selector"),
    (f"  node_scope: gpu-1\n  node_agent_selector: {AGENTS}\n", "cluster instance"),
])
def test_bad_node_agent_selector_is_a_clear_config_error(extra, needle):
    with pytest.raises(Exception) as exc:
        _config(extra)
    assert needle in str(exc.value)
