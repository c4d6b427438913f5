"""deploy/: manifests render with kustomize, validate against the Kubernetes schemas, pass Pod
Security "restricted", grant least privilege, and the PrometheusRule matches rules/ exactly."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from ai_signals_exporter.config import Config, load_config_text
from ai_signals_exporter.labelselector import parse_selector

from ..helpers.rbac import grants, service_account, workload_grants
from .rulepack import DASHBOARDS, DEPLOY, REPO, all_rules, need, rule_files

K8S_VERSION = "1.30.0"
GRAFANA_LABEL = "grafana_dashboard"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject"}


def render(path: str) -> list[dict]:
    out = subprocess.run([need("kubectl"), "kustomize", str(DEPLOY / path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


OVERLAYS = ["base", "overlays/daemonset", "overlays/sharded"]
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> list[dict]:
    return render(request.param)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def workloads(docs: list[dict]) -> list[dict]:
    found = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    assert found
    return found


# --- Pod Security Standard "restricted" (v1.30 definition), plus read-only root filesystem ---

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}


def restricted_violations(pod_spec: dict) -> list[str]:
    v = []
    psc = pod_spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            v.append(f"{key} is set")
    for vol in pod_spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            v.append(f"volume {vol['name']} uses {sorted(kinds - ALLOWED_VOLUMES)}")
    if psc.get("runAsUser") == 0:
        v.append("pod runAsUser 0")
    containers = (pod_spec.get("initContainers") or []) + pod_spec["containers"]
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            v.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            v.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            v.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            v.append(f"{name}: adds capabilities")
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            v.append(f"{name}: runAsNonRoot must be true")
        if sc.get("runAsUser") == 0:
            v.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            v.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            v.append(f"{name}: hostPort")
        if sc.get("readOnlyRootFilesystem") is not True:
            v.append(f"{name}: readOnlyRootFilesystem must be true")
    return v


def test_restricted_checker_rejects_a_privileged_pod():
    bad = {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
           "containers": [{"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                           "ports": [{"containerPort": 1, "hostPort": 1}]}]}
    v = "\n".join(restricted_violations(bad))
    for needle in ("hostNetwork", "hostPath", "privileged", "allowPrivilegeEscalation", "drop ALL",
                   "adds capabilities", "runAsNonRoot", "seccompProfile", "hostPort", "readOnlyRootFilesystem"):
        assert needle in v


def test_workload_passes_pod_security_restricted(rendered):
    for w in workloads(rendered):
        assert restricted_violations(w["spec"]["template"]["spec"]) == [], w["metadata"]["name"]
    (ns,) = by_kind(rendered, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- schemas ---

def test_core_objects_validate_against_kubernetes_schemas(rendered):
    kinds = set()
    for doc in rendered:
        if doc["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        kinds.add(doc["kind"])
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "ConfigMap",
            "NetworkPolicy"} <= kinds
    assert kinds & set(WORKLOAD_KINDS)


def test_schema_validation_catches_a_mistake():
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
                                      "spec": {"portz": []}}, K8S_VERSION, strict=True)


def check_crd_shape(doc: dict) -> None:
    """No CRD schemas ship offline: strict structural checks of the fields we use instead."""
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}
        for ep in spec["endpoints"]:
            assert set(ep) <= {"port", "interval", "scrapeTimeout", "honorLabels", "relabelings", "path"}
    elif doc["kind"] == "PrometheusRule":
        assert doc["apiVersion"] == "monitoring.coreos.com/v1"
        assert set(spec) == {"groups"}
        for g in spec["groups"]:
            assert set(g) <= {"name", "interval", "rules"}
            for r in g["rules"]:
                assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations"}
                assert ("alert" in r) != ("record" in r)
    elif doc["kind"] == "ScaledObject":
        assert doc["apiVersion"] == "keda.sh/v1alpha1"
        assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
                             "cooldownPeriod", "fallback", "triggers", "advanced"}
        for t in spec["triggers"]:
            assert set(t) <= {"type", "name", "metricType", "metadata"}
            assert t["metricType"] in ("AverageValue", "Value", "Utilization")
            assert all(isinstance(v, str) for v in t["metadata"].values())


def test_crds_have_the_expected_shape(rendered):
    crds = [d for d in rendered if d["kind"] in CRD_KINDS]
    assert {d["kind"] for d in crds} == {"ServiceMonitor", "PrometheusRule"}
    for doc in crds:
        check_crd_shape(doc)


# --- RBAC, networking, wiring ---

READ = ("list", "watch")
# pods and nodes: every instance (node agents watch their node's with field selectors, which RBAC
# cannot narrow).  resourcequotas and events: the scheduling area (GPU quota, FailedCreate quota
# rejections).  The workloads serving discovery selects (replicas at zero).  The last three are
# cluster-scope work: node agents do not get them (tests/reliability/test_rbac.py derives each
# workload's exact set from the calls its code makes).
NODE_GRANTS = {("", r, v) for r in ("pods", "nodes") for v in READ}
CLUSTER_GRANTS = NODE_GRANTS | {(g, r, v) for g, r in [("", "resourcequotas"), ("", "events"),
                                                       ("apps", "deployments"), ("apps", "statefulsets"),
                                                       ("leaderworkerset.x-k8s.io", "leaderworkersets")]
                                for v in READ}


def test_each_workload_is_bound_to_read_only_grants_of_its_role(rendered, monkeypatch):
    for role in by_kind(rendered, "ClusterRole"):
        assert {v for _, _, v in grants(role["rules"])} <= set(READ), role["metadata"]["name"]
    accounts = {}
    for w in workloads(rendered):
        sa = service_account(rendered, w)
        assert sa != (w["metadata"]["namespace"], "default")
        want = NODE_GRANTS if workload_config(rendered, w, monkeypatch).topology.role == "node" else CLUSTER_GRANTS
        assert workload_grants(rendered, w) == want, w["metadata"]["name"]
        accounts.setdefault(sa, set()).add(frozenset(want))
    # Workloads of different roles never share a ServiceAccount (it would hold the union).
    assert all(len(v) == 1 for v in accounts.values())
    # Nothing rendered is left unbound or unused.
    bound = {(s["namespace"], s["name"]) for b in by_kind(rendered, "ClusterRoleBinding") for s in b["subjects"]}
    assert bound == set(accounts) == {(a["metadata"]["namespace"], a["metadata"]["name"])
                                      for a in by_kind(rendered, "ServiceAccount")}
    assert {b["roleRef"]["name"] for b in by_kind(rendered, "ClusterRoleBinding")} == \
        {r["metadata"]["name"] for r in by_kind(rendered, "ClusterRole")}


def test_node_agents_have_their_own_service_account():
    docs = render("overlays/daemonset")
    (ds,), (deploy,) = by_kind(docs, "DaemonSet"), by_kind(docs, "Deployment")
    assert service_account(docs, ds) != service_account(docs, deploy)
    assert workload_grants(docs, ds) == NODE_GRANTS


def test_service_monitor_and_network_policy_reach_the_pods(rendered):
    # Every instance of every topology is one scrape target of the one ServiceMonitor.
    (svc,) = by_kind(rendered, "Service")
    assert svc["spec"]["ports"][0]["port"] == 9842
    (sm,) = by_kind(rendered, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    ep = sm["spec"]["endpoints"][0]
    assert ep["port"] == svc["spec"]["ports"][0]["name"]
    assert ep["honorLabels"] is True
    (np_,) = by_kind(rendered, "NetworkPolicy")
    assert np_["spec"]["ingress"][0]["ports"] == [{"port": 9842, "protocol": "TCP"}]
    for w in workloads(rendered):
        pod_labels = w["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert np_["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
        assert w["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        container = w["spec"]["template"]["spec"]["containers"][0]
        assert "--web.listen-address=:9842" in container["args"]
        assert container["ports"][0]["containerPort"] == 9842


def _selects(selector: dict, labels: dict) -> bool:
    return selector["matchLabels"].items() <= labels.items()


def test_workload_selectors_do_not_overlap(rendered):
    ws = workloads(rendered)
    for a in ws:
        for b in ws:
            if a is not b:
                assert not _selects(a["spec"]["selector"], b["spec"]["template"]["metadata"]["labels"])


def workload_config(docs: list[dict], w: dict, monkeypatch, ordinal: int = 0) -> Config:
    """The config a workload's pods load, with the downward-API variables of pod `ordinal` on
    node 7."""
    monkeypatch.setenv("NODE_NAME", "gpu-node-7")
    monkeypatch.setenv("POD_NAME", f"{w['metadata']['name']}-{ordinal}")
    volume = next(v for v in w["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    (cm,) = [c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"] == volume["configMap"]["name"]]
    return load_config_text(cm["data"]["config.yaml"], cm["metadata"]["name"])


def test_config_map_holds_a_valid_config(rendered, monkeypatch):
    configs = [c for c in by_kind(rendered, "ConfigMap") if GRAFANA_LABEL not in c["metadata"].get("labels", {})]
    assert len(configs) == len(workloads(rendered)), "one ConfigMap per workload"
    for w in workloads(rendered):
        cfg = workload_config(rendered, w, monkeypatch)  # the hashed generator name resolves
        assert cfg.kubernetes.enabled
        env = w["spec"]["template"]["spec"]["containers"][0].get("env", [])
        if w["kind"] == "DaemonSet":
            assert cfg.kubernetes.node_scope == "gpu-node-7"
            assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in env
        else:
            assert cfg.kubernetes.node_scope is None
        if w["kind"] == "StatefulSet":
            assert {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env


def test_daemonset_overlay_is_node_agents_and_one_cluster_instance(monkeypatch):
    docs = render("overlays/daemonset")
    (ds,) = by_kind(docs, "DaemonSet")
    tolerations = ds["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    (deploy,) = by_kind(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    agent, cluster = workload_config(docs, ds, monkeypatch), workload_config(docs, deploy, monkeypatch)
    assert (agent.topology.role, agent.topology.node) == ("node", "gpu-node-7")
    assert cluster.topology.role == "cluster"
    # The defect of issue 12: a multi-node job's store was listed by every node agent.
    assert not agent.checkpoints.stores and not agent.probes
    assert cluster.checkpoints.discovery.enabled
    # The cluster instance counts replicas of the pods the agents scrape: one selection.
    assert cluster.serving.discovery == agent.serving.discovery
    assert agent.serving.discovery.label_selector
    # Serving pods on nodes the DaemonSet leaves out are counted by the cluster instance: its
    # node_agent_selector picks the agents' pods and nothing else it runs beside them.
    agents = parse_selector(cluster.kubernetes.node_agent_selector)
    assert agents.matches(ds["spec"]["template"]["metadata"]["labels"])
    assert not agents.matches(deploy["spec"]["template"]["metadata"]["labels"])
    assert agent.kubernetes.node_agent_selector is None


def test_sharded_overlay_is_a_statefulset_of_n_shards(monkeypatch):
    docs = render("overlays/sharded")
    assert by_kind(docs, "Deployment") == [] and by_kind(docs, "DaemonSet") == []
    (sts,) = by_kind(docs, "StatefulSet")
    (svc,) = by_kind(docs, "Service")
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == svc["metadata"]["name"]
    replicas = sts["spec"]["replicas"]
    shards = [workload_config(docs, sts, monkeypatch, i).topology for i in range(replicas)]
    assert [(t.shard, t.total_shards, t.role) for t in shards] == [(i, 3, "all") for i in range(3)]


# --- PrometheusRule generated from rules/ ---

def test_prometheusrule_has_not_drifted_from_rules():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_prometheusrule.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all((DEPLOY / "base" / "prometheusrule.yaml").read_text()) if d]
    assert [d["metadata"]["name"] for d in docs] == [f"ai-signals-{p.stem}" for p in rule_files()]
    for doc, path in zip(docs, rule_files()):
        assert doc["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]


def test_drift_check_notices_an_edit(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_prometheusrule
    finally:
        sys.path.pop(0)
    (tmp_path / "x.yaml").write_text("groups:\n- name: g\n  rules:\n  - record: a:b:c\n    expr: up\n")
    assert gen_prometheusrule.render(tmp_path) != gen_prometheusrule.render()


def test_prometheusrule_spec_passes_promtool(tmp_path):
    docs = [d for d in yaml.safe_load_all((DEPLOY / "base" / "prometheusrule.yaml").read_text()) if d]
    files = []
    for doc in docs:
        f = tmp_path / f"{doc['metadata']['name']}.yaml"
        f.write_text(yaml.safe_dump(doc["spec"]))
        files.append(str(f))
    out = subprocess.run([need("promtool"), "check", "rules", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- autoscaling inputs ---

RECORDED = {r["record"] for r in all_rules() if "record" in r}


def test_hpa_validates_and_scales_on_capacity_and_queue():
    hpa = yaml.safe_load((DEPLOY / "autoscaling" / "hpa.yaml").read_text())
    kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
    adapter = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())
    exposed = {}
    for rule in adapter["rules"]:
        series = rule["seriesQuery"].split("{")[0]
        assert series in RECORDED
        exposed[re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), series)] = rule
    names = {m["object"]["metric"]["name"] for m in hpa["spec"]["metrics"]}
    assert names == {"ai_serving_token_capacity_ratio", "ai_serving_requests_waiting"}
    assert names <= set(exposed)
    assert "ai_serving_generation_tokens_per_second" in exposed


def test_keda_scaled_object_uses_recorded_series_and_never_tokens_alone():
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    check_crd_shape(so)
    queries = [t["metadata"]["query"] for t in so["spec"]["triggers"]]
    assert len(queries) == 2
    assert any("ai_serving_requests_waiting" in q for q in queries)
    for q in queries:
        assert set(re.findall(r"workload:[a-z_]+:[a-z]+", q)) <= RECORDED
    assert all(t["metadata"]["ignoreNullValues"] == "false" for t in so["spec"]["triggers"])


# --- dcgm-exporter counters: exactly what the rules and dashboards use ---

# Names the rules accept that are not CSV fields: the pre-rename clock field.
DCGM_ALIASES = {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"}
# Fields only dcgm-exporter >= 4.8.3 knows: in counters-4.8.3.csv, never in counters.csv (an
# unknown DCGM_EXP_* name stops older exporters from starting).
DCGM_NEWER = {"DCGM_EXP_XID_ERRORS_TOTAL"}
DCGM_RE = re.compile(r"\bDCGM_(?:FI|EXP)_[A-Z0-9_]+")


def test_dcgm_exporter_kustomization_ships_the_csv_and_keeps_pod_labels():
    docs = render("dcgm-exporter")
    (cm,) = by_kind(docs, "ConfigMap")
    kubernetes_validate.validate(cm, K8S_VERSION, strict=True)
    assert cm["metadata"]["name"] == "ai-signals-dcgm-counters"
    assert cm["data"]["dcgm-metrics.csv"] == (DEPLOY / "dcgm-exporter" / "counters.csv").read_text()
    (sm,) = by_kind(docs, "ServiceMonitor")
    check_crd_shape(sm)
    assert sm["spec"]["endpoints"][0]["honorLabels"] is True


def _scrape_config_from(sm: dict, job: str, target: str, target_labels: dict) -> dict:
    """The part of the Prometheus Operator's scrape config this ServiceMonitor endpoint controls:
    the operator's own target labels (pod, namespace, container of the scraped pod) first, then
    the endpoint's relabelings, the same order the operator generates."""
    ep = sm["spec"]["endpoints"][0]
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    relabel = [{keys.get(k, k.lower()): v for k, v in r.items()} for r in ep.get("relabelings") or ()]
    return {"job_name": job, "honor_labels": ep.get("honorLabels", False), "metrics_path": "/metrics",
            "scrape_interval": "1s", "static_configs": [{"targets": [target], "labels": target_labels}],
            "relabel_configs": relabel}


def test_dcgm_servicemonitor_never_attributes_a_free_gpu_to_the_exporter_pod(tmp_path):
    # With honorLabels the exporter's own pod labels (the workload) win, but a series without them
    # (an unallocated GPU) would get the target's pod/namespace: the dcgm-exporter pod itself.
    from ..helpers.promstack import prometheus, query, text_server, wait_until

    (sm,) = by_kind(render("dcgm-exporter"), "ServiceMonitor")
    payload = (
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="n1",container="main",namespace="prod",pod="vllm-0"} 50\n'
        'DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",Hostname="n1"} 0\n'
    )
    own = {"pod": "nvidia-dcgm-exporter-x7k2p", "namespace": "gpu-operator", "container": "nvidia-dcgm-exporter"}
    with text_server(lambda path: payload if path == "/metrics" else None) as target:
        cfg = {"global": {"scrape_interval": "1s"},
               "scrape_configs": [_scrape_config_from(sm, "dcgm", target, own)]}
        with prometheus(tmp_path, cfg) as url:
            wait_until(lambda: len(query(url, "DCGM_FI_DEV_GPU_UTIL")) == 2, 30, "dcgm series scraped")
            got = {r["metric"]["UUID"]: r["metric"] for r in query(url, "DCGM_FI_DEV_GPU_UTIL")}
    assert (got["GPU-a"]["namespace"], got["GPU-a"]["pod"], got["GPU-a"]["container"]) == ("prod", "vllm-0", "main")
    assert not {"pod", "namespace", "container"} & set(got["GPU-b"]), got["GPU-b"]


def _enabled(name: str) -> set[str]:
    text = (DEPLOY / "dcgm-exporter" / name).read_text()
    rows = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r and not r[0].startswith("#")]
    assert all(len(r) == 3 and r[1] in ("gauge", "counter", "label") for r in rows)
    return {r[0] for r in rows if r[1] != "label"}


def test_dcgm_counters_csv_enables_exactly_what_is_used():
    enabled = _enabled("counters.csv")
    assert _enabled("counters-4.8.3.csv") == enabled | DCGM_NEWER
    assert not enabled & DCGM_NEWER
    used = set()
    for p in rule_files():
        used |= set(DCGM_RE.findall(p.read_text()))
    for p in DASHBOARDS.glob("*.json"):
        used |= set(DCGM_RE.findall(p.read_text()))
    assert used - DCGM_ALIASES == enabled | DCGM_NEWER


def test_keda_scales_gpu_replicas_down_as_slowly_as_the_hpa_example():
    """KEDA's cooldownPeriod only governs scaling to zero: between min and max replicas the HPA it
    creates scales down after 5 minutes, all surplus replicas at once, unless `advanced` sets
    the behaviour.  A GPU replica takes minutes to load weights: same behaviour as hpa.yaml."""
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    hpa = yaml.safe_load((DEPLOY / "autoscaling" / "hpa.yaml").read_text())
    behavior = so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == hpa["spec"]["behavior"]


def test_adapter_rules_read_only_the_kind_they_expose():
    """The adapter maps the `workload` label to Deployments; without a workload_kind matcher a
    StatefulSet or LeaderWorkerSet of the same name in the namespace would be mixed into the
    Deployment's metric (max/sum over both)."""
    adapter = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())
    for rule in adapter["rules"]:
        assert rule["resources"]["overrides"]["workload"] == {"group": "apps", "resource": "deployment"}
        assert 'workload_kind="Deployment"' in rule["seriesQuery"]
        assert '<<.LabelMatchers>>,workload_kind="Deployment"' in rule["metricsQuery"]


def test_keda_queries_read_only_the_scaled_kind():
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    assert so["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    for trigger in so["spec"]["triggers"]:
        assert 'workload_kind="Deployment"' in trigger["metadata"]["query"]


# --- Grafana dashboards as ConfigMaps (generated from dashboards/) ---

# kubectl apply (client side) keeps the whole object in an annotation limited to 256 KiB.
LAST_APPLIED_LIMIT = 262144


def test_dashboard_configmaps_have_not_drifted_from_dashboards():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_dashboard_configmaps.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_dashboard_drift_check_notices_an_edit(tmp_path):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_dashboard_configmaps
    finally:
        sys.path.pop(0)
    (tmp_path / "x.json").write_text('{"uid": "x", "title": "x", "panels": []}\n')
    assert gen_dashboard_configmaps.render(tmp_path) != gen_dashboard_configmaps.render()


def test_every_dashboard_renders_as_a_labelled_configmap(rendered):
    cms = [c for c in by_kind(rendered, "ConfigMap") if c["metadata"].get("labels", {}).get(GRAFANA_LABEL) == "1"]
    got = {key: value for c in cms for key, value in c["data"].items()}
    want = {p.name: p.read_text() for p in sorted(DASHBOARDS.glob("*.json"))}
    assert want and got == want  # byte for byte, every dashboard, nothing else
    for c in cms:
        kubernetes_validate.validate(c, K8S_VERSION, strict=True)
        assert c["metadata"]["namespace"] == "ai-signals"
        # A stable name (no generator hash): the sidecar replaces the dashboard in place.
        assert c["metadata"]["name"] == "ai-signals-dashboard-" + next(iter(c["data"])).removesuffix(".json")
        assert len(yaml.safe_dump(c)) < LAST_APPLIED_LIMIT
        (body,) = c["data"].values()
        assert json.loads(body)["uid"].startswith("ai-signals-")


# --- one uid/gid for the image and every workload ---

def test_image_and_workloads_run_as_one_uid_and_gid(rendered):
    dockerfile = (REPO / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    uid, gid = int(user[0]), int(user[1])
    assert f"--gid {gid}" in dockerfile and f"--uid {uid} --gid {gid}" in dockerfile  # named entries
    for w in workloads(rendered):
        psc = w["spec"]["template"]["spec"]["securityContext"]
        assert (psc["runAsUser"], psc["runAsGroup"], psc["fsGroup"]) == (uid, gid, gid)
