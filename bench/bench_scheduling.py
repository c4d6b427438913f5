"""What the scheduling area costs under event volume: a busy 1,000-node cluster emitting 1,000
Warning events a minute, with and without the area, in the same run.

    python bench/bench_scheduling.py [--nodes 1000] [--pods 20000] [--seconds 30]

The simulator process holds FakeKubeAPI with N GPU nodes x 8 GPUs, 20 x N pods (a third of them
GPU pods, some pending, some failed at admission) and GPU quotas; it pre-loads ten minutes of
Warning events (10,000: FailedScheduling, BackOff, Unhealthy, FailedMount, ... and FailedCreate
quota rejections, the one kind the area counts), then keeps emitting 1,000 a minute, deleting
the oldest beyond ten minutes as the apiserver's event TTL does.

The exporter runs in its own process, twice, one after the other against the same simulator:
- baseline: the registry without the scheduling area (the kube source watches pods and nodes);
- scheduling: the full registry (also resourcequotas and Warning events, the area's tracker
  hooked into the stores, its derive in every refresh).
Each run waits for the kube lists, settles, then measures over `--seconds` of refreshes (1 s
interval): CPU seconds per refresh (process CPU, watch ingest included, divided by refreshes)
and RSS.  Budget (issue 15): the area adds < 20 MB and < 0.05 CPU-s per refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import random
import tempfile
import time
from pathlib import Path

from ai_signals_exporter.sim.objects import (
    admission_rejected,
    make_event,
    make_node,
    make_pod,
    make_resource_quota,
    quota_exceeded_message,
)

PODS_PER_NODE = 20
EVENTS_PER_MINUTE = 1000
KEEP_SECONDS = 600  # events kept by the simulator (its "TTL")
BUDGET_MB, BUDGET_CPU = 20.0, 0.05
WARNINGS = (
    ("FailedScheduling", "Pod", "0/1000 nodes are available: 1000 Insufficient nvidia.com/gpu. preemption: "
                                "0/1000 nodes are available: 1000 No preemption victims found for incoming pod."),
    ("BackOff", "Pod", "Back-off restarting failed container main in pod {name}"),
    ("Unhealthy", "Pod", "Readiness probe failed: Get \"http://10.1.2.3:8000/health\": dial tcp: connection refused"),
    ("FailedMount", "Pod", "MountVolume.SetUp failed for volume \"weights\" : configmap \"weights\" not found"),
    ("FailedCreate", "Job", None),  # quota rejection (5 % of the events)
)


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _event(i: int, at: float, rng: random.Random) -> dict:
    ns = f"ns-{i % 50}"
    if i % 20 == 0:
        reason, kind, msg = "FailedCreate", "Job", quota_exceeded_message(f"train-{i}", "gpu-quota", requested=8)
        name = f"train-{i % 200}"
    else:
        reason, kind, msg = WARNINGS[i % 4]
        name = f"pod-{rng.randrange(1_000_000):06d}"
        msg = msg.format(name=name)
    return make_event(ns, (kind, name), reason, msg, first=_rfc3339(at), last=_rfc3339(at),
                      component="kubelet", name=f"{name}.{i:012x}")


def _serve(nodes: int, pods: int, conn) -> None:  # the simulator process
    from ai_signals_exporter.sim.kubeapi import FakeKubeAPI

    async def main() -> None:
        rng = random.Random(7)
        api = FakeKubeAPI(bookmark_interval=30, history=200_000)
        for n in range(nodes):
            api.add(make_node(f"gpu-node-{n:05d}"))
        for i in range(pods):
            ns, node = f"ns-{i % 50}", f"gpu-node-{i // PODS_PER_NODE % nodes:05d}"
            gpu = 1 if i % 3 == 0 else 0
            if i % 300 == 0:
                api.add(make_pod(ns, f"pod-{i:06d}", owner=("Job", f"job-{i % 97}"), gpu=gpu or 1))  # pending
            elif i % 301 == 0:
                api.add(admission_rejected(make_pod(ns, f"pod-{i:06d}", node, owner=("Deployment", "x"), gpu=1)))
            else:
                api.add(make_pod(ns, f"pod-{i:06d}", node, owner=("Deployment", f"app-{i % 300}"), gpu=gpu))
        for k in range(50):
            api.add(make_resource_quota(f"ns-{k}", "gpu-quota", {"requests.nvidia.com/gpu": 64},
                                        {"requests.nvidia.com/gpu": 60}))
        now = time.time()
        live: list[tuple[str, str]] = []
        total = EVENTS_PER_MINUTE * KEEP_SECONDS // 60
        for i in range(total):  # ten minutes of history, oldest first
            ev = api.add(_event(i, now - KEEP_SECONDS + i * KEEP_SECONDS / total, rng))
            live.append((ev["metadata"]["namespace"], ev["metadata"]["name"]))
        await api.start()
        conn.send(api.base_url)
        i = total
        interval = 60.0 / EVENTS_PER_MINUTE
        next_at = time.monotonic()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            ev = api.add(_event(i, time.time(), rng))
            live.append((ev["metadata"]["namespace"], ev["metadata"]["name"]))
            i += 1
            if len(live) > total:
                ns, name = live.pop(0)
                api.delete("Event", ns, name)

    asyncio.run(main())


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _exporter(kubeconfig: str, with_scheduling: bool, seconds: float, conn) -> None:  # one run
    from ai_signals_exporter import app as app_module
    from ai_signals_exporter import areas
    from ai_signals_exporter.config import Config
    from ai_signals_exporter.sources.kube import KubeSource

    if not with_scheduling:
        base = tuple(a for a in areas.AREAS if a.name != "scheduling")
        kube = next(a for a in base if a.name == "kube")
        plain = areas.Area("kube", (KubeSource,), forget=kube.forget)  # pods and nodes only
        app_module.AREAS = tuple(plain if a.name == "kube" else a for a in base)

    async def main() -> dict:
        config = Config.model_validate({
            "global": {"refresh_interval": "1s"},
            "kubernetes": {"enabled": True, "kubeconfig": kubeconfig, "request_timeout": "120s"},
        })
        exporter = app_module.Exporter(config)
        await exporter.start()
        want = {"pods", "nodes"} | ({"events", "resourcequotas"} if with_scheduling else set())
        while not want <= exporter.state.kube.synced:
            await asyncio.sleep(0.2)
        await asyncio.sleep(5)  # settle: the first refreshes after the lists, gc
        gc.collect()
        rss0 = _rss_mb()
        cpu0, n0 = time.process_time(), exporter.refresh_count
        await asyncio.sleep(seconds)
        cpu, n = time.process_time() - cpu0, exporter.refresh_count - n0
        out = {"rss_mb": _rss_mb(), "rss_after_sync_mb": rss0, "cpu_per_refresh": cpu / max(1, n),
               "refreshes": n, "events_held": len(exporter.state.kube.events),
               "derive_s": exporter.last_derive_seconds}
        await exporter.stop()
        return out

    conn.send(asyncio.run(main()))


def _run(kubeconfig: str, with_scheduling: bool, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_exporter, args=(kubeconfig, with_scheduling, seconds, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sim = ctx.Process(target=_serve, args=(args.nodes, args.pods, child), daemon=True)
    sim.start()
    base_url = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        from ai_signals_exporter.sim.kubeapi import FakeKubeAPI

        api = FakeKubeAPI()
        api.base_url = base_url  # only to write a kubeconfig pointing at the simulator process
        kubeconfig = str(api.write_kubeconfig(Path(tmp) / "kubeconfig"))
        print(f"{args.nodes} GPU nodes, {args.pods} pods, {EVENTS_PER_MINUTE} Warning events/min "
              f"({EVENTS_PER_MINUTE * KEEP_SECONDS // 60} held by the API); {args.seconds:.0f} s per run")
        base = _run(kubeconfig, False, args.seconds)
        sched = _run(kubeconfig, True, args.seconds)
    sim.terminate()
    for name, r in (("baseline (no scheduling area)", base), ("with scheduling area", sched)):
        print(f"  {name:30s} RSS {r['rss_mb']:7.1f} MB   CPU/refresh {r['cpu_per_refresh']:.4f} s"
              f"   refreshes {r['refreshes']}   events held {r['events_held']}   derive {r['derive_s'] * 1e3:.1f} ms")
    d_mb = sched["rss_mb"] - base["rss_mb"]
    d_cpu = sched["cpu_per_refresh"] - base["cpu_per_refresh"]
    print(f"  added by the area: {d_mb:+.1f} MB (budget < {BUDGET_MB:.0f} MB, ratio {sched['rss_mb'] / base['rss_mb']:.3f}x)"
          f"  {'OK' if d_mb < BUDGET_MB else 'OVER'}")
    print(f"  added by the area: {d_cpu:+.4f} CPU-s/refresh (budget < {BUDGET_CPU}, ratio "
          f"{sched['cpu_per_refresh'] / max(1e-9, base['cpu_per_refresh']):.2f}x)  {'OK' if d_cpu < BUDGET_CPU else 'OVER'}")


if __name__ == "__main__":
    main()
