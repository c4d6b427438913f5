"""GPU time through a real Prometheus: the simulated fleet's hour (tests/unit/test_gpu_accounting_sim)
rendered at every source cycle, backfilled with `promtool tsdb create-blocks-from openmetrics`,
then `increase()` over the hour and the shipped recording expressions compared with the
accumulator and with the fleet's GPU count x time.  The same for the demo fleet scraped by the
real gpu source and rendered by the exporter, and the GPU time dashboard's queries over it."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from pathlib import Path

import pytest

from ai_signals_exporter.expo.families import escape_label_value, render
from ai_signals_exporter.gpu.accounting import (
    FAMILIES, GPU_SECONDS, GpuTimeAccumulator, gpu_time_samples, price_samples,
)
from ai_signals_exporter.signals import gpu as sig_gpu

from ..integration.test_gpu_time_source import GPUS as DEMO_GPUS
from ..integration.test_gpu_time_source import INTERVAL as DEMO_INTERVAL
from ..integration.test_gpu_time_source import TRUTH as DEMO_TRUTH
from ..integration.test_gpu_time_source import run_hour as run_demo_hour
from ..unit.test_gpu_accounting_sim import GPUS, HOUR, INTERVAL, fleet, run_hour
from ..helpers.promstack import prometheus, query
from .rulepack import DASHBOARDS, need

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


# --- the demo fleet through the real gpu source and the exporter's rendering -------------------

def rendered_openmetrics(t0: float) -> str:
    """The demo fleet's hour through DcgmSource (tests/integration/test_gpu_time_source), the gpu
    area's GPU time families rendered by the exporter's own renderer after every round, each
    sample line stamped with the round's time."""
    names = {spec.name for spec in FAMILIES}
    lines: dict[str, list[str]] = {spec.name: [] for spec in FAMILIES}

    def on_cycle(state, config, now: float) -> None:
        body = render(f for f in sig_gpu.derive(state, config, now) if f.name in names).decode()
        for line in body.splitlines():
            if line and not line.startswith("#"):
                lines[line.split("{", 1)[0]].append(f"{line} {now:.3f}")

    asyncio.run(run_demo_hour(t0=t0, on_cycle=on_cycle))
    out = []
    for spec in FAMILIES:
        base = spec.name[: -len("_total")] if spec.type == "counter" else spec.name
        out += [f"# TYPE {base} {spec.type}", f"# HELP {base} {spec.help}", *lines[spec.name]]
    return "\n".join(out) + "\n# EOF\n"


@pytest.fixture(scope="module")
def demo_backfilled(tmp_path_factory):
    workdir: Path = tmp_path_factory.mktemp("gputime-demo")
    # On a 2-hour block boundary, which is also a whole number of the fleet's load cycles.
    t0 = math.floor((time.time() - 6 * 3600) / 7200) * 7200.0
    (workdir / "demo.om").write_text(rendered_openmetrics(t0))
    res = subprocess.run(
        [need("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(workdir / "demo.om"),
         str(workdir / "data")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    with prometheus(workdir, {"global": {"scrape_interval": "15s"}, "scrape_configs": []}) as url:
        yield url, t0 + HOUR


def test_demo_fleet_increase_over_the_hour_matches_truth(demo_backfilled):
    url, end = demo_backfilled
    result = query(url, "sum by (node, namespace, workload_kind, workload, state) "
                        "(increase(ai_gpu_seconds_total[1h])) > 0", at=end)
    got = {tuple(r["metric"].get(k, "") for k in ("node", "namespace", "workload_kind", "workload", "state")):
           float(r["value"][1]) for r in result}
    assert set(got) == set(DEMO_TRUTH), set(got) ^ set(DEMO_TRUTH)
    for key, truth in DEMO_TRUTH.items():
        assert got[key] == pytest.approx(truth, rel=0.01, abs=2 * DEMO_INTERVAL), key
    result = query(url, "sum by (node) (increase(ai_gpu_seconds_total[1h]))", at=end)
    assert {r["metric"]["node"]: float(r["value"][1]) for r in result} == pytest.approx(
        {n: g * HOUR for n, g in DEMO_GPUS.items()}, rel=0.01)


def _panel(title: str) -> str:
    dash = json.loads((DASHBOARDS / "gpu-time.json").read_text())
    expr = next(p for p in dash["panels"] if p["title"] == title)["targets"][0]["expr"]
    return expr.replace("$__range", "1h").replace("$node", ".*").replace("$namespace", ".*")


def test_gpu_time_dashboard_answers_who_held_gpus_idle_and_what_it_cost(demo_backfilled):
    url, end = demo_backfilled

    def per_workload(title: str) -> dict[str, float]:
        return {r["metric"]["workload"]: float(r["value"][1]) for r in query(url, _panel(title), at=end)}

    jupyter = {f"jupyter-{n}": 2 / 9 for n in ("alice", "bob", "carol")}  # a third of 2/3 of an L4
    assert per_workload("Top workloads by GPU-hours held idle") == pytest.approx(
        {"notebook": 1.0, "embed-job": 0.6, **jupyter}, rel=0.01)
    assert per_workload("Idle cost per workload") == pytest.approx(
        {"notebook": 4.0, "embed-job": 2.4, **{k: v * 0.8 for k, v in jupyter.items()}}, rel=0.01)

    def scalar(title: str) -> float:
        (r,) = query(url, _panel(title), at=end)
        return float(r["value"][1])

    assert scalar("GPU-hours in range") == pytest.approx(sum(DEMO_GPUS.values()), rel=0.01)
    # Free H100s: gpu-h100-a's two (less GPU 7's 10 minutes missing), gpu-h100-b's five, at 4/h.
    assert scalar("Cost of free GPUs") == pytest.approx((2 - 600 / HOUR + 5) * 4.0, rel=0.01)
    held_idle = 1.0 + 0.6 + 3 * 2 / 9
    held = 4 + 1.0 + 1.0 + 2 + 1 + 1 + 1  # llama, embed-job, notebook, mistral, phi-3, jupyters, chats
    assert scalar("Held idle (share of held GPU time)") == pytest.approx(held_idle / held, rel=0.01)
