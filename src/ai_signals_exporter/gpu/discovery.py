"""dcgm-exporter targets from Kubernetes state: pods matching a label selector, one per node."""

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
    label_selector: str,
    namespaces: list[str],
    port: int,
    path: str,
    node_scope: str | None = None,
) -> list[DcgmEndpoint]:
    """Running, non-terminating dcgm-exporter pods with an IP; the node is the pod's placement."""
    selector = parse_selector(label_selector)  # SelectorError on a bad selector: a config error
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
        if not selector.matches(pod.labels):
            continue
        host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
        out.append(
            DcgmEndpoint(f"http://{host}:{port}{path}", pod.node, (pod.namespace, pod.name))
        )
    out.sort(key=lambda e: e.url)
    return out
