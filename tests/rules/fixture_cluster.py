"""Realistic series for the dashboard and autoscaling tests, served over HTTP for a real
Prometheus to scrape: dcgm-exporter output (4.x label set with `Hostname` on one node, `hostname`
and MIG instances on another, time-sliced duplicates), the exporter's ai_* families, and
kube-state-metrics replicas.  Counters grow with wall time so rate() has something to do.

The shapes follow the real payloads in ../shared/real-payloads (not copied: written here).
"""

from __future__ import annotations

import time

START = time.time()
DRIVER = "580.105.08"
H100 = "NVIDIA H100 80GB HBM3"
A30 = "NVIDIA A30"


def _labels(d: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}"


class Family:
    def __init__(self, name: str, kind: str, help_: str):
        self.name, self.kind, self.help = name, kind, help_
        self.samples: list[tuple[dict, float]] = []

    def add(self, labels: dict, value: float) -> "Family":
        self.samples.append((labels, value))
        return self

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for l, v in self.samples:
            suffix = l.get("__suffix", "_bucket" if "le" in l else "")
            l = {k: x for k, x in l.items() if k != "__suffix"}
            lines.append(f"{self.name}{suffix}{_labels(l)} {v:g}")
        return "\n".join(lines)


def _gpu(node_key: str, node: str, gpu: int, uuid: str, model: str, extra: dict | None = None) -> dict:
    d = {"gpu": str(gpu), "UUID": uuid, "pci_bus_id": f"00000000:{0x53 + 0x11 * gpu:02X}:00.0",
         "device": f"nvidia{gpu}", "modelName": model}
    d.update(extra or {})
    d[node_key] = node
    d["DCGM_FI_DRIVER_VERSION"] = DRIVER
    return d


def dcgm(now: float) -> str:
    up = now - START
    # gpu-node-1: released exporter (Hostname), two H100s.  GPU 0 serves llama-0 (busy at its
    # power cap: SW_POWER_CAP only), GPU 1 is empty and idle.
    busy = _gpu("Hostname", "gpu-node-1", 0, "GPU-c4529c8d", H100, {})
    busy_pod = {**busy, "container": "main", "namespace": "prod", "pod": "llama-0", "pod_uid": ""}
    idle = _gpu("Hostname", "gpu-node-1", 1, "GPU-bc5610b9", H100)
    # gpu-node-2: exporter from main (hostname), an A30 split into two MIG instances.
    mig = [_gpu("hostname", "gpu-node-2", 0, "GPU-2d20791a", A30, {"GPU_I_PROFILE": "2g.12gb", "GPU_I_ID": str(i)})
           for i in (1, 2)]
    fams = []

    def fam(name, kind, help_, rows):
        f = Family(name, kind, help_)
        for labels, value in rows:
            f.add(labels, value)
        fams.append(f)

    fam("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).",
        [(busy_pod, 1335), (idle, 345)] + [(m, 1440) for m in mig])
    fam("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).",
        [(busy_pod, 72), (idle, 31)] + [(m, 45) for m in mig])
    fam("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).",
        [(busy_pod, 70), (idle, 33)] + [(m, 48) for m in mig])
    fam("DCGM_FI_DEV_SLOWDOWN_TEMP", "gauge", "Slowdown temperature (in C).",
        [(busy_pod, 89), (idle, 89)] + [(m, 90) for m in mig])
    fam("DCGM_FI_DEV_MEM_MAX_OP_TEMP", "gauge", "Memory max operating temperature (in C).",
        [(busy_pod, 95), (idle, 95)] + [(m, 95) for m in mig])
    fam("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).",
        [(busy_pod, 698.973), (idle, 68.347)] + [(m, 110.5) for m in mig])
    fam("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Power management limit (in W).",
        [(busy_pod, 700), (idle, 700)] + [(m, 165) for m in mig])
    fam("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.",
        [(busy_pod, 0), (idle, int(up) // 2)] + [(m, 0) for m in mig])
    fam("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", [(busy_pod, 100), (idle, 0)])
    fam("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
        [(busy_pod, 0.97), (idle, 0.0), (mig[0], 0.31), (mig[1], 0.0)])
    fam("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).",
        [(busy_pod, 73000), (idle, 480), (mig[0], 9000), (mig[1], 20)])
    fam("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).",
        [(busy_pod, 8559), (idle, 81079), (mig[0], 2900), (mig[1], 11880)])
    fam("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", "Current clock event reasons (bitmask).",
        [(busy_pod, 4), (idle, 1)] + [(m, 0) for m in mig])
    fam("DCGM_EXP_CLOCK_EVENTS_COUNT", "gauge", "Count of clock events within the time window.",
        [({**busy_pod, "clock_event": "power_cap", "window_size_in_ms": "300000"}, 12)])
    fam("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.",
        [({**idle, "err_code": "13", "err_msg": "Graphics Engine Exception"}, 13)])
    fam("DCGM_EXP_XID_ERRORS_COUNT", "gauge", "Count of XID Errors within user-specified time window.",
        [({**idle, "window_size_in_ms": "300000", "xid": "13"}, 1)])
    fam("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed.",
        [(busy_pod, 0), (idle, 0)] + [(m, 0) for m in mig])
    fam("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Remapped rows for uncorrectable errors.",
        [(busy_pod, 0), (idle, 0)] + [(m, 0) for m in mig])
    fam("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Remapped rows for correctable errors.",
        [(busy_pod, 2), (idle, 0)] + [(m, 0) for m in mig])
    fam("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Double-bit volatile ECC errors.",
        [(busy_pod, 0), (idle, 0)] + [(m, 0) for m in mig])
    for name in ("CRC_FLIT", "CRC_DATA", "REPLAY", "RECOVERY"):
        fam(f"DCGM_FI_DEV_NVLINK_{name}_ERROR_COUNT_TOTAL", "counter", f"NVLink {name} errors.",
            [(busy_pod, 0), (idle, int(up) // 5 if name == "CRC_FLIT" else 0)])
    return "\n".join(f.render() for f in fams) + "\n"


SERVING_PODS = [
    # namespace, pod, kind, workload, engine, model, tokens/s, capacity ratio, waiting, running, kv
    ("prod", "llama-0", "Deployment", "llama", "vllm", "llama-3.1-8b", 1200.0, 0.6, 3, 24, 0.91),
    ("prod", "llama-1", "Deployment", "llama", "vllm", "llama-3.1-8b", 800.0, 0.4, 1, 16, 0.62),
    ("ml", "tgi-0", "StatefulSet", "tgi", "tgi", "", 95.0, 0.3, 0, 2, 0.0),
]


def ai(now: float) -> str:
    fams = {}

    def f(name, kind, help_):
        return fams.setdefault(name, Family(name, kind, help_))

    for ns, pod, kind, wl, engine, model, tps, ratio, waiting, running, kv in SERVING_PODS:
        l = {"namespace": ns, "pod": pod, "workload_kind": kind, "workload": wl, "engine": engine, "model": model}
        f("ai_serving_generation_tokens_per_second", "gauge", "Generated tokens per second.").add(l, tps)
        f("ai_serving_prompt_tokens_per_second", "gauge", "Prompt tokens per second.").add(l, tps * 3)
        f("ai_serving_requests_per_second", "gauge", "Finished requests per second.").add(l, tps / 250)
        f("ai_serving_requests_running", "gauge", "Requests running.").add(l, running)
        f("ai_serving_requests_waiting", "gauge", "Requests waiting.").add(l, waiting)
        f("ai_serving_kv_cache_usage_ratio", "gauge", "KV cache usage 0..1.").add(l, kv)
        f("ai_serving_token_capacity_ratio", "gauge", "Tokens/s over capacity.").add(l, ratio)
        ttft = f("ai_serving_time_to_first_token_seconds", "summary", "Time to first token over the window.")
        ttft.add({**l, "quantile": "0.5"}, 0.21)
        ttft.add({**l, "quantile": "0.95"}, 0.87)
        f("ai_serving_failed_requests_per_second", "gauge", "Aborted or failed requests per second.").add(l, tps / 25000)
        queue = f("ai_serving_queue_time_seconds", "summary", "Queue time over the window.")
        queue.add({**l, "quantile": "0.5"}, 0.05 * (1 + waiting))
        queue.add({**l, "quantile": "0.95"}, 0.4 * (1 + waiting))
        f("ai_serving_sample_age_seconds", "gauge", "Sample age.").add(l, 2)
    # Replicas by state: llama has one replica starting; idle is selected but scaled to zero.
    for ns, kind, wl, ready, starting in (("prod", "Deployment", "llama", 2, 1), ("ml", "StatefulSet", "tgi", 1, 0),
                                          ("prod", "Deployment", "idle", 0, 0)):
        for state, n in (("ready", ready), ("starting", starting), ("terminating", 0)):
            f("ai_serving_replicas", "gauge", "Replicas by state.").add(
                {"namespace": ns, "workload_kind": kind, "workload": wl, "state": state}, n)
    # Cold starts of llama, one more every 5 s: 5 s scheduling, 60 s init, 40 s startup, 3 s to
    # the first token.
    starts = 1 + int((now - START) / 5)
    hist = f("ai_serving_cold_start_seconds", "histogram", "Cold-start phases.")
    for phase, secs in (("scheduling", 5), ("init", 60), ("startup", 40), ("first_token", 3), ("total", 108)):
        l = {"namespace": "prod", "workload_kind": "Deployment", "workload": "llama", "phase": phase}
        for le in ("1", "10", "60", "120", "+Inf"):
            n = starts if le == "+Inf" or float(le) >= secs else 0
            hist.samples.append(({**l, "le": le}, n))
        hist.samples.append(({**l, "__suffix": "_sum"}, starts * secs))
        hist.samples.append(({**l, "__suffix": "_count"}, starts))
    idle_for = now - START + 4000
    gpus = [("gpu-node-1", "0", "GPU-c4529c8d", H100, "prod", "llama-0", 0, 0.97),
            ("gpu-node-1", "1", "GPU-bc5610b9", H100, "", "", idle_for, 0.0),
            ("gpu-node-2", "0", "GPU-2d20791a", A30, "ml", "tgi-0", 0, 0.31)]
    for node, gpu, uuid, model, ns, pod, idle, util in gpus:
        l = {"node": node, "gpu": gpu, "uuid": uuid, "gpu_model": model, "namespace": ns, "pod": pod}
        f("ai_gpu_idle_seconds", "gauge", "Continuous idle time.").add(l, idle)
        f("ai_gpu_utilization_ratio", "gauge", "GPU utilisation 0..1.").add(l, util)
    for node, tainted, alloc, req, idle_gpus, cpu_pods in (("gpu-node-1", 1, 2, 1, 1, 0), ("gpu-node-2", 0, 1, 1, 0, 2)):
        l = {"node": node}
        f("ai_gpu_node_tainted", "gauge", "GPU taint present.").add(l, tainted)
        f("ai_gpu_node_allocatable_gpus", "gauge", "Allocatable GPUs.").add(l, alloc)
        f("ai_gpu_node_requested_gpus", "gauge", "Requested GPUs.").add(l, req)
        f("ai_gpu_node_idle_gpus", "gauge", "Idle GPUs.").add(l, idle_gpus)
        f("ai_gpu_node_non_gpu_pods", "gauge", "Pods without a GPU request.").add(l, cpu_pods)
        f("ai_gpu_node_unhealthy_gpus", "gauge", "Withdrawn GPUs.").add(l, 0)
    # GPU time (counters growing with wall time): gpu-node-1's H100s, one busy for prod/llama and
    # one held idle by a notebook; gpu-node-2's A30, 60 % busy for ml/tgi, 40 % free, as MIG.
    up = now - START
    gpu_time = [
        ("gpu-node-1", "NVIDIA-H100-80GB-HBM3", "prod", "Deployment", "llama", "busy", 1.0),
        ("gpu-node-1", "NVIDIA-H100-80GB-HBM3", "research", "StatefulSet", "notebook", "allocated_idle", 1.0),
        ("gpu-node-2", "NVIDIA-A30", "ml", "StatefulSet", "tgi", "busy", 0.6),
        ("gpu-node-2", "NVIDIA-A30", "", "", "", "unallocated", 0.4),
    ] + [(n, m, "", "", "", s, 0.0) for n, m in (("gpu-node-1", "NVIDIA-H100-80GB-HBM3"), ("gpu-node-2", "NVIDIA-A30"))
         for s in ("busy", "unallocated", "unhealthy", "no_telemetry") if (n, s) != ("gpu-node-2", "unallocated")]
    for node, model, ns, kind, wl, state, gpus in gpu_time:
        l = {"node": node, "gpu_model": model, "namespace": ns, "workload_kind": kind, "workload": wl, "state": state}
        f("ai_gpu_seconds_total", "counter", "GPU time by state.").add(l, round(gpus * up, 3))
    for profile, ns, kind, wl, state in (("2g.12gb", "ml", "StatefulSet", "tgi", "busy"), ("2g.12gb", "", "", "", "unallocated")):
        l = {"node": "gpu-node-2", "gpu_model": "NVIDIA-A30", "profile": profile, "namespace": ns,
             "workload_kind": kind, "workload": wl, "state": state}
        f("ai_gpu_mig_instance_seconds_total", "counter", "MIG instance time.").add(l, round(up, 3))
    for model, price in (("NVIDIA-H100-80GB-HBM3", 4.0), ("NVIDIA-A30", 1.5)):
        f("ai_gpu_price_per_hour", "gauge", "Price of a GPU-hour.").add({"gpu_model": model}, price)
    # run7 stopped checkpointing: its last complete checkpoint is past twice its interval.
    stale = {"store": "run7", "namespace": "ml", "job": "run7", "layout": "torch_save"}
    f("ai_checkpoint_age_seconds", "gauge", "Age of the last complete checkpoint.").add(stale, 5000)
    f("ai_checkpoint_expected_interval_seconds", "gauge", "Expected interval.").add(stale, 1800)
    ck = {"store": "run42", "namespace": "ml", "job": "run42", "layout": "dcp"}
    f("ai_checkpoint_last_complete_timestamp_seconds", "gauge", "Last complete checkpoint.").add(ck, now - 1500)
    f("ai_checkpoint_age_seconds", "gauge", "Age of the last complete checkpoint.").add(ck, 1500)
    f("ai_checkpoint_last_step", "gauge", "Step.").add(ck, 12000)
    f("ai_checkpoint_size_bytes", "gauge", "Size.").add(ck, 3.2e11)
    f("ai_checkpoint_in_progress", "gauge", "Save in progress.").add(ck, 1)
    f("ai_checkpoint_in_progress_age_seconds", "gauge", "Save in progress for.").add(ck, 120)
    f("ai_checkpoint_expected_interval_seconds", "gauge", "Expected interval.").add(ck, 1800)
    for route, ttfc in (("ingress", 4.2), ("direct", 0.3)):
        l = {"probe": "chat", "route": route}
        f("ai_stream_probe_success", "gauge", "Probe success.").add(l, 1)
        f("ai_stream_time_to_first_byte_seconds", "gauge", "TTFB.").add(l, 0.05)
        f("ai_stream_time_to_first_chunk_seconds", "gauge", "TTFC.").add(l, ttfc)
        f("ai_stream_duration_seconds", "gauge", "Duration.").add(l, 4.5)
        f("ai_stream_chunks", "gauge", "Chunks.").add(l, 64)
        f("ai_stream_max_chunk_gap_seconds", "gauge", "Max gap.").add(l, 4.1 if route == "ingress" else 0.1)
    f("ai_stream_buffered", "gauge", "Buffered.").add({"probe": "chat"}, 1)
    f("ai_stream_buffering_delay_seconds", "gauge", "Delay.").add({"probe": "chat"}, 3.9)
    # Scheduling: pending demand for each reason, a node rejecting GPU pods (its counter grows
    # every scrape), a preempted training job, a full quota rejecting creations, offline GPUs.
    up = now - START
    for ns, wl, reason, pods, gpus in (("prod", "llama-405b", "insufficient_gpu", 2, 16),
                                       ("research", "b200-eval", "node_affinity", 1, 8),
                                       ("research", "sweep", "scheduling_gated", 3, 6)):
        l = {"namespace": ns, "workload_kind": "Job", "workload": wl}
        f("ai_gpu_pods_pending", "gauge", "Pending GPU pods.").add({**l, "reason": reason}, pods)
        f("ai_gpu_pods_pending_requested_gpus", "gauge", "Pending GPUs.").add({**l, "reason": reason}, gpus)
        f("ai_gpu_pods_pending_oldest_seconds", "gauge", "Oldest pending.").add(l, 1200 + up)
    f("ai_gpu_node_admission_failures_total", "counter", "Admission failures.").add(
        {"node": "gpu-node-1", "reason": "unexpected_admission_error"}, 3 + int(up))
    f("ai_gpu_pod_disruptions_total", "counter", "Disruptions.").add(
        {"namespace": "ml", "workload_kind": "Job", "workload": "run42", "reason": "preemption"}, 2 + int(up))
    store = {"store": "run42", "namespace": "ml", "job": "run42"}
    f("ai_checkpoint_interruptions_total", "counter", "Interruptions.").add({**store, "reason": "preemption"}, 1)
    f("ai_checkpoint_lost_seconds_total", "counter", "Work lost.").add(store, 600 + 10 * up)
    f("ai_checkpoint_lost_gpu_seconds_total", "counter", "Work lost in GPU-seconds.").add(store, 9600 + 160 * up)
    for kind, v in (("hard", 16), ("used", 12)):
        f("ai_gpu_quota_gpus", "gauge", "Quota GPUs.").add({"namespace": "research", "quota": "gpu-quota", "kind": kind}, v)
    f("ai_gpu_quota_rejections_total", "counter", "Quota rejections.").add({"namespace": "research"}, 4 + int(up))
    for node, reason, n in (("gpu-node-3", "cordoned", 8), ("gpu-node-4", "plugin_missing", 8)):
        f("ai_gpu_offline_gpus", "gauge", "Offline GPUs.").add({"node": node, "reason": reason}, n)
    f("ai_signals_exporter_build_info", "gauge", "Build.").add({"version": "0.1.0"}, 1)
    for source, target in (("gpu", "http://10.0.1.7:9400/metrics"), ("serving", "http://10.0.0.5:8000/metrics")):
        f("ai_signals_exporter_target_up", "gauge", "Target up.").add({"source": source, "target": target}, 1)
    for source in ("kube", "serving", "gpu", "checkpoints", "probes"):
        f("ai_signals_exporter_source_last_success_timestamp_seconds", "gauge", "Last success.").add({"source": source}, now)
    f("ai_signals_exporter_config_last_reload_successful", "gauge", "Reload ok.").add({}, 1)
    return "\n".join(x.render() for x in fams.values()) + "\n"


def kube_state_metrics(now: float) -> str:
    fams = [
        Family("kube_deployment_spec_replicas", "gauge", "Desired replicas.").add({"namespace": "prod", "deployment": "llama"}, 2),
        Family("kube_deployment_status_replicas_available", "gauge", "Available replicas.").add({"namespace": "prod", "deployment": "llama"}, 2),
        Family("kube_horizontalpodautoscaler_status_desired_replicas", "gauge", "HPA desired.").add(
            {"namespace": "prod", "horizontalpodautoscaler": "llama"}, 2),
    ]
    cond = Family("kube_node_status_condition", "gauge", "Node condition.")
    for node in ("gpu-node-1", "gpu-node-2"):
        for status, v in (("true", 1), ("false", 0), ("unknown", 0)):
            cond.add({"node": node, "condition": "Ready", "status": status}, v)
    fams.append(cond)
    return "\n".join(x.render() for x in fams) + "\n"


PAGES = {"/dcgm": dcgm, "/ai": ai, "/ksm": kube_state_metrics}


def page(path: str) -> str | None:
    build = PAGES.get(path)
    return build(time.time()) if build else None
