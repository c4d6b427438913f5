"""`ai-signals-exporter demo`: the exporter against a simulated cluster, live.

Starts the Kubernetes test API server, simulated vLLM/TGI pods, GPU nodes with dcgm-exporter
endpoints, a training job writing checkpoints (sometimes interrupted) and a streaming backend
behind a buffering and a clean proxy path; then runs the real exporter against all of it and
prints a summary of the derived signals every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections import defaultdict

from ..app import Exporter
from ..webproc import WebProcess
from ..expo.parse import parse_families
from ..gpu.accounting import STATES as GPU_TIME_STATES
from ..signals import checkpoints as sig_ckpt
from ..signals import gpu as sig_gpu
from ..signals import selfmon as sig_self
from ..signals import serving as sig_serving
from ..signals import serving_lifecycle as lifecycle
from ..signals import streaming as sig_stream
from . import coldstart, gpu, scheduling, serving, streaming, training
from .cluster import SimCluster

log = logging.getLogger(__name__)

SUMMARY_EVERY_SECONDS = 5.0

# The families the summary reads, from the areas' specs (never hand-copied names).
SERVING_TOKENS, SERVING_WAITING, CAPACITY = sig_serving.GENERATION_TOKENS, sig_serving.WAITING, sig_serving.CAPACITY_RATIO
GPU_IDLE, NODE_TAINTED, NODE_IDLE, NODE_NON_GPU, NODE_ALLOCATABLE = (
    sig_gpu.IDLE_SECONDS, sig_gpu.NODE_TAINTED, sig_gpu.NODE_IDLE_GPUS, sig_gpu.NODE_NON_GPU_PODS,
    sig_gpu.NODE_ALLOCATABLE_GPUS,
)
_SUMMARY_NAMES = {
    spec.name
    for spec in (
        SERVING_TOKENS, SERVING_WAITING, CAPACITY, GPU_IDLE, NODE_TAINTED, NODE_IDLE, NODE_NON_GPU,
        NODE_ALLOCATABLE, sig_ckpt.AGE, sig_ckpt.IN_PROGRESS, sig_ckpt.EXPECTED_INTERVAL,
        sig_stream.BUFFERED, sig_stream.BUFFERING_DELAY, sig_self.TARGET_UP, sig_gpu.GPU_SECONDS,
        lifecycle.REPLICAS,
    )
} | scheduling.SUMMARY_NAMES | {lifecycle.COLD_START.name + "_sum", lifecycle.COLD_START.name + "_count"}



def summarize(body: bytes) -> list[str]:
    """A few human lines from the exporter's own output (what a user would graph)."""
    m = parse_families(body, _SUMMARY_NAMES)
    lines = []
    per_workload: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for labels, v in m.get(SERVING_TOKENS.name, []):
        w = per_workload[f"{labels['namespace']}/{labels['workload']} ({labels['engine']})"]
        w[0] += v
        w[2] += 1
    for labels, v in m.get(SERVING_WAITING.name, []):
        per_workload[f"{labels['namespace']}/{labels['workload']} ({labels['engine']})"][1] += v
    for name, (tok, queue, pods) in sorted(per_workload.items()):
        lines.append(f"  serving  {name}: {tok:8.1f} tok/s over {int(pods)} pods, queue {queue:.0f}")
    replicas: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, v in m.get(lifecycle.REPLICAS.name, []):
        replicas[f"{labels['namespace']}/{labels['workload']}"][labels["state"]] = v
    starts = {(l["namespace"], l["workload"]): v for l, v in m.get(lifecycle.COLD_START.name + "_count", [])
              if l["phase"] == "total"}
    secs = {(l["namespace"], l["workload"]): v for l, v in m.get(lifecycle.COLD_START.name + "_sum", [])
            if l["phase"] == "total"}
    for name, by_state in sorted(replicas.items()):
        key = tuple(name.split("/", 1))
        n = starts.get(key, 0)
        mean = f", mean cold start {secs[key] / n:.0f}s over {n:.0f}" if n else ""
        lines.append(f"  replicas {name}: {by_state.get('ready', 0):.0f} ready, {by_state.get('starting', 0):.0f} starting,"
                     f" {by_state.get('terminating', 0):.0f} terminating{mean}")
    idle = [(l, v) for l, v in m.get(GPU_IDLE.name, []) if v > 0]
    tainted = {l["node"]: v for l, v in m.get(NODE_TAINTED.name, [])}
    if tainted:
        total = sum(v for _, v in m.get(NODE_ALLOCATABLE.name, []))
        untainted = sorted(n for n, v in tainted.items() if not v)
        cpu_pods = sorted(l["node"] for l, v in m.get(NODE_NON_GPU.name, []) if v > 0)
        lines.append(
            f"  gpu      {len(tainted)} GPU nodes, {total:.0f} GPUs, {len(idle)} idle now"
            f" (longest {max((v for _, v in idle), default=0):.0f}s);"
            f" untainted: {', '.join(untainted) or 'none'}; CPU-only pods on: {', '.join(cpu_pods) or 'none'}"
        )
    by_state: dict[str, float] = defaultdict(float)
    for labels, v in m.get(sig_gpu.GPU_SECONDS.name, []):
        by_state[labels["state"]] += v
    total = sum(by_state.values())
    if total:
        lines.append(
            f"  gpu time {total / 3600:.2f} GPU-hours since start: "
            + ", ".join(f"{s} {100 * by_state[s] / total:.0f}%" for s in GPU_TIME_STATES)
        )
    expected = {l["store"]: v for l, v in m.get(sig_ckpt.EXPECTED_INTERVAL.name, [])}
    busy = {l["store"]: v for l, v in m.get(sig_ckpt.IN_PROGRESS.name, [])}
    for labels, age in m.get(sig_ckpt.AGE.name, []):
        store = labels["store"]
        lines.append(
            f"  ckpt     {store} ({labels['layout']}): last complete {age:.0f}s ago,"
            f" expected every {expected.get(store, float('nan')):.0f}s,"
            f" save in progress: {'yes' if busy.get(store) else 'no'}"
        )
    delay = {l["probe"]: v for l, v in m.get(sig_stream.BUFFERING_DELAY.name, [])}
    for labels, v in m.get(sig_stream.BUFFERED.name, []):
        p = labels["probe"]
        lines.append(
            f"  stream   {p}: {'BUFFERED' if v else 'clean'}"
            f" (ingress first chunk {delay.get(p, float('nan')):+.2f}s vs direct)"
        )
    lines.extend(scheduling.summarize(m))
    down = [l["target"] for l, v in m.get(sig_self.TARGET_UP.name, []) if not v]
    if down:
        lines.append(f"  down     {len(down)} target(s): {', '.join(down[:3])}")
    return lines


async def _demo(args: argparse.Namespace) -> int:
    cluster = SimCluster()
    await cluster.start()
    await serving.attach(cluster)
    await coldstart.attach(cluster)
    # Every GPU time state shows: free GPU 7 of gpu-h100-a drops out of dcgm for 5 minutes of
    # every half hour (no_telemetry); prices make ai_gpu_price_per_hour and the cost rules work.
    await gpu.attach(cluster, sim=gpu.default_fleet(telemetry_gaps=True), prices=gpu.DEFAULT_PRICES)
    await training.attach(cluster)
    await streaming.attach(cluster)
    await scheduling.attach(cluster)
    exporter = Exporter(cluster.exporter_config())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await exporter.start()
    web = WebProcess(exporter, args.listen, args.telemetry_path, None, args.log_level, args.log_format)
    try:
        await web.start()
    except BaseException:
        await exporter.stop()
        await cluster.stop()
        raise
    host = "127.0.0.1" if args.listen[0] in ("0.0.0.0", "::") else args.listen[0]
    url = f"http://{host}:{args.listen[1]}"
    print(f"ai-signals-exporter demo: metrics at {url}{args.telemetry_path}, status page at {url}/", flush=True)
    print(f"  simulated Kubernetes API at {cluster.kube.base_url}; Ctrl-C stops", flush=True)
    started = time.monotonic()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), SUMMARY_EVERY_SECONDS)
            except TimeoutError:
                pass
            if args.summary and exporter.exposition.body:
                print(time.strftime("[%H:%M:%S]"), flush=True)
                for line in summarize(exporter.exposition.body):
                    print(line, flush=True)
            if args.duration and time.monotonic() - started >= args.duration:
                break
    finally:
        await web.stop()
        await exporter.stop()
        await cluster.stop()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args))
    except OSError as exc:
        print(f"demo: cannot start: {exc}", file=sys.stderr)
        return 1
