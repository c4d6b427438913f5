"""GPU time through a real Prometheus: the simulated fleet's hour (tests/unit/test_gpu_accounting_sim)
rendered at every source cycle, backfilled with `promtool tsdb create-blocks-from openmetrics`,
then `increase()` over the hour and the shipped recording expressions compared with the
accumulator and with the fleet's GPU count x time."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest

from ai_signals_exporter.expo.families import escape_label_value
from ai_signals_exporter.gpu.accounting import (
    FAMILIES, GPU_SECONDS, GpuTimeAccumulator, gpu_time_samples, price_samples,
)

from ..unit.test_gpu_accounting_sim import GPUS, HOUR, INTERVAL, fleet, run_hour
from ..helpers.promstack import prometheus, query
from .rulepack import need

PRICES = {"NVIDIA-H100-80GB-HBM3": 4.0, "default": 1.0}


def openmetrics(t0: float) -> tuple[str, GpuTimeAccumulator]:
    """Every cycle's samples as timestamped OpenMetrics, one block of lines per family."""
    lines: dict[str, list[str]] = {spec.name: [] for spec in FAMILIES}

    def on_cycle(now: float, acc: GpuTimeAccumulator) -> None:
        for spec, labels, value in gpu_time_samples(acc) + price_samples(acc, PRICES):
            pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in zip(spec.labelnames, labels))
            lines[spec.name].append(f"{spec.name}{{{pairs}}} {value} {now:.3f}")

    acc = run_hour(fleet(t0), t0, on_cycle)
    out = []
    for spec in FAMILIES:
        base = spec.name[: -len("_total")] if spec.type == "counter" else spec.name
        out.append(f"# TYPE {base} {spec.type}")
        out.append(f"# HELP {base} {spec.help}")
        out.extend(lines[spec.name])
    return "\n".join(out) + "\n# EOF\n", acc


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    workdir: Path = tmp_path_factory.mktemp("gputime")
    # Inside the default retention and clear of the head block, on a 2-hour block boundary.
    t0 = math.floor((time.time() - 6 * 3600) / 7200) * 7200.0
    text, acc = openmetrics(t0)
    (workdir / "gpu-time.om").write_text(text)
    res = subprocess.run(
        [need("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(workdir / "gpu-time.om"),
         str(workdir / "data")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
    with prometheus(workdir, config) as url:
        yield url, t0 + HOUR, acc


def test_increase_over_the_hour_matches_the_counters(backfilled):
    url, end, acc = backfilled
    result = query(url, "increase(ai_gpu_seconds_total[1h])", at=end)
    got = {tuple(r["metric"].get(k, "") for k in GPU_SECONDS.labelnames): float(r["value"][1])
           for r in result}
    assert set(got) == set(acc.seconds)
    for key, value in acc.seconds.items():
        # increase() extrapolates to the window's edges; the counters start one cycle in.
        assert got[key] == pytest.approx(value, rel=0.01, abs=INTERVAL * 2), key


def test_states_add_up_to_gpus_times_the_hour_per_node(backfilled):
    url, end, _ = backfilled
    result = query(url, "sum by (node) (increase(ai_gpu_seconds_total[1h]))", at=end)
    per_node = {r["metric"]["node"]: float(r["value"][1]) for r in result}
    assert per_node == pytest.approx({n: g * HOUR for n, g in GPUS.items()}, rel=0.01)


def test_idle_cost_per_workload_as_the_docs_ask_it(backfilled):
    url, end, _ = backfilled
    expr = (
        'sort_desc(sum by (namespace, workload_kind, workload) ('
        'increase(ai_gpu_seconds_total{state="allocated_idle"}[1h]) / 3600'
        ' * on (gpu_model) group_left () max by (gpu_model) (ai_gpu_price_per_hour)))'
    )
    result = query(url, expr, at=end)
    cost = {(r["metric"]["namespace"], r["metric"]["workload"]): float(r["value"][1]) for r in result}
    # nb-alice: one H100 all hour at 4/h; trainer-b: one H100 for 35 of 60 minutes; nb-bob's
    # physical MIG GPU is busy (another instance is), so it holds no idle physical time.
    assert cost == pytest.approx({("ml", "nb-alice"): 4.0, ("ml", "trainer-b"): 4.0 * 2100 / 3600},
                                 rel=0.01)
