"""Scale harness: the exporter at N GPU nodes x 8 GPUs, M = N vLLM pods, 20 x N pods in the kube
watch, checkpoint stores and streaming probes -- each figure beside its DESIGN.md budget.

    python bench/scale.py [--sizes 100,1000,5000] [--cycles 3] [--requests 1000]

Three kinds of process, so that no figure includes another's CPU:
- the simulator (`_sim_main`): a SimCluster (FakeKubeAPI holding 20 x N pods, checkpointing
  training jobs, a streaming backend behind a buffering and a clean proxy), N dcgm-exporter
  endpoints (the sim's six fields padded with the other default counters to real size) and N
  vLLM endpoints.  Payloads are cached for a second (vLLM pods share 64 SimEngines, each
  rendered at most once a second), so the simulator keeps up at 5,000 nodes;
- the exporter (`_exporter_main`): the real `Exporter`, its kube source listing and watching in
  the background, and its HTTP server.  A *refresh cycle* is driven here, explicitly: one
  `run_once()` of the serving, dcgm and checkpoint sources (every target scraped once) plus
  `Exporter.refresh_cooperatively()` (derive + render); periodic timers are set to an hour so nothing else runs;
- the exporter's web process (`webproc.WebProcess`, what `ai-signals-exporter` ships): each
  cycle's exposition is handed to it; its CPU is added to the cycle's and its RSS reported;
- a scraper (`_client_main`): 20 concurrent aiohttp clients GETting /metrics with
  `Accept-Encoding: gzip`, as Prometheus does, for a bounded number of requests; once while the
  exporter is idle, once while it runs refresh cycles back to back -- against the web process,
  and in the same run against the in-process server (the baseline) and a /metrics thread.

Same-run baselines: prometheus_client's parser vs ours on a real-sized vLLM payload (the
functions of bench/parse_bench.py), and the CPU of merely downloading every target (aiohttp GET
via `fetch_bounded`, no parsing) next to the exporter's CPU per cycle.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

PODS_PER_NODE = 20
ENGINES = 64  # distinct simulated vLLM engines shared by the M pods (payload render cost)
MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
          "mistralai/Mistral-7B-Instruct-v0.3", "meta-llama/Llama-3.1-70B-Instruct")
HOUR = "3600s"
BURST_EVERY = 0.25  # seconds between bursts of 20 simultaneous scrapes
BUDGETS = {
    "refresh_cpu_s": ("< 1 s", 1.0),
    "rss_mb": ("< 300 MB", 300.0),
    "p99_ms": ("< 20 ms", 20.0),
    "parse_ratio": (">= 30x", 30.0),
}
# dcgm-exporter default counters (etc/default-counters.csv of the GPU Operator) beyond the six
# the simulator renders: a real payload carries all of them, the exporter parses none of them.
DCGM_EXTRA = (
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", "2619"),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C).", "41"),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ).", "3871562891"),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries.", "0"),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", "17"),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %).", "0"),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %).", "0"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", "0"),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", "6871"),
    ("DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB).", "503"),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status", "0"),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for uncorrectable errors", "0"),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter",
     "Number of remapped rows for correctable errors", "0"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed", "0"),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge",
     "Ratio of cycles the tensor (HMMA) pipe is active.", "0.412345"),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge",
     "Ratio of cycles the device memory interface is active sending or receiving data.", "0.28"),
    ("DCGM_FI_PROF_PCIE_TX_BYTES", "gauge", "The rate of data transmitted over the PCIe bus.",
     "128734"),
    ("DCGM_FI_PROF_PCIE_RX_BYTES", "gauge", "The rate of data received over the PCIe bus.",
     "3487122"),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter",
     "Total number of NVLink bandwidth counters for all lanes.", "0"),
)


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current, peak) resident set size of a process, MB."""
    cur = peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return cur, peak


# ---- simulator process ------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """user + system CPU of another process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _padded_dcgm(node: Any, now: float) -> bytes:
    """The simulator's dcgm payload plus the default counters it leaves out, same label sets."""
    base = node.payload(now)
    out = [base.rstrip(b"\n")]
    labels = [ls for d in node.devices for ls in d.labels(node)]
    for name, typ, help_, value in DCGM_EXTRA:
        out.append(f"# HELP {name} {help_}\n# TYPE {name} {typ}".encode())
        out.append("\n".join(f"{name}{{{ls}}} {value}" for ls in labels).encode())
    return b"\n".join(out) + b"\n"


class _Cached:
    """Renders a payload at most once per second, on demand."""

    def __init__(self, render) -> None:
        self.render = render
        self.at = -1.0
        self.body = b""

    def get(self) -> bytes:
        now = time.time()
        if now - self.at >= 1.0:
            self.body, self.at = self.render(now), now
        return self.body


def _addr(kind: int, i: int) -> str:
    """A loopback address of its own for target i (127.<kind>.x.y)."""
    return f"127.{kind}.{i // 250 % 250}.{1 + i % 250}"


async def _listen(cluster: Any, app: Any, addresses: list[str]) -> int:
    """Serve `app` on 127.0.0.1 and, with `addresses`, on each of them too (same port), so that
    every target is a host of its own, as pods are: one connection pool entry per target."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    for addr in addresses:
        await web.TCPSite(runner, addr, port).start()
    cluster.on_stop(runner.cleanup)
    return port


def _sim_main(n: int, conn, distinct: bool) -> None:
    from aiohttp import web

    from ai_signals_exporter.sim import streaming, training
    from ai_signals_exporter.sim.cluster import SimCluster
    from ai_signals_exporter.sim.engines import CONTENT_TYPE, SimEngine, sine
    from ai_signals_exporter.sim.gpu import DcgmSim, duty, wave
    from ai_signals_exporter.sim.objects import make_pod

    async def main() -> None:
        cluster = SimCluster()
        cluster.kube.bookmark_interval = 60.0
        await cluster.start()
        engines = [
            SimEngine("vllm", MODELS[i % len(MODELS)], sine(4.0 + i % 7, 2.0, 120.0), seed=i,
                      capacity_tokens_per_second=2400.0)
            for i in range(ENGINES)
        ]
        vllm_cache = [_Cached(lambda now, e=e: e.render(now)) for e in engines]
        dcgm = DcgmSim()
        node_cache: dict[str, _Cached] = {}

        async def serve_pod(request: web.Request) -> web.Response:
            i = int(request.match_info["i"])
            return web.Response(body=vllm_cache[i % ENGINES].get(),
                                headers={"Content-Type": CONTENT_TYPE})

        async def serve_node(request: web.Request) -> web.Response:
            cached = node_cache.get(request.match_info["node"])
            if cached is None:
                raise web.HTTPNotFound()
            return web.Response(body=cached.get(), content_type="text/plain", charset="utf-8")

        serving_app = web.Application()
        serving_app.router.add_get("/pods/{i}/metrics", serve_pod)
        dcgm_app = web.Application()
        dcgm_app.router.add_get("/nodes/{node}/metrics", serve_node)
        serving_port = await _listen(cluster, serving_app, [_addr(1, i) for i in range(n)] if distinct else [])
        dcgm_port = await _listen(cluster, dcgm_app, [_addr(2, i) for i in range(n)] if distinct else [])

        api = cluster.kube
        targets = []
        pods = 0
        for i in range(n):
            name = f"gpu-{i:05d}"
            node = dcgm.add_node(name, 8, load=wave(phase=i / max(n, 1)), tainted=i % 50 != 0)
            node_cache[name] = _Cached(lambda now, nd=node: _padded_dcgm(nd, now))
            dcgm_host = _addr(2, i) if distinct else "127.0.0.1"
            targets.append({"url": f"http://{dcgm_host}:{dcgm_port}/nodes/{name}/metrics", "node": name})
            # GPUs 0-3: the inference pod; 4-5: a training pod; 6-7 free (idle).
            inf = f"llm-{i:05d}"
            for d in node.devices[0:4]:
                d.pods.append(("llm", inf))
            for d in node.devices[4:6]:
                d.pods.append(("train", f"trainer-{i:05d}"))
                d.load = duty(busy_s=30, idle_s=60)
            api.add(make_pod("llm", inf, node=name, owner=("Deployment", f"model-{i % 40}"), gpu=4,
                             ip=_addr(1, i) if distinct else "127.0.0.1", labels={"app": f"model-{i % 40}"},
                             annotations={"ai-signals.io/scrape": "true",
                                          "ai-signals.io/port": str(serving_port),
                                          "ai-signals.io/path": f"/pods/{i}/metrics",
                                          "ai-signals.io/engine": "vllm",
                                          "ai-signals.io/capacity-tokens-per-second": "2400"}))
            api.add(make_pod("train", f"trainer-{i:05d}", node=name, gpu=2,
                             owner=("PyTorchJob", f"job-{i % 25}")))
            pods += 2
            for j in range(PODS_PER_NODE - 3):  # DaemonSets and CPU workloads fill the rest
                owner = (("DaemonSet", f"agent-{j}") if j < 6 else ("Deployment", f"svc-{(i + j) % 90}"))
                api.add(make_pod("kube-system" if j < 6 else f"apps-{j % 7}", f"p-{i:05d}-{j:02d}",
                                 node=name, owner=owner, labels={"tier": "cpu"}))
                pods += 1
        for obj in dcgm.pods:  # the simulator's 5-hex-digit suffixes collide at thousands of nodes
            if obj["metadata"]["name"].startswith("nvidia-dcgm-exporter-"):
                obj["metadata"]["name"] = "nvidia-dcgm-exporter-" + obj["spec"]["nodeName"]
        for obj in dcgm.node_objects + dcgm.pods:
            api.add(obj)
        pods += len(dcgm.pods)
        await training.attach(cluster, interval=20.0, save_seconds=2.0)
        await streaming.attach(cluster, interval=HOUR, timeout="10s")
        cfg = cluster.config
        cfg["global"] = {"refresh_interval": HOUR}
        # The serving interval is never waited for (cycles are driven): window and interval only
        # set how much history a target keeps; 6s + 2 x 2s at one cycle every ~1.5 s holds about
        # the 8 snapshots the defaults (5s interval, 30s window) hold in production.
        cfg["serving"] = {"interval": "2s", "window": "6s", "timeout": "20s", "targets": []}
        cfg["gpu"] = {"interval": HOUR, "idle_after": "30s", "timeout": "20s",
                      "dcgm_targets": targets, "discovery": {"enabled": False}}
        cfg["checkpoints"]["interval"] = HOUR
        conn.send({"config": cfg, "pods": pods, "nodes": n})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        await cluster.stop()
        conn.send("bye")

    asyncio.run(main())


# ---- exporter process -------------------------------------------------------------------------


async def _exporter(cfg: dict[str, Any], conn, cycles: int, profile: str | None, nice: int = 0) -> None:
    from ai_signals_exporter.app import Exporter, settle_memory
    from ai_signals_exporter.areas import AREAS
    from ai_signals_exporter.server import serve
    from ai_signals_exporter.config import Config
    from ai_signals_exporter.sources.http import fetch_bounded, new_session
    from ai_signals_exporter.webproc import WebProcess

    import kubernetes_asyncio.client  # noqa: F401  (imported lazily by the source: not state)

    loop = asyncio.get_running_loop()
    out: dict[str, Any] = {}
    gc.collect()
    out["rss_base_mb"] = rss_mb()[0]
    config = Config.model_validate(cfg)
    exporter = Exporter(config)
    exporter.sources = [cls(config, exporter.state) for area in AREAS for cls in area.sources]
    src = {type(s).__name__: s for s in exporter.sources}
    kube = exporter.state.kube

    # Kube: the initial list of 20 x N pods, then a quiet watch.
    c0, w0 = time.process_time(), time.perf_counter()
    tasks = [asyncio.create_task(exporter._guard(src["KubeSource"]))]
    while not (kube.pods_synced and kube.nodes_synced):
        await asyncio.sleep(0.01)
    out["kube_list_cpu_s"] = time.process_time() - c0
    out["kube_list_wall_s"] = time.perf_counter() - w0
    out["kube_pods"] = len(kube.pods)
    gc.collect()
    cur, peak = rss_mb()
    out["kube_bytes_per_pod"] = (cur - out["rss_base_mb"]) * 1024 * 1024 / max(1, len(kube.pods))
    out["kube_peak_mb"] = peak
    settle_memory()  # as Exporter._refresh_loop does once the kube lists are in
    if src["ProbeSource"].enabled():  # a shard owning no probe has none to run (as Exporter.start)
        tasks.append(asyncio.create_task(exporter._guard(src["ProbeSource"])))  # runs once, then an hour

    stop = asyncio.Event()
    runner = await serve(exporter, ("127.0.0.1", 0), "/metrics", None, stop)
    port = runner.addresses[0][1]
    web = WebProcess(exporter, ("127.0.0.1", _free_port()), "/metrics")
    await web.start()
    web_pid = web.pid
    if nice:
        os.nice(nice)  # Linux: this thread (the event loop), and threads it starts from now on

    gc_time = [0.0, 0.0]
    gc_full = [0.0, 0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            spent = time.perf_counter() - gc_time[1]
            gc_time[0] += spent
            if info["generation"] == 2:
                gc_full[0] += spent
                gc_full[1] += 1

    gc.callbacks.append(on_gc)

    async def cycle() -> dict[str, float]:
        gc_time[0] = 0.0
        gc_full[:] = [0.0, 0]
        c0, w0 = time.process_time(), time.perf_counter()
        await src["ServingSource"].run_once()
        await src["DcgmSource"].run_once()
        await src["CheckpointSource"].run_once()
        c1 = time.process_time()
        expo = await exporter.refresh_cooperatively()  # as Exporter._refresh_loop does
        await asyncio.to_thread(expo.gzipped)
        c2 = time.process_time()
        sent = web.handoffs
        web.publish(expo)  # as the refresh loop's listener does
        while web.handoffs == sent:
            await asyncio.sleep(0.001)
        c3 = time.process_time()
        return {"cpu": c3 - c0, "wall": time.perf_counter() - w0, "scrape_cpu": c1 - c0,
                "refresh_cpu": c2 - c1, "handoff_cpu": c3 - c2, "handoff_ms": web.handoff_seconds * 1e3,
                "derive_s": exporter.last_derive_seconds,
                "render_s": exporter.last_render_seconds, "gc_s": gc_time[0], "gc_full_s": gc_full[0], "gc_full_n": gc_full[1]}

    for _ in range(2):  # connections, parser caches, a first rate window
        await cycle()
        await asyncio.sleep(1.0)
    runs = []
    web_cpu0 = cpu_seconds(web_pid)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    for _ in range(cycles):
        if profiler:
            profiler.start()
        runs.append(await cycle())
        if profiler:
            profiler.stop()
        await asyncio.sleep(1.05)  # the simulator re-renders once a second
    if profiler:
        Path(profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    # The web process between the first and the last measured cycle: receiving each exposition
    # and idling (nothing scrapes it yet), per cycle.
    out["web_cpu_per_cycle"] = (cpu_seconds(web_pid) - web_cpu0) / cycles
    out.update({f"cycle_{k}": statistics.median(r[k] for r in runs) for k in runs[0]})
    out["serving_targets"] = len(exporter.state.serving)
    out["dcgm_targets"] = len(exporter.state.dcgm)
    up = sum(1 for (s, _), v in exporter.state.selfmon.targets.items() if v and s in ("serving", "gpu"))
    out["targets_up"] = up
    body = exporter.exposition.body
    out["metrics_bytes"] = len(body)
    out["metrics_gzip_bytes"] = len(exporter.exposition.gzipped())
    out["metrics_lines"] = body.count(b"\n")
    out["serving_series"] = body.count(b"\nai_serving_generation_tokens_per_second{")
    out["gpu_series"] = body.count(b"\nai_gpu_utilization_ratio{")

    # Baseline: download every target once, no parsing (same client settings, warm connections).
    urls = [t.url for t in src["ServingSource"].current_targets().values()] + [
        e.url for e in src["DcgmSource"].endpoints()
    ]
    session = new_session(64)
    sem = asyncio.Semaphore(64)

    async def get(url: str) -> int:
        async with sem:
            return len(await fetch_bounded(session, url, 20.0, 64 << 20))

    downloads = []
    for _ in range(3):
        c0 = time.process_time()
        sizes = await asyncio.gather(*(get(u) for u in urls))
        downloads.append(time.process_time() - c0)
        await asyncio.sleep(0.2)
    await session.close()
    out["download_cpu_s"] = min(downloads[1:])
    out["download_mb"] = sum(sizes) / 1e6

    # /metrics latency: idle, then while refresh cycles run back to back.
    thread_port = _metrics_thread(exporter)
    conn.send(("ready", port, thread_port, web.args[0].rpartition(":")[2]))
    c0 = time.process_time()
    await loop.run_in_executor(None, conn.recv)  # client idle phase done
    out["serve_cpu_s"] = time.process_time() - c0
    busy = True

    async def churn() -> None:
        while busy:
            await cycle()
            await asyncio.sleep(0)

    churner = asyncio.create_task(churn())
    conn.send("busy")
    await loop.run_in_executor(None, conn.recv)  # client busy phase done
    busy = False
    await churner
    gc.collect()
    out["rss_mb"], out["rss_peak_mb"] = rss_mb()
    out["rss_web_mb"], out["rss_web_peak_mb"] = rss_mb(web_pid)
    out["web_restarts"] = web.restarts
    stop.set()
    await web.stop()
    await runner.cleanup()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in exporter.sources:
        await s.close()
    conn.send(out)


def _metrics_thread(exporter: Any) -> int:
    """Prototype of a design change: /metrics served by a thread with its own event loop.  It
    reads only `exporter.exposition` (replaced in one assignment), so it needs no lock, and a
    long synchronous step on the main loop delays it by the GIL switch interval (5 ms), not by
    the whole step."""
    import queue
    import threading

    from aiohttp import web

    ports: queue.Queue[int] = queue.Queue()

    def run() -> None:
        loop = asyncio.new_event_loop()

        async def metrics(request: web.Request) -> web.Response:
            expo = exporter.exposition
            return web.Response(body=expo.gzipped(), headers={
                "Content-Encoding": "gzip", "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/metrics", metrics)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            ports.put(runner.addresses[0][1])

        loop.run_until_complete(start())
        loop.run_forever()

    threading.Thread(target=run, name="metrics", daemon=True).start()
    return ports.get(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exporter_main(cfg: dict[str, Any], conn, cycles: int, profile: str | None, nice: int = 0) -> None:
    asyncio.run(_exporter(cfg, conn, cycles, profile, nice))


# ---- scraper process --------------------------------------------------------------------------


def _client_main(url: str, concurrency: int, total: int, conn, every: float = 0.0) -> None:
    """Scrapers on raw asyncio streams (HTTP/1.1 keep-alive, Content-Length bodies): a full
    aiohttp client costs ~1.5 ms of CPU per 0.6 MB response, and on a 2-core machine that
    client-side queueing, not the exporter, would be what the percentiles measured.

    every = 0: closed loop, each scraper asks again as soon as it has its answer (a saturation
    test: p50 is about concurrency / throughput, whatever the server).  every > 0: bursts, all
    scrapers ask at the same instant every `every` seconds (20 Prometheus servers whose scrapes
    line up), so a percentile is the time to answer 20 simultaneous scrapes."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    request = (f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept-Encoding: gzip\r\n"
               "User-Agent: scale-bench\r\n\r\n").encode()

    async def main() -> dict[str, float]:
        lat: list[float] = []
        left = [total]

        async def one(reader, writer) -> None:
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:40]
            length = next(int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t)

        async def worker() -> None:
            reader, writer = await asyncio.open_connection(u.hostname, u.port)
            while left[0] > 0:
                left[0] -= 1
                await one(reader, writer)
            writer.close()

        async def bursts() -> None:
            conns = [await asyncio.open_connection(u.hostname, u.port) for _ in range(concurrency)]
            start = time.perf_counter()
            for i in range(max(1, total // concurrency)):
                await asyncio.sleep(max(0.0, start + i * every - time.perf_counter()))
                await asyncio.gather(*(one(r, w) for r, w in conns))
            for _, w in conns:
                w.close()

        t0 = time.perf_counter()
        if every:
            await bursts()
        else:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        lat.sort()
        return {"p50_ms": lat[len(lat) // 2] * 1e3, "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
                "max_ms": lat[-1] * 1e3, "rps": len(lat) / elapsed}

    conn.send(asyncio.run(main()))


def _client(ctx, url: str, requests: int, every: float = 0.0) -> dict[str, float]:
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_client_main, args=(url, 20, requests, child, every), daemon=True)
    p.start()
    res = parent.recv()
    p.join(10)
    return res


# ---- orchestration ----------------------------------------------------------------------------


def _wait(conn, proc, timeout: float, what: str) -> Any:
    """The next message from `proc`, or TimeoutError when it died or took too long."""
    deadline = time.monotonic() + timeout
    while not conn.poll(0.2):
        if not proc.is_alive() or time.monotonic() > deadline:
            raise TimeoutError(f"{what} ({'died' if not proc.is_alive() else f'over {timeout:.0f}s'})")
    return conn.recv()


def run_size(n: int, cycles: int, requests: int, timeout: float, profile: str | None = None,
             distinct: bool = False, main_nice: int = 0) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    sim_parent, sim_child = ctx.Pipe()
    sim = ctx.Process(target=_sim_main, args=(n, sim_child, distinct), daemon=True)
    t0 = time.perf_counter()
    sim.start()
    try:
        info = _wait(sim_parent, sim, timeout, f"simulator for N={n} not ready")
    except TimeoutError:
        sim.kill()
        raise
    setup_s = time.perf_counter() - t0
    exp_parent, exp_child = ctx.Pipe()
    exp = ctx.Process(target=_exporter_main, args=(info["config"], exp_child, cycles, profile, main_nice),
                      daemon=True)
    exp.start()
    try:
        _, port, thread_port, web_port = _wait(exp_parent, exp, timeout, f"exporter for N={n}: no cycles")
        url = f"http://127.0.0.1:{port}/metrics"
        web_url = f"http://127.0.0.1:{web_port}/metrics"
        idle = _client(ctx, url, requests)
        web_idle = _client(ctx, web_url, requests)
        exp_parent.send("idle done")
        _wait(exp_parent, exp, timeout, "exporter: no busy phase")
        # Interleaved, so that the baseline and the web process see the same load.
        busy = _client(ctx, url, requests)
        web_busy = _client(ctx, web_url, requests)
        threaded = _client(ctx, f"http://127.0.0.1:{thread_port}/metrics", requests)
        busy2 = _client(ctx, url, requests)
        web_busy2 = _client(ctx, web_url, requests)
        burst = _client(ctx, url, requests // 2, BURST_EVERY)
        web_burst = _client(ctx, web_url, requests // 2, BURST_EVERY)
        exp_parent.send("busy done")
        res = _wait(exp_parent, exp, timeout, f"exporter for N={n} did not stop")
    finally:
        exp.join(10)
        if exp.is_alive():
            exp.kill()
        sim_parent.send("stop")
        if sim_parent.poll(30):
            sim_parent.recv()
        sim.join(10)
        if sim.is_alive():
            sim.kill()
    res.update({f"idle_{k}": v for k, v in idle.items()})
    res.update({f"busy_{k}": v for k, v in busy.items()})
    res.update({f"thread_{k}": v for k, v in threaded.items()})
    res.update({f"web_idle_{k}": v for k, v in web_idle.items()})
    res.update({f"web_busy_{k}": v for k, v in web_busy.items()})
    res.update({f"busy2_{k}": v for k, v in busy2.items()})
    res.update({f"burst_{k}": v for k, v in burst.items()})
    res.update({f"web_burst_{k}": v for k, v in web_burst.items()})
    res.update({f"web_busy2_{k}": v for k, v in web_busy2.items()})
    res["sim_setup_s"] = setup_s
    res["kube_pods_served"] = info["pods"]
    res["n"] = n
    res["requests"] = requests
    return res


def parse_baseline(repeats: int = 30) -> dict[str, float]:
    """Parse ratio vs prometheus_client on a real-sized simulated vLLM payload, via parse_bench."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import parse_bench
    from prometheus_client.parser import text_string_to_metric_families

    from ai_signals_exporter import engines
    from ai_signals_exporter.expo import parse

    name, data = next((nm, d) for nm, d in parse_bench.payloads() if nm == "sim vllm")
    wanted = engines.wanted_names("vllm")
    ref = parse_bench.best(lambda: list(text_string_to_metric_families(data.decode())), max(5, repeats // 5))
    cold = parse_bench.best(lambda: parse.parse_families(data, wanted), repeats,
                            before=parse._LABEL_CACHE.clear)
    warm = parse_bench.best(lambda: parse.parse_families(data, wanted), repeats)
    return {"payload": name, "bytes": len(data), "ref_ms": ref * 1e3, "cold_us": cold * 1e6,
            "warm_us": warm * 1e6, "ratio_cold": ref / cold, "ratio_warm": ref / warm}


ROWS = [
    # (label, key, format, budget key or None, scales with size)
    ("refresh cycle CPU s, both processes", "cycle_total_cpu", "{:.3f}", "refresh_cpu_s", True),
    ("  main process CPU s (scrape+derive+render+hand-off)", "cycle_cpu", "{:.3f}", None, True),
    ("  of which scrape+parse CPU s", "cycle_scrape_cpu", "{:.3f}", None, True),
    ("  of which derive+render CPU s", "cycle_refresh_cpu", "{:.3f}", None, True),
    ("  of which hand-off to the web process CPU s", "cycle_handoff_cpu", "{:.4f}", None, True),
    ("  web process CPU s per cycle (receive + idle)", "web_cpu_per_cycle", "{:.4f}", None, True),
    ("  hand-off wall ms (write + drain, main)", "cycle_handoff_ms", "{:.1f}", None, True),
    ("  derive s / render s", "derive_render", "{}", None, False),
    ("  of which garbage collector s", "cycle_gc_s", "{:.3f}", None, True),
    ("    full collections s (count)", "gc_full", "{}", None, False),
    ("refresh cycle wall s", "cycle_wall", "{:.2f}", None, True),
    ("download-only CPU s (baseline)", "download_cpu_s", "{:.3f}", None, True),
    ("cycle CPU / download CPU", "cpu_vs_download", "{:.1f}x", None, False),
    ("RSS MB (after cycles)", "rss_mb", "{:.0f}", "rss_mb", True),
    ("RSS peak MB", "rss_peak_mb", "{:.0f}", None, True),
    ("RSS MB web process (peak)", "rss_web", "{}", None, False),
    ("/metrics bytes (gzip)", "metrics_size", "{}", None, True),
    ("/metrics p50 ms, idle", "idle_p50_ms", "{:.1f}", None, False),
    ("/metrics p99 ms, idle", "idle_p99_ms", "{:.1f}", "p99_ms", False),
    ("/metrics p50/p99 ms, idle, web process", "web_idle", "{}", "p99_ms", False),
    ("/metrics p50/p99 ms, during refresh, web process", "web_busy", "{}", "p99_ms", False),
    ("  baseline: in-process p50/p99 ms, during refresh", "busy", "{}", "p99_ms", False),
    ("  baseline: /metrics thread* p99 ms, during refresh", "thread_p99_ms", "{:.1f}", "p99_ms", False),
    ("bursts of 20: p50/p99 ms, during refresh, web process", "web_burst", "{}", "p99_ms", False),
    ("  baseline: in-process, bursts of 20, p50/p99 ms", "burst", "{}", "p99_ms", False),
    ("exporter CPU ms per /metrics request", "serve_cpu_ms", "{:.2f}", None, False),
    ("kube list CPU s (20 x N pods)", "kube_list_cpu_s", "{:.2f}", None, True),
    ("kube RSS bytes per pod", "kube_bytes_per_pod", "{:.0f}", None, False),
    ("targets up / scraped", "targets", "{}", None, False),
]


def _value(r: dict[str, Any], key: str) -> Any:
    if key == "cycle_total_cpu":
        return r["cycle_cpu"] + r["web_cpu_per_cycle"]
    if key == "rss_web":
        return f"{r['rss_web_mb']:.0f} ({r['rss_web_peak_mb']:.0f})"
    if key in ("web_idle", "web_busy", "busy", "web_burst", "burst"):
        # two interleaved phases during refresh: both shown
        first = f"{r[key + '_p50_ms']:.1f}/{r[key + '_p99_ms']:.1f}"
        if key in ("web_idle", "web_burst", "burst"):
            return first
        return first + f", {r[key + '2_p50_ms']:.1f}/{r[key + '2_p99_ms']:.1f}"
    if key == "derive_render":
        return f"{r['cycle_derive_s']:.3f}/{r['cycle_render_s']:.3f}"
    if key == "gc_full":
        return f"{r['cycle_gc_full_s']:.3f} ({r['cycle_gc_full_n']:.0f})"
    if key == "serve_cpu_ms":
        return r["serve_cpu_s"] / r["requests"] * 1e3
    if key == "cpu_vs_download":
        return r["cycle_cpu"] / r["download_cpu_s"] if r["download_cpu_s"] else float("nan")
    if key == "metrics_size":
        return f"{r['metrics_bytes'] / 1e6:.1f}M ({r['metrics_gzip_bytes'] / 1e6:.2f}M)"
    if key == "targets":
        return f"{r['targets_up']}/{r['serving_targets'] + r['dcgm_targets']}"
    return r[key]


def print_table(results: list[dict[str, Any]], parse: dict[str, float]) -> None:
    sizes = [r["n"] for r in results]
    head = f"{'figure':52s}" + "".join(f"{'N=' + str(n):>20s}" for n in sizes) + f"{'budget':>11s}"
    steps = list(zip(results, results[1:]))
    head += "".join(f"{'growth ' + str(a['n']) + '->' + str(b['n']):>17s}" for a, b in steps)
    print(head)
    print("-" * len(head))
    for label, key, fmt, budget, scales in ROWS:
        cells = []
        for r in results:
            v = _value(r, key)
            cells.append(fmt.format(v) if not isinstance(v, str) else v)
        line = f"{label:52s}" + "".join(f"{c:>20s}" for c in cells)
        line += f"{BUDGETS[budget][0] if budget else '':>11s}"
        for a, b in steps:
            if key == "metrics_size":
                va, vb = a["metrics_bytes"], b["metrics_bytes"]
            else:
                va, vb = _value(a, key), _value(b, key)
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va > 0 and scales:
                growth = f"x{vb / va:.1f} (N x{b['n'] / a['n']:.0f})"
                line += f"{growth:>17s}"
            else:
                line += f"{'':>17s}"
        print(line)
    print()
    print(f"parse ratio vs prometheus_client ({parse['payload']}, {parse['bytes']} bytes): "
          f"cold {parse['ratio_cold']:.0f}x, warm {parse['ratio_warm']:.0f}x "
          f"(ours {parse['cold_us']:.0f}/{parse['warm_us']:.0f} us, theirs {parse['ref_ms']:.2f} ms); "
          f"budget {BUDGETS['parse_ratio'][0]}")
    for r in results:
        print(f"N={r['n']}: {r['kube_pods']} pods listed in {r['kube_list_wall_s']:.1f}s wall, "
              f"downloads {r['download_mb']:.0f} MB/cycle, {r['serving_series']} serving and "
              f"{r['gpu_series']} GPU series, {r['metrics_lines']} lines, scrapers "
              f"{r['idle_rps']:.0f} req/s idle / {r['busy_rps']:.0f} req/s busy, simulator setup "
              f"{r['sim_setup_s']:.0f}s")
    print("* prototype: /metrics served from its own thread and event loop (bench/scale.py "
          "_metrics_thread), not what the exporter ships")
    verdicts = []
    for r in results:
        if r["n"] != 1000:
            continue
        total = r["cycle_cpu"] + r["web_cpu_per_cycle"]
        worst = max(r["web_busy_p99_ms"], r["web_busy2_p99_ms"])
        verdicts.append(f"refresh CPU (both processes) {'met' if total < 1 else 'MISSED'}")
        verdicts.append(f"RSS {'met' if r['rss_mb'] + r['rss_web_mb'] < 300 else 'MISSED'} (both processes)")
        verdicts.append(f"p99 idle (web process) {'met' if r['web_idle_p99_ms'] < 20 else 'MISSED'}")
        verdicts.append(f"p99 during refresh (web process) {'met' if worst < 20 else 'MISSED'}")
        verdicts.append(f"p99 of bursts of 20 during refresh (web process) "
                        f"{'met' if r['web_burst_p99_ms'] < 20 else 'MISSED'}")
    verdicts.append(f"parse {'met' if parse['ratio_cold'] >= 30 else 'MISSED'}")
    at = "N=1000" if any(r["n"] == 1000 for r in results) else "N=1000 not run; same run"
    print(f"budgets ({at}): " + ", ".join(verdicts))


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) // 1024 for ln in open("/proc/meminfo")
                if ln.startswith("MemTotal")), 0)
    return (f"{os.cpu_count()} CPUs ({model}), {mem / 1024:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="GPU node counts, comma-separated")
    ap.add_argument("--cycles", type=int, default=3, help="measured refresh cycles per size")
    ap.add_argument("--requests", type=int, default=1000, help="/metrics requests per phase")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per phase before giving up")
    ap.add_argument("--distinct-addresses", action="store_true",
                    help="every target on a loopback address of its own (127.1.x.y, 127.2.x.y), "
                         "as pods are, instead of all on 127.0.0.1 (connection reuse as in a cluster; "
                         "needs 2 x N + 100 file descriptors per process)")
    ap.add_argument("--main-nice", type=int, default=0, metavar="N",
                    help="experiment: lower the exporter's main process priority by N once its web "
                         "process runs (the web process keeps priority 0)")
    ap.add_argument("--profile", metavar="PREFIX",
                    help="pyinstrument the measured cycles; text report to PREFIX-N.txt")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"machine: {machine()}", flush=True)
    parse = parse_baseline()
    results = []
    for n in sizes:
        t = time.perf_counter()
        try:
            results.append(run_size(n, args.cycles, args.requests, args.timeout,
                                    f"{args.profile}-{n}.txt" if args.profile else None,
                                    args.distinct_addresses, args.main_nice))
        except TimeoutError as exc:  # bounded: report what finished
            print(f"N={n}: gave up: {exc}", flush=True)
            break
        print(f"N={n} done in {time.perf_counter() - t:.0f}s", flush=True)
    if results:
        print()
        print_table(results, parse)


if __name__ == "__main__":
    main()
