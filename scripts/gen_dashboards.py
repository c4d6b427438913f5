#!/usr/bin/env python3
"""Generate the Grafana dashboards in dashboards/ (dashboards as code, no extra library).

    scripts/gen_dashboards.py           # write dashboards/*.json
    scripts/gen_dashboards.py --check   # exit 1 when a committed dashboard has drifted

Every panel query is run against a real Prometheus by tests/rules/test_dashboards.py.  DCGM
queries accept both host label spellings (`Hostname` in released dcgm-exporters, `hostname` on
main) and expose them as one `node` label.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ai_signals_exporter.areas import families  # noqa: E402  (the declared metric families)

# ai_* names in a query that are not part of a recording rule's name (level:metric:ops).
AI_METRIC_RE = re.compile(r"(?<![:\w])(ai_[a-z0-9_]+)")
OUT = REPO / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}


def node_norm(expr: str) -> str:
    return f'label_replace(label_replace({expr}, "node", "$1", "Hostname", "(.+)"), "node", "$1", "hostname", "(.+)")'


def dcgm(metric: str, agg: str = "max", by: str = "node, gpu") -> str:
    """A DCGM field per GPU, filtered by $node under either host label, time-slicing/MIG
    duplicates collapsed with max (never summed)."""
    sel = f'{metric}{{Hostname=~"$node"}} or {metric}{{hostname=~"$node"}}'
    return f"{agg} by ({by}) ({node_norm(sel)})"


def dcgm_rate(metric: str) -> str:
    sel = f'rate({metric}{{Hostname=~"$node"}}[$__rate_interval]) or rate({metric}{{hostname=~"$node"}}[$__rate_interval])'
    return f"max by (node, gpu) ({node_norm(sel)})"


def target(expr: str, legend: str, ref: str = "A", instant: bool = False) -> dict:
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t.update({"instant": True, "range": False, "format": "table"})
    return t


def panel(kind: str, title: str, targets: list[dict], unit: str = "short", description: str = "",
          w: int = 12, h: int = 8, **field_defaults) -> dict:
    defaults = {"unit": unit, **field_defaults}
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {}, "gridPos": {"w": w, "h": h}}


def ts(title, targets, unit="short", description="", **kw):
    return panel("timeseries", title, targets, unit, description, **kw)


def stat(title, targets, unit="short", description="", **kw):
    return panel("stat", title, targets, unit, description, w=6, h=4, **kw)


def table(title, targets, unit="short", description="", **kw):
    return panel("table", title, targets, unit, description, w=24, h=8, **kw)


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def query_var(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query, "refresh": 2,
            "includeAll": multi, "multi": multi, "allValue": ".*", "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {}}


DATASOURCE_VAR = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
                  "current": {}, "hide": 0, "refresh": 1, "regex": ""}


def layout(panels: list[dict]) -> list[dict]:
    """Assign ids and grid positions left to right, top to bottom."""
    x = y = row_h = 0
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x, row_h = x + w, max(row_h, h)
    return panels


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["ai-signals"], "timezone": "", "editable": True, "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "graphTooltip": 1,
        "templating": {"list": [DATASOURCE_VAR, *variables]},
        "annotations": {"list": []}, "links": [], "panels": layout(panels),
    }


def gpu_fleet() -> dict:
    node_sel = 'node=~"$node"'
    panels = [
        row("Allocation and idle (ai-signals-exporter)"),
        stat("Idle GPUs on tainted nodes",
             [target(f"sum(ai_gpu_node_idle_gpus{{{node_sel}}} and on (node) (ai_gpu_node_tainted == 1)) or vector(0)", "idle")],
             description="GPUs idle past gpu.idle_after on nodes that only accept GPU workloads."),
        stat("GPU nodes without taint",
             [target(f"count(ai_gpu_node_tainted{{{node_sel}}} == 0 and on (node) (ai_gpu_node_allocatable_gpus > 0)) or vector(0)", "nodes")]),
        stat("CPU-only pods on GPU nodes", [target(f"sum(ai_gpu_node_non_gpu_pods{{{node_sel}}}) or vector(0)", "pods")]),
        stat("Unhealthy (withdrawn) GPUs", [target(f"sum(ai_gpu_node_unhealthy_gpus{{{node_sel}}}) or vector(0)", "gpus")]),
        ts("GPU idle time", [target(f'max by (node, gpu, namespace, pod) (ai_gpu_idle_seconds{{{node_sel}, namespace=~"$namespace"}})',
                                    "{{node}}/{{gpu}} {{namespace}}/{{pod}}")], unit="s"),
        ts("Requested vs allocatable GPUs per node",
           [target(f"sum by (node) (ai_gpu_node_requested_gpus{{{node_sel}}})", "{{node}} requested", "A"),
            target(f"sum by (node) (ai_gpu_node_allocatable_gpus{{{node_sel}}})", "{{node}} allocatable", "B")]),
        ts("GPU utilisation (exporter, MIG-aware)",
           [target(f'ai_gpu_utilization_ratio{{{node_sel}, namespace=~"$namespace"}}', "{{node}}/{{gpu}}")],
           unit="percentunit", min=0, max=1),
        row("Device health (dcgm-exporter)"),
        ts("GPU utilisation (DCGM; engine-active on MIG)",
           [target(f"gpu:dcgm_utilization:ratio{{{node_sel}}}", "{{node}}/{{gpu}} {{GPU_I_PROFILE}}")],
           unit="percentunit", min=0, max=1),
        ts("Framebuffer used", [target(f"gpu:dcgm_framebuffer_used:ratio{{{node_sel}}}", "{{node}}/{{gpu}}")],
           unit="percentunit", min=0, max=1,
           description="Informational: vLLM reserves ~90 % of GPU memory by design; saturation is KV cache and queue."),
        ts("GPU temperature vs slowdown limit",
           [target(dcgm("DCGM_FI_DEV_GPU_TEMP"), "{{node}}/{{gpu}}", "A"),
            target(dcgm("DCGM_FI_DEV_SLOWDOWN_TEMP", by="node"), "{{node}} slowdown", "B")], unit="celsius"),
        ts("Memory (HBM) temperature vs limit",
           [target(dcgm("DCGM_FI_DEV_MEMORY_TEMP") + " > 0", "{{node}}/{{gpu}}", "A"),
            target(dcgm("DCGM_FI_DEV_MEM_MAX_OP_TEMP", by="node"), "{{node}} max operating", "B")], unit="celsius"),
        ts("Power vs limit",
           [target(dcgm("DCGM_FI_DEV_POWER_USAGE"), "{{node}}/{{gpu}}", "A"),
            target(dcgm("DCGM_FI_DEV_POWER_MGMT_LIMIT", by="node"), "{{node}} limit", "B")], unit="watt",
           description="A busy GPU sits at its power limit with SW_POWER_CAP set: that is healthy."),
        ts("SM clock", [target(dcgm("DCGM_FI_DEV_SM_CLOCK"), "{{node}}/{{gpu}}")], unit="MHz"),
        ts("Thermal / hardware clock slowdown active",
           [target(f"floor({dcgm('DCGM_FI_DEV_CLOCKS_EVENT_REASONS')} / 8) % 2 "
                   f"+ floor({dcgm('DCGM_FI_DEV_CLOCKS_EVENT_REASONS')} / 32) % 2 "
                   f"+ floor({dcgm('DCGM_FI_DEV_CLOCKS_EVENT_REASONS')} / 64) % 2 "
                   f"+ floor({dcgm('DCGM_FI_DEV_CLOCKS_EVENT_REASONS')} / 128) % 2", "{{node}}/{{gpu}}")],
           description="Count of HW_SLOWDOWN, SW_THERMAL, HW_THERMAL and HW_POWER_BRAKE bits set (SW_POWER_CAP excluded)."),
        table("Recent XID errors", [target(f"gpu:dcgm_xid_errors:recent{{{node_sel}}}", "", instant=True)]),
        ts("Remapped rows",
           [target(dcgm("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"), "{{node}}/{{gpu}} correctable", "A"),
            target(dcgm("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"), "{{node}}/{{gpu}} uncorrectable", "B"),
            target(dcgm("DCGM_FI_DEV_ROW_REMAP_FAILURE"), "{{node}}/{{gpu}} remap failure", "C"),
            target(dcgm("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"), "{{node}}/{{gpu}} DBE (volatile)", "D")]),
        ts("PCIe replays and NVLink errors per second",
           [target(dcgm_rate("DCGM_FI_DEV_PCIE_REPLAY_COUNTER"), "{{node}}/{{gpu}} PCIe replay", "A"),
            target(dcgm_rate("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"), "{{node}}/{{gpu}} NVLink CRC flit", "B"),
            target(dcgm_rate("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL"), "{{node}}/{{gpu}} NVLink CRC data", "C"),
            target(dcgm_rate("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL"), "{{node}}/{{gpu}} NVLink replay", "D"),
            target(dcgm_rate("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL"), "{{node}}/{{gpu}} NVLink recovery", "E")]),
        ts("Windowed XID and clock-event counts (exporter-computed)",
           [target(dcgm("DCGM_EXP_XID_ERRORS_COUNT", by="node, gpu, xid"), "{{node}}/{{gpu}} XID {{xid}}", "A"),
            target(dcgm("DCGM_EXP_CLOCK_EVENTS_COUNT", by="node, gpu, clock_event"), "{{node}}/{{gpu}} {{clock_event}}", "B"),
            target(dcgm("DCGM_FI_DEV_XID_ERRORS", by="node, gpu"), "{{node}}/{{gpu}} last XID", "C")]),
        row("Exporter"),
        table("Exporter targets", [target("ai_signals_exporter_target_up", "", instant=True)]),
    ]
    variables = [
        query_var("namespace", "Namespace", "label_values(ai_gpu_idle_seconds, namespace)"),
        query_var("node", "Node", "label_values(ai_gpu_node_tainted, node)"),
    ]
    return dashboard("ai-signals-gpu-fleet", "AI signals / GPU fleet",
                     "GPU allocation, idle GPUs on tainted nodes, and the DCGM health subset.", variables, panels)


def llm_serving() -> dict:
    wl = 'namespace=~"$namespace", workload=~"$workload"'
    panels = [
        row("Workloads"),
        ts("Generated tokens/s per workload",
           [target(f"workload:ai_serving_generation_tokens_per_second:sum{{{wl}}}", "{{namespace}}/{{workload}}")], unit="short"),
        ts("Token capacity ratio (HPA input)",
           [target(f"workload:ai_serving_token_capacity_ratio:avg{{{wl}}}", "{{namespace}}/{{workload}}")],
           unit="percentunit", description="Generated tokens/s ÷ per-pod capacity, averaged over the ready pods (the HPA input)."),
        ts("Requests waiting (HPA input) and running",
           [target(f"workload:ai_serving_requests_waiting:sum{{{wl}}}", "{{workload}} waiting", "A"),
            target(f"workload:ai_serving_requests_running:sum{{{wl}}}", "{{workload}} running", "B")]),
        ts("KV cache usage",
           [target(f"workload:ai_serving_kv_cache_usage_ratio:avg{{{wl}}}", "{{workload}} avg", "A"),
            target(f"workload:ai_serving_kv_cache_usage_ratio:max{{{wl}}}", "{{workload}} max pod", "B")],
           unit="percentunit", min=0, max=1),
        ts("Time to first token (max over pods)",
           [target(f'workload:ai_serving_time_to_first_token_seconds:max{{{wl}, quantile="0.95"}}', "{{workload}} p95", "A"),
            target(f'workload:ai_serving_time_to_first_token_seconds:max{{{wl}, quantile="0.5"}}', "{{workload}} p50", "B")], unit="s"),
        ts("Queue time (max over pods)",
           [target(f'workload:ai_serving_queue_time_seconds:max{{{wl}, quantile="0.95"}}', "{{workload}} p95", "A"),
            target(f'workload:ai_serving_queue_time_seconds:max{{{wl}, quantile="0.5"}}', "{{workload}} p50", "B")],
           unit="s", description="Time requests waited in the engine queue (vLLM, SGLang, TGI, trtllm-serve). Alert: ServingQueueTimeHigh."),
        ts("Replicas (kube-state-metrics) and scraped pods",
           [target('kube_deployment_spec_replicas{namespace=~"$namespace", deployment=~"$workload"}', "{{deployment}} desired", "A"),
            target('kube_deployment_status_replicas_available{namespace=~"$namespace", deployment=~"$workload"}', "{{deployment}} available", "B"),
            target('kube_horizontalpodautoscaler_status_desired_replicas{namespace=~"$namespace", horizontalpodautoscaler=~"$workload"}', "{{horizontalpodautoscaler}} HPA desired", "C"),
            target(f"workload:ai_serving_pods:count{{{wl}}}", "{{workload}} scraped pods", "D")]),
        row("Cold start and replicas"),
        ts("Cold-start phases (mean of the last 6 h's pod starts)",
           [target(f'workload:ai_serving_cold_start_seconds:mean{{{wl}, phase!="total"}}', "{{workload}} {{phase}}")],
           unit="s", description="Seconds per phase of a new replica, stacked: scheduling, init (image pull, "
           "weight download), startup (engine load), first_token. Select one workload to read its stack.",
           custom={"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60, "drawStyle": "bars"}),
        ts("Cold start p90, creation to first token",
           [target(f'workload:ai_serving_cold_start_seconds:p90{{{wl}, phase="total"}}', "{{namespace}}/{{workload}}")],
           unit="s", description="ServingColdStartSlow fires above the workload's bound (default 15 min)."),
        ts("Replicas by state",
           [target(f"workload:ai_serving_replicas:sum{{{wl}}}", "{{workload}} {{state}}")],
           description="Replicas still loading weights, ready and terminating; a workload scaled to zero stays at 0.",
           custom={"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 30}),
        ts("Sample age per pod",
           [target(f"ai_serving_sample_age_seconds{{{wl}}}", "{{pod}}")], unit="s",
           description="Pods older than 30 s are left out of the per-workload sums and averages."),
        row("Pods"),
        ts("Generated tokens/s per pod",
           [target(f"ai_serving_generation_tokens_per_second{{{wl}}}", "{{pod}} ({{engine}})")]),
        ts("Prompt tokens/s and requests/s per workload",
           [target(f"workload:ai_serving_prompt_tokens_per_second:sum{{{wl}}}", "{{workload}} prompt tok/s", "A"),
            target(f"workload:ai_serving_requests_per_second:sum{{{wl}}}", "{{workload}} req/s", "B")]),
        ts("Requests waiting per pod", [target(f"ai_serving_requests_waiting{{{wl}}}", "{{pod}}")]),
        ts("KV cache per pod", [target(f"ai_serving_kv_cache_usage_ratio{{{wl}}}", "{{pod}}")], unit="percentunit"),
    ]
    variables = [
        query_var("namespace", "Namespace", "label_values(ai_serving_requests_waiting, namespace)"),
        query_var("workload", "Workload", 'label_values(ai_serving_requests_waiting{namespace=~"$namespace"}, workload)'),
    ]
    return dashboard("ai-signals-llm-serving", "AI signals / LLM serving",
                     "Token throughput, capacity, queue, KV cache, TTFT and replicas per serving workload.", variables, panels)


def training_checkpoints() -> dict:
    sel = 'namespace=~"$namespace", job=~"$job"'
    panels = [
        stat("Stale checkpoints (age > 2× expected)",
             [target(f"count(ai_checkpoint_age_seconds{{{sel}}} > 2 * ai_checkpoint_expected_interval_seconds) or vector(0)", "stale")]),
        stat("Saves in progress", [target(f"sum(ai_checkpoint_in_progress{{{sel}}}) or vector(0)", "saving")]),
        ts("Age of the last complete checkpoint vs expected interval",
           [target(f"ai_checkpoint_age_seconds{{{sel}}}", "{{store}} age", "A"),
            target(f"ai_checkpoint_expected_interval_seconds{{{sel}}}", "{{store}} expected", "B")], unit="s", w=24),
        ts("Age ÷ expected interval",
           [target(f"ai_checkpoint_age_seconds{{{sel}}} / ai_checkpoint_expected_interval_seconds{{{sel}}}", "{{store}}")]),
        ts("Save in progress for", [target(f"ai_checkpoint_in_progress_age_seconds{{{sel}}}", "{{store}}")], unit="s"),
        ts("Last checkpointed step", [target(f"ai_checkpoint_last_step{{{sel}}}", "{{store}}")]),
        ts("Checkpoint size", [target(f"ai_checkpoint_size_bytes{{{sel}}}", "{{store}}")], unit="bytes"),
    ]
    variables = [
        query_var("namespace", "Namespace", "label_values(ai_checkpoint_age_seconds, namespace)"),
        query_var("job", "Job", 'label_values(ai_checkpoint_age_seconds{namespace=~"$namespace"}, job)'),
    ]
    return dashboard("ai-signals-training-checkpoints", "AI signals / Training checkpoints",
                     "Age and completeness of training checkpoints per store.", variables, panels)


def ingress_streaming() -> dict:
    sel = 'probe=~"$probe"'
    panels = [
        stat("Probes buffered by the ingress", [target(f"sum(ai_stream_buffered{{{sel}}}) or vector(0)", "buffered")]),
        ts("Buffering delay (ingress − direct, first chunk)",
           [target(f"ai_stream_buffering_delay_seconds{{{sel}}}", "{{probe}}")], unit="s", w=18),
        ts("Time to first chunk by route", [target(f"ai_stream_time_to_first_chunk_seconds{{{sel}}}", "{{probe}} {{route}}")], unit="s"),
        ts("Time to first byte by route", [target(f"ai_stream_time_to_first_byte_seconds{{{sel}}}", "{{probe}} {{route}}")], unit="s"),
        ts("Probe success rate", [target(f"avg_over_time(ai_stream_probe_success{{{sel}}}[$__rate_interval])", "{{probe}} {{route}}")],
           unit="percentunit", min=0, max=1),
        ts("Largest gap between chunks", [target(f"ai_stream_max_chunk_gap_seconds{{{sel}}}", "{{probe}} {{route}}")], unit="s"),
        ts("Chunks per stream", [target(f"ai_stream_chunks{{{sel}}}", "{{probe}} {{route}}")]),
        ts("Stream duration", [target(f"ai_stream_duration_seconds{{{sel}}}", "{{probe}} {{route}}")], unit="s"),
    ]
    variables = [query_var("probe", "Probe", "label_values(ai_stream_probe_success, probe)")]
    return dashboard("ai-signals-ingress-streaming", "AI signals / Ingress streaming",
                     "Streaming probes through the ingress and directly: buffering, first chunk, failures.", variables, panels)


def gpu_scheduling() -> dict:
    ns = 'namespace=~"$namespace"'
    node = 'node=~"$node"'
    panels = [
        stat("Pending GPU pods", [target(f"sum(ai_gpu_pods_pending{{{ns}}}) or vector(0)", "pods")],
             description="Pods requesting GPUs that the scheduler could not place (PodScheduled=False or gated)."),
        stat("GPUs requested by pending pods",
             [target(f"sum(ai_gpu_pods_pending_requested_gpus{{{ns}}}) or vector(0)", "GPUs")]),
        stat("Offline GPUs", [target(f"sum(ai_gpu_offline_gpus{{{node}}}) or vector(0)", "GPUs")],
             description="Cordoned, NotReady, withdrawn by the device plugin, or on a GPU node without a plugin."),
        stat("Admission failures (1h)",
             [target(f"sum(increase(ai_gpu_node_admission_failures_total{{{node}}}[1h])) or vector(0)", "pods")],
             description="GPU pods the kubelet rejected: a Ready node with full allocatable can still reject them all."),
        row("Pending demand"),
        ts("Pending GPU demand by reason",
           [target(f"sum by (reason) (ai_gpu_pods_pending_requested_gpus{{{ns}}})", "{{reason}}")],
           w=24, description="GPUs requested by pods waiting for the scheduler, by the reason that blocks the most nodes."),
        table("Longest-waiting workloads",
              [target(f"topk(10, ai_gpu_pods_pending_oldest_seconds{{{ns}}})",
                      "{{namespace}}/{{workload}}", instant=True)], unit="s"),
        row("Failures and disruptions"),
        ts("Admission failures by node",
           [target(f"sum by (node, reason) (increase(ai_gpu_node_admission_failures_total{{{node}}}[$__rate_interval]))",
                   "{{node}} {{reason}}")], w=12),
        ts("GPU pod disruptions",
           [target(f"sum by (namespace, workload, reason) (increase(ai_gpu_pod_disruptions_total{{{ns}}}[$__rate_interval]))",
                   "{{namespace}}/{{workload}} {{reason}}")], w=12),
        ts("Training work lost to disruptions (GPU-hours, 6h)",
           [target(f"sum by (namespace, job) (increase(ai_checkpoint_lost_gpu_seconds_total{{{ns}}}[6h])) / 3600",
                   "{{namespace}}/{{job}}")], w=24,
           description="Disruption time minus the last complete checkpoint, times the job's GPUs."),
        row("Quota and capacity"),
        ts("GPU quota headroom",
           [target(f'ai_gpu_quota_gpus{{kind="hard", {ns}}} - ignoring (kind) ai_gpu_quota_gpus{{kind="used", {ns}}}',
                   "{{namespace}}/{{quota}}")], w=12),
        ts("Quota rejections",
           [target(f"sum by (namespace) (increase(ai_gpu_quota_rejections_total{{{ns}}}[$__rate_interval]))",
                   "{{namespace}}")], w=12),
        ts("Offline GPU capacity by reason",
           [target(f"sum by (node, reason) (ai_gpu_offline_gpus{{{node}}})", "{{node}} {{reason}}")], w=24),
    ]
    variables = [
        query_var("namespace", "Namespace", "label_values(ai_gpu_pods_pending, namespace)"),
        query_var("node", "Node", "label_values(ai_gpu_offline_gpus, node)"),
    ]
    return dashboard("ai-signals-gpu-scheduling", "AI signals / GPU scheduling",
                     "Why GPU pods wait, which nodes reject them, what disruptions cost, quota headroom "
                     "and offline GPU capacity.", variables, panels)


def gpu_time() -> dict:
    """Where the GPU-seconds went (docs/gpu-time.md): states over time, who held GPUs idle and
    what it cost.  Over the dashboard's range with `increase(...[$__range])`: set the range to
    Yesterday to answer "who held GPUs idle yesterday, and what did it cost"."""
    sel = 'node=~"$node", namespace=~"$namespace"'
    secs = f"ai_gpu_seconds_total{{{sel}}}"

    def held(state: str, by: str, extra: str = "") -> str:
        return f'sum by ({by}) (increase(ai_gpu_seconds_total{{{sel}, state=~"{state}"{extra}}}[$__range])) / 3600'

    def cost(expr_by_model: str) -> str:
        # Every node agent reports the price of its models: one value per model.
        return f"{expr_by_model} * on (gpu_model) group_left () max by (gpu_model) (ai_gpu_price_per_hour)"

    wl = "namespace, workload_kind, workload"
    in_pods = ', namespace!=""'
    panels = [
        row("Where the GPU time goes"),
        stat("GPU-hours in range", [target(f"sum(increase({secs}[$__range])) / 3600", "GPU-hours")],
             description="Physical GPU time; at fleet scope it is the GPU count x the range."),
        stat("Held idle (share of held GPU time)",
             [target(f'sum({held("allocated_idle", "state")}) / sum({held("busy|allocated_idle", "state", in_pods)})',
                     "idle share")],
             unit="percentunit", description="allocated_idle / (busy + allocated_idle) of GPUs held by pods."),
        stat("Cost of GPUs held idle",
             [target(f'sum({cost(held("allocated_idle", "gpu_model"))})', "cost")], unit="currencyUSD",
             description="Allocated to pods, below gpu.idle_threshold; prices from gpu.price_per_gpu_hour."),
        stat("Cost of free GPUs",
             [target(f'sum({cost(held("unallocated", "gpu_model"))})', "cost")], unit="currencyUSD",
             description="Schedulable GPUs nobody held."),
        ts("GPUs by state (stacked)",
           [target(f"sum by (state) (rate({secs}[$__rate_interval]))", "{{state}}")],
           description="busy | allocated_idle | unallocated | unhealthy (withdrawn) | no_telemetry (nobody measured).",
           custom={"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60, "lineWidth": 0}, w=24),
        ts("Cost per hour by state (stacked)",
           [target(f"sum by (state) ({cost(f'sum by (state, gpu_model) (rate({secs}[$__rate_interval]))')})", "{{state}}")],
           unit="currencyUSD", custom={"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 60, "lineWidth": 0}),
        ts("GPUs per namespace and state (recording rule)",
           [target('sum by (namespace, state) (namespace_workload_state:ai_gpu_seconds:rate5m{namespace=~"$namespace"})',
                   "{{namespace}} {{state}}")],
           description="namespace_workload_state:ai_gpu_seconds:rate5m (rules/gpu-time.yaml), fleet-wide."),
        row("Who held GPUs idle"),
        table("Top workloads by GPU-hours held idle",
              [target(f'topk(10, {held("allocated_idle", wl)})', "", instant=True)]),
        table("Top namespaces by GPU-hours held idle",
              [target(f'topk(10, {held("allocated_idle", "namespace")})', "", instant=True)]),
        table("Idle cost per workload",
              [target(f'topk(10, sum by ({wl}) ({cost(held("allocated_idle", wl + ", gpu_model"))}))', "", instant=True)],
              unit="currencyUSD"),
        table("GPU-hours per workload and state",
              [target(f'{held(".+", wl + ", state")} > 0', "", instant=True)]),
        row("MIG and prices"),
        ts("MIG instance time by profile and state",
           [target(f'sum by (node, profile, state) (rate(ai_gpu_mig_instance_seconds_total{{{sel}}}[$__rate_interval]))',
                   "{{node}} {{profile}} {{state}}")],
           description="Instances per second, not physical GPUs: never add to the panels above."),
        table("Price per GPU-hour", [target("max by (gpu_model) (ai_gpu_price_per_hour)", "", instant=True)],
              unit="currencyUSD"),
    ]
    variables = [
        query_var("node", "Node", "label_values(ai_gpu_seconds_total, node)"),
        query_var("namespace", "Namespace", 'label_values(ai_gpu_seconds_total{node=~"$node"}, namespace)'),
    ]
    return dashboard("ai-signals-gpu-time", "AI signals / GPU time",
                     "Where every GPU-second goes: busy, held idle, free, withdrawn, unobserved; per namespace "
                     "and workload, with cost.", variables, panels)


DASHBOARDS = {
    "gpu-fleet.json": gpu_fleet,
    "gpu-time.json": gpu_time,
    "llm-serving.json": llm_serving,
    "training-checkpoints.json": training_checkpoints,
    "ingress-streaming.json": ingress_streaming,
    "gpu-scheduling.json": gpu_scheduling,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()}


def undeclared_metrics(dashboards: dict[str, str]) -> set[str]:
    """ai_* families named by panel queries or variables that no area declares."""
    declared = {spec.name for spec in families()}
    return {m for text in dashboards.values() for m in AI_METRIC_RE.findall(text)} - declared


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    unknown = undeclared_metrics(render())
    if unknown:
        print(f"dashboards query undeclared metric families: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 1
    drift = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(name)
        else:
            path.write_text(text)
    if drift:
        print(f"dashboards out of date: {', '.join(drift)}; run scripts/gen_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
