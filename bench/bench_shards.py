"""Shard budget (issue 12): each of 3 shards at N = 3,000 against a single instance at N = 1,000.

    python bench/bench_shards.py [--size 1000] [--shards 3] [--cycles 3] [--timeout 300]

Same run, same harness as bench/scale.py (its simulator, exporter process, web process and
refresh-cycle measurement, imported, not copied):
- the baseline: one unsharded instance against a simulated cluster of N GPU nodes;
- the shards: one simulated cluster of shards x N nodes (20 pods a node in the kube watch),
  and against it `global.shard = i`, `global.total_shards = shards`, each shard in its own
  exporter process (plus its web process), **one shard at a time**: on the 2-core machine the
  simulator at 3,000 nodes and three shards refreshing together would measure the contention,
  not a shard's cycle, which is what the budget is about.

Each line: refresh-cycle CPU summed over the main and web processes (median of --cycles), RSS of
both, the kube list CPU (every shard still lists and watches all pods), the targets it scraped,
and the ratio of each to the baseline.  Budget: every shard's cycle within 1.2x the baseline's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the harness lives next to this file)

BUDGET = 1.2


def _simulator(ctx, n: int, timeout: float) -> tuple[Any, Any, dict[str, Any]]:
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=scale._sim_main, args=(n, child, False), daemon=True)
    proc.start()
    try:
        info = scale._wait(parent, proc, timeout, f"simulator for N={n} not ready")
    except TimeoutError:
        proc.kill()
        raise
    return proc, parent, info


def _stop(proc, conn) -> None:
    conn.send("stop")
    if conn.poll(30):
        conn.recv()
    proc.join(10)
    if proc.is_alive():
        proc.kill()


def _instance(ctx, cfg: dict[str, Any], cycles: int, timeout: float, what: str) -> dict[str, Any]:
    """One exporter process through scale.py's `_exporter`: kube list, warm-up and measured
    cycles, the download baseline; its scraper phases are skipped (nothing scrapes /metrics)."""
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=scale._exporter_main, args=(cfg, child, cycles, None), daemon=True)
    proc.start()
    try:
        scale._wait(parent, proc, timeout, f"{what}: no cycles")
        parent.send("idle done")
        scale._wait(parent, proc, timeout, f"{what}: no busy phase")
        parent.send("busy done")  # the busy phase runs at most one more cycle
        return scale._wait(parent, proc, timeout, f"{what} did not stop")
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()


def _figures(r: dict[str, Any]) -> dict[str, float]:
    return {"cpu": r["cycle_cpu"] + r["web_cpu_per_cycle"], "main_cpu": r["cycle_cpu"],
            "web_cpu": r["web_cpu_per_cycle"], "scrape": r["cycle_scrape_cpu"],
            "derive": r["cycle_refresh_cpu"], "rss": r["rss_mb"] + r["rss_web_mb"],
            "rss_main": r["rss_mb"], "rss_web": r["rss_web_mb"], "list": r["kube_list_cpu_s"],
            "pods": r["kube_pods"], "targets": r["serving_targets"] + r["dcgm_targets"],
            "up": r["targets_up"], "download": r["download_cpu_s"], "wall": r["cycle_wall"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000, help="GPU nodes of the baseline (x shards for the shards)")
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=3, help="measured refresh cycles per instance")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per phase before giving up")
    args = ap.parse_args()
    n, k = args.size, args.shards
    print(f"machine: {scale.machine()}; load average {os.getloadavg()[0]:.2f} "
          f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    ctx = mp.get_context("spawn")
    rows: list[tuple[str, dict[str, float]]] = []

    t = time.perf_counter()
    sim, conn, info = _simulator(ctx, n, args.timeout)
    try:
        rows.append((f"single, N={n}", _figures(_instance(ctx, info["config"], args.cycles, args.timeout,
                                                          "baseline"))))
    finally:
        _stop(sim, conn)
    print(f"baseline done in {time.perf_counter() - t:.0f}s", flush=True)

    sim, conn, info = _simulator(ctx, n * k, args.timeout)
    try:
        for i in range(k):
            t = time.perf_counter()
            cfg = dict(info["config"])
            cfg["global"] = {**cfg["global"], "shard": i, "total_shards": k}
            rows.append((f"shard {i}/{k}, N={n * k}",
                         _figures(_instance(ctx, cfg, args.cycles, args.timeout, f"shard {i}"))))
            print(f"shard {i} done in {time.perf_counter() - t:.0f}s", flush=True)
    finally:
        _stop(sim, conn)

    base = rows[0][1]
    print()
    print(f"{'instance':22s}{'cycle CPU s':>12s}{'(main+web)':>16s}{'x base':>8s}{'scrape/derive':>15s}"
          f"{'RSS MB':>8s}{'(main+web)':>11s}{'x base':>8s}{'list CPU s':>11s}{'x base':>8s}"
          f"{'pods':>8s}{'targets up':>12s}{'download':>10s}")
    for label, f in rows:
        both = "{:.3f}+{:.3f}".format(f["main_cpu"], f["web_cpu"])
        split = "{:.2f}/{:.2f}".format(f["scrape"], f["derive"])
        rss = "{:.0f}+{:.0f}".format(f["rss_main"], f["rss_web"])
        up = "{}/{}".format(f["up"], f["targets"])
        print(f"{label:22s}{f['cpu']:12.3f}{both:>16s}{f['cpu'] / base['cpu']:7.2f}x{split:>15s}"
              f"{f['rss']:8.0f}{rss:>11s}{f['rss'] / base['rss']:7.2f}x{f['list']:11.2f}"
              f"{f['list'] / base['list']:7.2f}x{f['pods']:8.0f}{up:>12s}{f['download']:10.3f}")
    worst = max(f["cpu"] / base["cpu"] for _, f in rows[1:])
    print(f"\nbudget: each shard's cycle within {BUDGET}x the baseline's: "
          f"{'met' if worst <= BUDGET else 'MISSED'} (worst shard {worst:.2f}x); shards run one at a "
          f"time against one simulator of {n * k} nodes; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
