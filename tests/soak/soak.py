"""Soak: the real exporter process against the simulated cluster, under constant scrape load,
with faults injected on a schedule; RSS and open file descriptors sampled from /proc.

    python -m tests.soak.soak --duration 300          # prints a JSON report

Faults, rotating every `fault_every` seconds: Kubernetes API down then up, watches dropped,
history compacted (410 Gone relist), SIGHUP with an invalid config then a valid one.  Always on:
serving targets that hang, reset mid-body and stream an endless body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from ai_signals_exporter.sim import gpu, scheduling, serving, streaming, training
from ai_signals_exporter.sim.cluster import SimCluster

from ..helpers.net import free_port
from ..helpers.faultserver import VLLM_PAYLOAD, FaultServer, endless, hang, reset_mid_body


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def soak(duration: float = 120.0, scrapers: int = 10, fault_every: float = 5.0,
               sample_every: float = 2.0) -> dict:
    cluster = SimCluster()
    await cluster.start()
    await serving.attach(cluster)
    await gpu.attach(cluster)
    await training.attach(cluster)
    await streaming.attach(cluster, interval="3s", timeout="3s")
    # Scheduling churn: a rejected GPU pod and a quota rejection every second, a preemption of
    # the training job every 20 s (pods deleted and recreated): counters' memory must stay flat.
    await scheduling.attach(cluster, reject_every=1.0, quota_every=1.0, preempt_every=20.0)
    faults = [FaultServer(hang()), FaultServer(reset_mid_body(VLLM_PAYLOAD * 50)), FaultServer(endless())]
    fault_urls = [await f.__aenter__() for f in faults]
    cfg = cluster.config
    cfg["global"] = {"refresh_interval": "500ms"}
    cfg["serving"].update(timeout="1s", max_response_bytes=1 << 20)
    cfg["serving"]["targets"] = cfg["serving"].get("targets", []) + [
        {"url": u + "/metrics", "labels": {"pod": f"fault-{i}"}} for i, u in enumerate(fault_urls)]
    cfg["kubernetes"].update(watch_timeout="20s", request_timeout="2s", backoff_max="2s")
    good_yaml = yaml.safe_dump(cfg)
    cfg_file = cluster.tmpdir / "config.yaml"
    cfg_file.write_text(good_yaml)
    port = free_port()
    log = open(cluster.tmpdir / "exporter.log", "w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai_signals_exporter.cli", f"--config.file={cfg_file}",
        f"--web.listen-address=127.0.0.1:{port}", stdout=log, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/metrics"
    stats = {"scrapes": 0, "scrape_errors": 0, "latencies": [], "faults": []}
    samples: list[tuple[float, int, int]] = []
    stop = asyncio.Event()

    async def scraper(i: int, session: aiohttp.ClientSession) -> None:
        headers = {"Accept-Encoding": "gzip" if i % 2 else "identity"}
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError:
                ok = False
            stats["latencies"].append(time.monotonic() - t0)
            stats["scrapes"] += 1
            stats["scrape_errors"] += not ok
            await asyncio.sleep(0.05)

    async def inject() -> None:
        api, step = cluster.kube, 0
        while not stop.is_set():
            await asyncio.sleep(fault_every)
            kind = ["api_down", "api_up", "drop_watches", "compact", "bad_reload", "good_reload"][step % 6]
            step += 1
            if kind == "api_down":
                api.set_down(True)
            elif kind == "api_up":
                api.set_down(False)
            elif kind == "drop_watches":
                api.drop_watches()
            elif kind == "compact":
                api.compact()
                api.drop_watches()
            elif kind == "bad_reload":
                cfg_file.write_text("serving: {windw: 1s}\n")
                proc.send_signal(signal.SIGHUP)
            else:
                cfg_file.write_text(good_yaml)
                proc.send_signal(signal.SIGHUP)
            stats["faults"].append(kind)

    async def sample(t_start: float) -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t_start, _rss_kib(proc.pid), _fds(proc.pid)))
            await asyncio.sleep(sample_every)

    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(url) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("exporter did not start")
                await asyncio.sleep(0.2)
            t_start = time.monotonic()
            tasks = [asyncio.create_task(scraper(i, session)) for i in range(scrapers)]
            tasks += [asyncio.create_task(inject()), asyncio.create_task(sample(t_start))]
            await asyncio.sleep(duration)
            stop.set()
            await asyncio.gather(*tasks)
        alive = proc.returncode is None
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        for f in faults:
            await f.__aexit__(None, None, None)
        cluster.kube.set_down(False)
        await cluster.stop()

    warm = [s for s in samples if s[0] >= duration * 0.25]  # after warm-up: caches, histories full
    half = len(warm) // 2
    first, last = warm[:half], warm[half:]
    lat = sorted(stats["latencies"])
    return {
        "duration_s": duration,
        "scrapes": stats["scrapes"],
        "scrape_errors": stats["scrape_errors"],
        "scrape_p50_ms": round(1000 * lat[len(lat) // 2], 2),
        "scrape_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2),
        "faults_injected": len(stats["faults"]),
        "alive_until_sigterm": alive,
        "exit_code": rc,
        "rss_mib_start": round(samples[0][1] / 1024, 1),
        "rss_mib_warm_first_half_median": round(statistics.median(s[1] for s in first) / 1024, 1),
        "rss_mib_warm_second_half_median": round(statistics.median(s[1] for s in last) / 1024, 1),
        "rss_mib_max": round(max(s[1] for s in samples) / 1024, 1),
        "fds_warm_first_half_max": max(s[2] for s in first),
        "fds_warm_second_half_max": max(s[2] for s in last),
        "fds_max": max(s[2] for s in samples),
        "samples": len(samples),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--scrapers", type=int, default=10)
    p.add_argument("--fault-every", type=float, default=5.0)
    args = p.parse_args()
    print(json.dumps(asyncio.run(soak(args.duration, args.scrapers, args.fault_every)), indent=2))


if __name__ == "__main__":
    main()
