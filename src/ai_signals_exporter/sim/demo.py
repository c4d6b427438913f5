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
from ..cli import serve
from ..expo.parse import parse_families
from . import gpu, serving, streaming, training
from .cluster import SimCluster

log = logging.getLogger(__name__)

SUMMARY_EVERY_SECONDS = 5.0

_SUMMARY_NAMES = {
    "ai_serving_generation_tokens_per_second",
    "ai_serving_requests_waiting",
    "ai_serving_token_capacity_ratio",
    "ai_gpu_idle_seconds",
    "ai_gpu_node_tainted",
    "ai_gpu_node_idle_gpus",
    "ai_gpu_node_non_gpu_pods",
    "ai_gpu_node_allocatable_gpus",
    "ai_checkpoint_age_seconds",
    "ai_checkpoint_in_progress",
    "ai_checkpoint_expected_interval_seconds",
    "ai_stream_buffered",
    "ai_stream_buffering_delay_seconds",
    "ai_signals_exporter_target_up",
}


def summarize(body: bytes) -> list[str]:
    """A few human lines from the exporter's own output (what a user would graph)."""
    m = parse_families(body, _SUMMARY_NAMES)
    lines = []
    per_workload: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for labels, v in m.get("ai_serving_generation_tokens_per_second", []):
        w = per_workload[f"{labels['namespace']}/{labels['workload']} ({labels['engine']})"]
        w[0] += v
        w[2] += 1
    for labels, v in m.get("ai_serving_requests_waiting", []):
        per_workload[f"{labels['namespace']}/{labels['workload']} ({labels['engine']})"][1] += v
    for name, (tok, queue, pods) in sorted(per_workload.items()):
        lines.append(f"  serving  {name}: {tok:8.1f} tok/s over {int(pods)} pods, queue {queue:.0f}")
    idle = [(l, v) for l, v in m.get("ai_gpu_idle_seconds", []) if v > 0]
    tainted = {l["node"]: v for l, v in m.get("ai_gpu_node_tainted", [])}
    if tainted:
        total = sum(v for _, v in m.get("ai_gpu_node_allocatable_gpus", []))
        untainted = sorted(n for n, v in tainted.items() if not v)
        cpu_pods = sorted(l["node"] for l, v in m.get("ai_gpu_node_non_gpu_pods", []) if v > 0)
        lines.append(
            f"  gpu      {len(tainted)} GPU nodes, {total:.0f} GPUs, {len(idle)} idle now"
            f" (longest {max((v for _, v in idle), default=0):.0f}s);"
            f" untainted: {', '.join(untainted) or 'none'}; CPU-only pods on: {', '.join(cpu_pods) or 'none'}"
        )
    expected = {l["store"]: v for l, v in m.get("ai_checkpoint_expected_interval_seconds", [])}
    busy = {l["store"]: v for l, v in m.get("ai_checkpoint_in_progress", [])}
    for labels, age in m.get("ai_checkpoint_age_seconds", []):
        store = labels["store"]
        lines.append(
            f"  ckpt     {store} ({labels['layout']}): last complete {age:.0f}s ago,"
            f" expected every {expected.get(store, float('nan')):.0f}s,"
            f" save in progress: {'yes' if busy.get(store) else 'no'}"
        )
    delay = {l["probe"]: v for l, v in m.get("ai_stream_buffering_delay_seconds", [])}
    for labels, v in m.get("ai_stream_buffered", []):
        p = labels["probe"]
        lines.append(
            f"  stream   {p}: {'BUFFERED' if v else 'clean'}"
            f" (ingress first chunk {delay.get(p, float('nan')):+.2f}s vs direct)"
        )
    down = [l["target"] for l, v in m.get("ai_signals_exporter_target_up", []) if not v]
    if down:
        lines.append(f"  down     {len(down)} target(s): {', '.join(down[:3])}")
    return lines


async def _demo(args: argparse.Namespace) -> int:
    cluster = SimCluster()
    await cluster.start()
    await serving.attach(cluster)
    await gpu.attach(cluster)
    await training.attach(cluster)
    await streaming.attach(cluster)
    exporter = Exporter(cluster.exporter_config())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await exporter.start()
    runner = await serve(exporter, args.listen, args.telemetry_path, None, stop)
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
        await runner.cleanup()
        await exporter.stop()
        await cluster.stop()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args))
    except OSError as exc:
        print(f"demo: cannot start: {exc}", file=sys.stderr)
        return 1
