"""Kube source cost at scale: the initial list and a burst of watch events, through the real
kubernetes_asyncio client, against FakeKubeAPI running in a separate process (so the figures are
the exporter's CPU only).  Also the pure trimming cost and the memory of the trimmed state.

    python bench/bench_kube.py [PODS ...]        # default: 2000 20000 50000 pods, 20 per node

Up to 5,000 pods it also lists through typed client models, the path the source avoids.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from ai_signals_exporter.config import Config
from ai_signals_exporter.sim.objects import make_node, make_pod
from ai_signals_exporter.sources.kube import KubeSource
from ai_signals_exporter.sources.kube_objects import pod_from_json
from ai_signals_exporter.state import AppState

PODS_PER_NODE = 20
EVENTS = 5000


def _pods(n: int) -> list[dict]:
    owners = [("Deployment", "llama"), ("StatefulSet", "db"), ("DaemonSet", "dcgm"), ("PyTorchJob", "bert"),
              ("LeaderWorkerSet", "big")]
    return [
        make_pod(f"ns-{i % 50}", f"pod-{i:06d}", f"gpu-node-{i // PODS_PER_NODE:05d}",
                 owner=owners[i % len(owners)], gpu=1 + i % 8,
                 labels={"app": f"app-{i % 300}", "team": "ml"},
                 annotations={"ai-signals.io/scrape": "true"})
        for i in range(n)
    ]


def _serve(n_pods: int, conn) -> None:  # runs in the child process
    from ai_signals_exporter.sim.kubeapi import FakeKubeAPI

    async def main() -> None:
        api = FakeKubeAPI(bookmark_interval=60)
        for i in range((n_pods + PODS_PER_NODE - 1) // PODS_PER_NODE):
            api.add(make_node(f"gpu-node-{i:05d}"))
        for p in _pods(n_pods):
            api.add(p)
        await api.start()
        conn.send(api.base_url)
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "churn":
                for k in range(EVENTS):
                    i = k % n_pods
                    obj = api.get("Pod", f"ns-{i % 50}", f"pod-{i:06d}")
                    obj = dict(obj, metadata=dict(obj["metadata"], labels={**obj["metadata"]["labels"], "rev": str(k)}))
                    api.update(obj)
                conn.send(api.resource_version)
            else:
                await api.stop()
                conn.send("bye")
                return

    asyncio.run(main())


async def _client(base_url: str, conn, n_pods: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    from ai_signals_exporter.sim.kubeapi import FakeKubeAPI

    fake = FakeKubeAPI()
    fake.base_url = base_url
    kubeconfig = fake.write_kubeconfig(tmp / "kubeconfig")
    config = Config.model_validate({"kubernetes": {"enabled": True, "kubeconfig": str(kubeconfig)}})
    state = AppState()
    source = KubeSource(config, state)
    c0, w0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(source.run())
    while not (state.kube.pods_synced and state.kube.nodes_synced):
        await asyncio.sleep(0.005)
    out = {"list_cpu_s": time.process_time() - c0, "list_wall_s": time.perf_counter() - w0}
    assert len(state.kube.pods) == n_pods, len(state.kube.pods)
    await asyncio.sleep(0.3)  # watches connected
    loop = asyncio.get_running_loop()
    c0, w0 = time.process_time(), time.perf_counter()
    conn.send("churn")
    target = str(await loop.run_in_executor(None, conn.recv))
    while source.resource_version("pods") != target:
        await asyncio.sleep(0.005)
    out["events_cpu_s"] = time.process_time() - c0
    out["events_per_cpu_s"] = EVENTS / out["events_cpu_s"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await source.close()
    return out


async def _typed_list_cpu(base_url: str) -> float:
    """CPU seconds of the same paginated list through typed client models (the path not taken)."""
    from kubernetes_asyncio import client, config

    from ai_signals_exporter.sim.kubeapi import FakeKubeAPI

    fake = FakeKubeAPI()
    fake.base_url = base_url
    path = fake.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    api = await config.new_client_from_config(config_file=str(path))
    core = client.CoreV1Api(api)
    c0, token = time.process_time(), None
    while True:
        page = await core.list_pod_for_all_namespaces(limit=500, _continue=token)
        token = page.metadata._continue
        if not token:
            break
    cpu = time.process_time() - c0
    await api.close()
    return cpu


def main(sizes: list[int]) -> None:
    import faulthandler
    faulthandler.dump_traceback_later(280, exit=True)  # never hang a CI box
    print(f"{'pods':>7} {'nodes':>6} {'trim µs/pod':>12} {'state MB':>9} {'list CPU s':>11} "
          f"{'list wall s':>12} {'events/CPU s':>13}")
    for n in sizes:
        raw = _pods(n)
        t0 = time.process_time()
        for obj in raw:
            pod_from_json(obj)
        trim_us = (time.process_time() - t0) / n * 1e6
        tracemalloc.start()
        kept = {p.uid: p for p in map(pod_from_json, raw)}
        mem_mb = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del kept, raw
        parent, child = mp.Pipe()
        proc = mp.get_context("fork").Process(target=_serve, args=(n, child), daemon=True)
        proc.start()
        base_url = parent.recv()
        typed = asyncio.run(_typed_list_cpu(base_url)) if n <= 5000 else None
        res = asyncio.run(_client(base_url, parent, n))
        parent.send("stop")
        parent.recv()
        proc.join(10)
        print(f"{n:>7} {n // PODS_PER_NODE:>6} {trim_us:>12.1f} {mem_mb:>9.1f} {res['list_cpu_s']:>11.3f} "
              f"{res['list_wall_s']:>12.3f} {res['events_per_cpu_s']:>13.0f}"
              + (f"   typed-model list: {typed:.3f} CPU s ({typed / res['list_cpu_s']:.1f}x)" if typed else ""))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 20000, 50000])
