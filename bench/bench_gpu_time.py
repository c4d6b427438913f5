"""GPU time accounting cost at scale: one source cycle of `gpu.accounting.account` (integrate every
node's observation, advance, forget) plus producing its samples, for N GPU nodes x 8 GPUs, beside
the same run's baseline: parsing and extracting those nodes' dcgm payloads, which the source does
anyway every cycle.  CPU seconds.

Then the wiring: the gpu source's accounting step (`DcgmSource._account`: node capacities and the
pod -> workload index when the kube store changed, node scope, `account`), and the gpu area's
whole `derive` with the GPU time counters beside the same derive with none (the refresh's cost
of formatting them).

    python bench/bench_gpu_time.py [100 1000 5000]
"""

from __future__ import annotations

import sys
import time

from bench_gpu import build  # same fleet as the GPU area's benchmark

from ai_signals_exporter.config import Config
from ai_signals_exporter.gpu.state import GPU_TIME
from ai_signals_exporter.signals.gpu import derive
from ai_signals_exporter.sources.gpu import DcgmSource

from ai_signals_exporter.expo.families import render
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
    fams = {spec.name: spec.new() for spec in FAMILIES}
    for spec, labels, value in gpu_time_samples(acc) + price_samples(acc, {"default": 3.0}):
        fams[spec.name].add(labels, value)
    body = render(fams.values())
    t_samples = time.process_time() - t0
    print(
        f"{n_nodes:5d} nodes x 8 GPUs: account {t_account:6.3f} s CPU per cycle,"
        f" samples+render {t_samples:6.3f} s ({len(acc.seconds)} series, {len(body) / 1e3:.0f} kB);"
        f" baseline parse+extract {t_ingest:6.3f} s; account/baseline {t_account / t_ingest:5.2f}x"
    )



def bench_wired(n_nodes: int) -> None:
    config = Config.model_validate({"gpu": {"price_per_gpu_hour": {"default": 3.0}}})
    state, payloads = build(n_nodes)
    parsed = [(name, tuple(extract_readings(parse_families(body, WANTED), None, name)))
              for name, body in payloads]
    src = DcgmSource(config, state, clock=lambda: now)
    t_account = []
    for cycle in range(CYCLES):
        now = 1000.0 + 15.0 * cycle
        for name, readings in parsed:
            state.dcgm[name] = DcgmObservation(name, name, now, readings, up=True)
        state.kube.touch() if cycle == 0 else None  # the first cycle builds the kube inputs
        t0 = time.process_time()
        src._account()
        t_account.append(time.process_time() - t0)
    acc, empty = state[GPU_TIME], type(state[GPU_TIME])()
    t_with, t_without = [], []
    # Alternating, best of 3, after a first derive each: label values are memoised across refreshes.
    for _ in range(4):
        state[GPU_TIME] = acc
        t0 = time.process_time()
        with_time = derive(state, config, now)
        t_with.append(time.process_time() - t0)
        state[GPU_TIME] = empty
        t0 = time.process_time()
        derive(state, config, now)
        t_without.append(time.process_time() - t0)
    state[GPU_TIME] = acc
    t_with, t_without = min(t_with[1:]), min(t_without[1:])
    series = sum(len(f.samples) for f in with_time)
    print(
        f"{n_nodes:5d} nodes wired: source accounting step {t_account[0]:6.3f} s (first, kube inputs built),"
        f" {sum(t_account[1:]) / (CYCLES - 1):6.3f} s per later cycle; gpu derive {t_with:6.3f} s with GPU time"
        f" vs {t_without:6.3f} s without ({t_with / t_without:4.2f}x, {series} samples)"
    )


if __name__ == "__main__":
    for n in [int(a) for a in sys.argv[1:]] or [100, 1000, 5000]:
        bench(n)
        bench_wired(n)
