"""dcgm-exporter targets from Kubernetes state: pods matching any of the label selectors, one per
node, scraped on their container port named `metrics` (the configured port when none is named)."""

from __future__ import annotations

from dataclasses import dataclass

from ..labelselector import parse_selector
from ..state import KubeState


@dataclass(slots=True, frozen=True)
class DcgmEndpoint:
    url: str
    node: str | None  # None = take it from the payload's Hostname label
    own_pod: tuple[str, str] | None = None  # the dcgm-exporter pod itself, when discovered


def discover(
    kube: KubeState,
    label_selectors: str | list[str],
    namespaces: list[str],
    port: int,
    path: str,
    node_scope: str | None = None,
    port_name: str = "metrics",
) -> list[DcgmEndpoint]:
    """Running, non-terminating dcgm-exporter pods with an IP; the node is the pod's placement."""
    if isinstance(label_selectors, str):
        label_selectors = [label_selectors]
    # SelectorError on a bad selector: a config error
    selectors = [parse_selector(s) for s in label_selectors]
    ns_filter = set(namespaces)
    if not path.startswith("/"):
        path = "/" + path
    out = []
    for pod in kube.pods.values():
        if pod.phase != "Running" or not pod.ip or pod.deleting or not pod.node:
            continue
        if ns_filter and pod.namespace not in ns_filter:
            continue
        if node_scope and pod.node != node_scope:
            continue
        if not any(selector.matches(pod.labels) for selector in selectors):
            continue
        host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
        pod_port = pod.named_port((port_name,), port)
        out.append(
            DcgmEndpoint(f"http://{host}:{pod_port}{path}", pod.node, (pod.namespace, pod.name))
        )
    out.sort(key=lambda e: e.url)
    return out
