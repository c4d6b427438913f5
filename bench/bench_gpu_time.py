"""GPU time accounting cost at scale: one source cycle of `gpu.accounting.account` (integrate every
node's observation, advance, forget) plus producing its samples, for N GPU nodes x 8 GPUs, beside
the same run's baseline: parsing and extracting those nodes' dcgm payloads, which the source does
anyway every cycle.  CPU seconds.

    python bench/bench_gpu_time.py [100 1000 5000]
"""

from __future__ import annotations

import sys
import time

from bench_gpu import build  # same fleet as the GPU area's benchmark

from ai_signals_exporter.expo.families import Family, render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.gpu.accounting import (
    FAMILIES, GpuTimeAccumulator, account, gpu_time_samples, physical_capacity, price_samples,
    workload_resolver,
)
from ai_signals_exporter.gpu.observation import DcgmObservation
from ai_signals_exporter.gpu.readings import WANTED, extract_readings

CYCLES = 5


def bench(n_nodes: int) -> None:
    state, payloads = build(n_nodes)
    t0 = time.process_time()
    observations = {}
    for name, body in payloads:
        readings = extract_readings(parse_families(body, WANTED), None, name)
        observations[name] = DcgmObservation(name, name, 1.0, tuple(readings), up=True)
    t_ingest = time.process_time() - t0

    capacities = {
        n.name: physical_capacity(n.capacity, n.allocatable, n.labels) for n in state.kube.nodes.values()
    }
    resolve = workload_resolver(state.kube.pods.values())
    acc = GpuTimeAccumulator()
    t0 = time.process_time()
    for cycle in range(CYCLES):
        ts = 1000.0 + 15.0 * cycle
        obs = {k: DcgmObservation(o.url, o.node, ts, o.readings, up=True) for k, o in observations.items()}
        account(acc, obs, capacities, ts, threshold=0.05, interval=15.0, workload_of=resolve)
    t_account = (time.process_time() - t0) / CYCLES
    t0 = time.process_time()
    fams = {spec.name: Family(*spec) for spec in FAMILIES}
    for spec, labels, value in gpu_time_samples(acc) + price_samples(acc, {"default": 3.0}):
        fams[spec.name].add(labels, value)
    body = render(fams.values())
    t_samples = time.process_time() - t0
    print(
        f"{n_nodes:5d} nodes x 8 GPUs: account {t_account:6.3f} s CPU per cycle,"
        f" samples+render {t_samples:6.3f} s ({len(acc.seconds)} series, {len(body) / 1e3:.0f} kB);"
        f" baseline parse+extract {t_ingest:6.3f} s; account/baseline {t_account / t_ingest:5.2f}x"
    )


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [100, 1000, 5000]:
        bench(n)
