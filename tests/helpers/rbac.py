"""What a rendered workload may do in the cluster: its pods' ServiceAccount, the
(Cluster)RoleBindings naming it and the rules of the roles they bind, as (apiGroup, resource,
verb) triples.  Shared by the deploy checks and the least-privilege derivation."""

from __future__ import annotations

WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples; wildcards would show up as '*' and fail a compare."""
    out = set()
    for r in rules:
        assert not r.get("nonResourceURLs") and not r.get("resourceNames"), r
        for g in r.get("apiGroups", []):
            for res in r.get("resources", []):
                for v in r.get("verbs", []):
                    out.add((g, res, v))
    return out


def service_account(docs: list[dict], workload: dict) -> tuple[str, str]:
    """(namespace, name) of the ServiceAccount the workload's pods run as; it must be rendered."""
    ns = workload["metadata"]["namespace"]
    name = workload["spec"]["template"]["spec"].get("serviceAccountName", "default")
    found = [d for d in docs if d["kind"] == "ServiceAccount"
             and (d["metadata"]["namespace"], d["metadata"]["name"]) == (ns, name)]
    assert len(found) == 1, f"{workload['metadata']['name']}: ServiceAccount {ns}/{name} not rendered"
    return ns, name


def bound_roles(docs: list[dict], sa: tuple[str, str]) -> list[dict]:
    """The roles every binding naming the ServiceAccount grants it (ClusterRoleBindings; a
    RoleBinding would scope a role to one namespace, which this project never ships)."""
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    out = []
    for b in (d for d in docs if d["kind"] == "ClusterRoleBinding"):
        if {"kind": "ServiceAccount", "name": sa[1], "namespace": sa[0]} in b.get("subjects", []):
            assert b["roleRef"]["kind"] == "ClusterRole" and b["roleRef"]["name"] in roles, b["roleRef"]
            out.append(roles[b["roleRef"]["name"]])
    return out


def workload_grants(docs: list[dict], workload: dict) -> set[tuple[str, str, str]]:
    return set().union(*(grants(r["rules"]) for r in bound_roles(docs, service_account(docs, workload))))
