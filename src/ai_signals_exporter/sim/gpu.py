"""Simulated GPU nodes with dcgm-exporter endpoints.

`DcgmSim` holds GPU nodes and their devices; every node gets a dcgm-exporter `/metrics` endpoint
in the GPU Operator's format (HELP/TYPE lines, label order of dcgm-exporter 4.x, `Hostname`,
pod labels only on allocated devices, blank fields dropped).  Each device's utilisation follows
a load function of time, so a GPU can be busy, idle, or go busy -> idle -> busy.

`default_fleet()` covers every case the GPU signals handle: a tainted and an untainted H100 node
(idle allocated and idle free GPUs, a CPU-only pod and an unhealthy GPU on the untainted one), a
MIG node (mixed strategy), a time-sliced L4 node shared by three pods whose exporter uses the
newer lowercase `hostname` label, and a time-sliced L4 node in the shape of dcgm-exporter 4.8.3
with --kubernetes-virtual-gpus: GPU_UTIL and FB_USED once per device and once per pod with the
pod's process value (0 here: PIDs not mapped, as without hostPID), other fields per pod only.
Nodes carry GPU feature discovery's labels (physical `nvidia.com/gpu.count`, `gpu.replicas` and
a `-SHARED` product when time-sliced).  `default_fleet(telemetry_gaps=True)` (the demo) adds a
free GPU that drops out of dcgm-exporter's output for 5 minutes of every half hour, so GPU time
shows every state with a known truth (tests/integration/test_gpu_time_source.py).

    sim = await attach(cluster)        # serves endpoints, adds nodes/pods, extends config
    sim.set_load("gpu-h100-a", 0, lambda t: 0.0)   # make a GPU idle from now on
    sim.set_down("gpu-h100-b", True)                # its exporter answers 503
"""

from __future__ import annotations

import math
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from .objects import make_node, make_pod

Load = Callable[[float], float]  # unix time -> utilisation 0..1

DRIVER = "580.105.08"
_PER_PROCESS = frozenset({"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"})
_FIELDS = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
)


def idle(_: float) -> float:
    return 0.0


def wave(period: float = 120.0, low: float = 0.35, high: float = 0.95, phase: float = 0.0) -> Load:
    """A serving-like load between `low` and `high`; the default period is the two-minute cycle
    of the simulated inference traffic (sim/serving.py), so GPU busy-ness rises and falls with it."""
    mid, amp = (high + low) / 2, (high - low) / 2
    return lambda t: mid + amp * math.sin(2 * math.pi * (t / period + phase))


def duty(busy_s: float = 60.0, idle_s: float = 90.0, level: float = 0.9) -> Load:
    """A batch job: busy for `busy_s`, then idle for `idle_s`, repeating (busy -> idle -> busy)."""
    period = busy_s + idle_s
    return lambda t: level if (t % period) < busy_s else 0.0


@dataclass
class SimDevice:
    index: int
    uuid: str
    load: Load = idle
    pods: list[tuple[str, str]] = field(default_factory=list)  # (namespace, pod) sharing it
    mig: tuple[str, str] | None = None  # (GPU_I_ID, GPU_I_PROFILE) of a MIG instance
    uids: list[str] = field(default_factory=list)  # pod UID of each entry of `pods`
    # When the device is missing from dcgm-exporter's output (a GPU that DCGM lost track of for a
    # while: blank fields are dropped, so its series vanish); never by default.
    absent: Callable[[float], bool] | None = None

    def base(self, node: "SimNode") -> str:
        base = (
            f'gpu="{self.index}",UUID="{self.uuid}",'
            f'pci_bus_id="00000000:{0x18 + 0x11 * self.index:02X}:00.0",'
            f'device="nvidia{self.index}",modelName="{node.model}",'
        )
        if self.mig:
            base += f'GPU_I_PROFILE="{self.mig[1]}",GPU_I_ID="{self.mig[0]}",'
        return base + f'{node.host_label}="{node.name}",DCGM_FI_DRIVER_VERSION="{DRIVER}"'

    def per_process(self, node: "SimNode", name: str, value: str) -> list[str]:
        """dcgm-exporter >= 4.8.2 with virtual GPUs (kubernetes.go createPerProcessMetrics):
        GPU_UTIL/FB_USED once per device, then once per pod with its process value, "0" when
        the pod's PIDs did not map; other fields only as per-pod copies."""
        base = self.base(node)
        pods = [
            base + f',container="main",namespace="{ns}",pod="{pod}"'
            + (f',pod_uid="{self.uids[i]}"' if name in _PER_PROCESS else "") + f',vgpu="{i}"'
            for i, (ns, pod) in enumerate(self.pods)
        ]
        if not pods:
            return [f"{name}{{{base}}} {value}"]
        if name not in _PER_PROCESS:
            return [f"{name}{{{labels}}} {value}" for labels in pods]
        return [f"{name}{{{base}}} {value}"] + [f"{name}{{{labels}}} 0" for labels in pods]

    def labels(self, node: "SimNode") -> list[str]:
        """One label string per exported series: one, or one per sharing pod (time-slicing)."""
        base = self.base(node)
        if not self.pods:
            return [base]
        if len(self.pods) == 1:
            ns, pod = self.pods[0]
            return [base + f',container="main",namespace="{ns}",pod="{pod}",pod_uid=""']
        return [
            base + f',container="main",namespace="{ns}",pod="{pod}",pod_uid="",vgpu="{i}"'
            for i, (ns, pod) in enumerate(self.pods)
        ]


@dataclass
class SimNode:
    name: str
    model: str  # dcgm modelName
    product: str  # GPU feature discovery nvidia.com/gpu.product
    devices: list[SimDevice]
    tainted: bool = True
    host_label: str = "Hostname"  # "hostname" on dcgm-exporter main (#655)
    down: bool = False
    unhealthy: int = 0
    per_process: bool = False  # dcgm-exporter >= 4.8.2 with --kubernetes-virtual-gpus

    def payload(self, now: float) -> bytes:
        rows: dict[str, list[str]] = {name: [] for name, _, _ in _FIELDS}
        for d in self.devices:
            if d.absent is not None and d.absent(now):
                continue
            util = min(1.0, max(0.0, d.load(now)))
            values = {
                "DCGM_FI_DEV_SM_CLOCK": "1980" if util > 0 else "345",
                "DCGM_FI_DEV_GPU_TEMP": str(int(45 + 25 * util)),
                "DCGM_FI_DEV_POWER_USAGE": f"{75 + 620 * util:.6f}",
                "DCGM_FI_DEV_FB_USED": str(74210 if d.pods else 480),
                "DCGM_FI_PROF_GR_ENGINE_ACTIVE": f"{util:.6f}",
            }
            if d.mig is None:  # no GPU_UTIL on MIG instances
                values["DCGM_FI_DEV_GPU_UTIL"] = str(round(util * 100))
            if self.per_process:
                for name, value in values.items():
                    rows[name].extend(d.per_process(self, name, value))
                continue
            for labels in d.labels(self):
                for name, value in values.items():
                    rows[name].append(f"{name}{{{labels}}} {value}")
        out = []
        for name, typ, help_ in _FIELDS:
            if rows[name]:
                out.append(f"# HELP {name} {help_}\n# TYPE {name} {typ}")
                out.extend(rows[name])
        return ("\n".join(out) + "\n").encode()


def _uuid(node: str, index: int) -> str:
    return "GPU-" + str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, f"{node}/gpu{index}"))


class DcgmSim:
    def __init__(self) -> None:
        self.nodes: dict[str, SimNode] = {}
        self.pods: list[dict[str, Any]] = []  # Pod JSON for the test API server
        self.node_objects: list[dict[str, Any]] = []

    def add_node(
        self,
        name: str,
        gpus: int = 8,
        *,
        model: str = "NVIDIA H100 80GB HBM3",
        product: str = "NVIDIA-H100-80GB-HBM3",
        tainted: bool = True,
        unhealthy: int = 0,
        host_label: str = "Hostname",
        load: Load = idle,
        mig: dict[int, list[tuple[str, str]]] | None = None,
        replicas: int = 1,
        per_process: bool = False,
    ) -> SimNode:
        """A GPU node.  `mig` maps a GPU index to its instances [(GPU_I_ID, profile)]; those
        GPUs are exposed as nvidia.com/mig-<profile> resources.  `replicas` > 1 is time-slicing:
        the device plugin advertises each GPU that many times."""
        mig = mig or {}
        devices: list[SimDevice] = []
        for i in range(gpus):
            if i in mig:
                devices += [SimDevice(i, _uuid(name, i), load, mig=inst) for inst in mig[i]]
            else:
                devices.append(SimDevice(i, _uuid(name, i), load))
        node = SimNode(name, model, product, devices, tainted, host_label, unhealthy=unhealthy,
                       per_process=per_process)
        self.nodes[name] = node
        whole = gpus - len(mig)
        # GPU feature discovery labels the physical count and, with time-slicing, the replicas
        # per GPU (k8s-device-plugin internal/lm/resource.go baseLabeler, mig-strategy_test.go:
        # gpu.count "1", gpu.replicas "2"); the device plugin advertises count x replicas.
        # With replicas the product gets -SHARED (internal/lm/resource.go, productLabel).
        gfd = {"nvidia.com/gpu.count": str(gpus)}
        if replicas > 1:
            gfd["nvidia.com/gpu.replicas"] = str(replicas)
            product = f"{product}-SHARED"
        obj = make_node(
            name, gpus=whole * replicas, gpu_product=product, unhealthy_gpus=unhealthy,
            taints=None if not tainted else [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
            ],
            labels=gfd,
        )
        if mig:
            counts: dict[str, int] = {}
            for insts in mig.values():
                for _, profile in insts:
                    counts[f"nvidia.com/mig-{profile}"] = counts.get(f"nvidia.com/mig-{profile}", 0) + 1
            for k, v in counts.items():
                obj["status"]["capacity"][k] = str(v)
                obj["status"]["allocatable"][k] = str(v)
            obj["metadata"]["labels"]["nvidia.com/mig.strategy"] = "mixed"
        self.node_objects.append(obj)
        # dcgm-exporter itself runs as a DaemonSet pod on every GPU node.
        self.pods.append(make_pod(
            "gpu-operator", f"nvidia-dcgm-exporter-{_uuid(name, -1)[4:9]}", node=name,
            owner=("DaemonSet", "nvidia-dcgm-exporter"), labels={"app": "nvidia-dcgm-exporter"},
            container_port=9400,
        ))
        return node

    def allocate(
        self, node: str, devices: list[SimDevice], namespace: str, pod: str,
        owner: tuple[str, str] | None = None, resource: str = "nvidia.com/gpu",
    ) -> None:
        """Give `devices` to a new pod.  Giving a device to several pods is time-slicing: each
        pod holds one replica of it."""
        obj = make_pod(namespace, pod, node=node, owner=owner, gpu=len(devices), resource_name=resource)
        for d in devices:
            d.pods.append((namespace, pod))
            d.uids.append(obj["metadata"]["uid"])
        self.pods.append(obj)

    def add_cpu_pod(self, node: str, namespace: str, pod: str, owner: tuple[str, str] | None = None) -> None:
        self.pods.append(make_pod(namespace, pod, node=node, owner=owner))

    def device(self, node: str, index: int, instance: str | None = None) -> SimDevice:
        for d in self.nodes[node].devices:
            if d.index == index and (instance is None or (d.mig and d.mig[0] == instance)):
                return d
        raise KeyError((node, index, instance))

    def set_load(self, node: str, index: int, load: Load) -> None:
        for d in self.nodes[node].devices:
            if d.index == index:
                d.load = load

    def set_down(self, node: str, down: bool) -> None:
        self.nodes[node].down = down

    def app(self, node: str, clock: Callable[[], float] | None = None) -> web.Application:
        import time

        now = clock or time.time
        sim_node = self.nodes[node]

        async def metrics(_: web.Request) -> web.Response:
            if sim_node.down:
                return web.Response(status=503, text="dcgm: not ready\n")
            return web.Response(body=sim_node.payload(now()), content_type="text/plain",
                                charset="utf-8")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app


def outage(every: float = 1800.0, lasting: float = 300.0) -> Callable[[float], bool]:
    """The last `lasting` seconds of every `every` (aligned to the Unix epoch, so the stretch is
    known in advance): when a device is missing from dcgm-exporter's output."""
    return lambda t: t % every >= every - lasting


def default_fleet(load: Load | None = None, *, telemetry_gaps: bool = False) -> DcgmSim:
    """Five GPU nodes showing every GPU signal (see the module docstring).  With
    `telemetry_gaps` (the demo, GPU time tests), free GPU 7 of gpu-h100-a goes missing from
    dcgm-exporter's output for the last 5 minutes of every half hour (`no_telemetry` in GPU
    time); off by default so real-time tests never meet the gap."""
    load = load or wave()
    sim = DcgmSim()
    a = sim.add_node("gpu-h100-a", 8, tainted=True)
    sim.allocate("gpu-h100-a", a.devices[0:4], "llm", "llama-70b-0", ("StatefulSet", "llama-70b"))
    for d in a.devices[0:4]:
        d.load = load
    sim.allocate("gpu-h100-a", a.devices[4:5], "research", "notebook-0", ("StatefulSet", "notebook"))
    a.devices[4].load = idle  # allocated, holding memory, doing nothing
    sim.allocate("gpu-h100-a", a.devices[5:6], "batch", "embed-job-0", ("Job", "embed-job"))
    a.devices[5].load = duty()  # busy -> idle -> busy
    # devices 6, 7: free and idle
    if telemetry_gaps:
        a.devices[7].absent = outage()

    b = sim.add_node("gpu-h100-b", 8, tainted=False, unhealthy=1)
    sim.allocate("gpu-h100-b", b.devices[0:2], "llm", "mistral-7b-0", ("StatefulSet", "mistral-7b"))
    for d in b.devices[0:2]:
        d.load = wave(phase=0.25)
    sim.add_cpu_pod("gpu-h100-b", "web", "frontend-0", ("StatefulSet", "frontend"))  # mis-scheduled

    m = sim.add_node(
        "gpu-a100-mig", 2, model="NVIDIA A100-SXM4-40GB", product="NVIDIA-A100-SXM4-40GB",
        mig={0: [("1", "3g.20gb"), ("5", "2g.10gb"), ("13", "1g.5gb")]},
    )
    inst = sim.device("gpu-a100-mig", 0, "1")
    sim.allocate("gpu-a100-mig", [inst], "llm", "phi-3-0", ("StatefulSet", "phi-3"),
                 resource="nvidia.com/mig-3g.20gb")
    inst.load = load
    m.devices[-1].load = wave(period=600, low=0.1, high=0.6)  # the whole GPU 1

    s = sim.add_node("gpu-l4-shared", 1, model="NVIDIA L4", product="NVIDIA-L4",
                     host_label="hostname", replicas=4)
    for pod in ("jupyter-alice", "jupyter-bob", "jupyter-carol"):  # one replica each
        sim.allocate("gpu-l4-shared", s.devices, "dev", pod, ("StatefulSet", pod))
    s.devices[0].load = duty(busy_s=20, idle_s=40, level=0.45)

    v = sim.add_node("gpu-l4-ts-v483", 1, model="NVIDIA L4", product="NVIDIA-L4",
                     host_label="hostname", replicas=2, per_process=True)
    for pod in ("chat-a-0", "chat-b-0"):
        sim.allocate("gpu-l4-ts-v483", v.devices, "llm", pod, ("StatefulSet", pod[:-2]))
    v.devices[0].load = wave(phase=0.5)  # always busy; its per-pod series all read 0
    return sim


DEFAULT_PRICES = {"NVIDIA-H100-80GB-HBM3": 4.0, "NVIDIA-A100-SXM4-40GB": 2.0, "default": 0.8}


async def attach(cluster: Any, *, load: Load | None = None, sim: DcgmSim | None = None,
                 prices: dict[str, float] | None = None) -> DcgmSim:
    """Serve one dcgm-exporter endpoint per simulated GPU node, add the nodes and pods to the
    test API server and static `gpu.dcgm_targets` (with `node`) plus prices to the config."""
    sim = sim or default_fleet(load)
    gpu_cfg = cluster.config.setdefault("gpu", {})
    targets = gpu_cfg.setdefault("dcgm_targets", [])
    for name in sim.nodes:
        base = (await cluster.serve(sim.app(name))).rstrip("/")
        targets.append({"url": f"{base}/metrics", "node": name})
    gpu_cfg.setdefault("price_per_gpu_hour", dict(prices or DEFAULT_PRICES))
    if getattr(cluster, "kubernetes", False):
        for obj in sim.node_objects + sim.pods:
            cluster.kube.add(obj)
        # Discovered pods would point at simulated pod IPs: scrape the static targets only.
        gpu_cfg.setdefault("discovery", {})["enabled"] = False
    return sim
