"""The cardinality guard (`global.max_series_per_source`, app.apply_cardinality_limit) at the
exporter level: a cluster that explodes in pods yields at most the cap per area, the rest is
dropped and counted in `ai_signals_exporter_series_dropped_total`, the output stays valid, and the
exporter's own health series are never the ones dropped."""

from __future__ import annotations

import pytest

import shutil
import subprocess
from pathlib import Path

from ai_signals_exporter.app import apply_cardinality_limit
from ai_signals_exporter.expo.families import Family
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.sim.engines import SimEngine, constant, make_app as engines_app
from ai_signals_exporter.sim.objects import make_node, make_pod

from ..helpers.kube import running_kube_api
from ..helpers.net import run_app
from .common import DROPPED, UP, eventually, running_exporter

# Timing-sensitive: also run under a CPU hog by scripts/test (-m timing).
pytestmark = pytest.mark.timing

PODS = 60
CAP = 40


def _serving_samples(body: bytes) -> int:
    return sum(1 for line in body.split(b"\n") if line.startswith(b"ai_serving_"))


async def test_pod_explosion_is_capped_and_counted(tmp_path: Path) -> None:
    engines = {f"/p{i}": SimEngine("vllm", "m", constant(1.0), seed=i) for i in range(PODS)}
    async with running_kube_api() as api, run_app(engines_app(engines)) as base:
        port = base.rsplit(":", 1)[1]
        api.add(make_node("n1", gpus=0))
        for i in range(PODS):
            api.add(make_pod("llm", f"pod-{i:03d}", node="n1", owner=("Deployment", "llama"), ip="127.0.0.1",
                             annotations={"ai-signals.io/scrape": "true", "ai-signals.io/port": port,
                                          "ai-signals.io/path": f"/p{i}"}))
        cfg = {"global": {"refresh_interval": "200ms", "max_series_per_source": CAP},
               "kubernetes": {"enabled": True, "kubeconfig": str(api.write_kubeconfig(tmp_path / "kc"))},
               "serving": {"interval": "500ms", "window": "5s"},
               "gpu": {"discovery": {"enabled": False}}, "checkpoints": {"discovery": {"enabled": False}}}
        async with running_exporter(cfg) as ex:
            await eventually(lambda: len(ex.exporter.state.serving) == PODS, timeout=20)

            def dropped() -> dict[str, float]:
                return {l["source"]: v for l, v in ex.families({DROPPED}).get(DROPPED, [])}

            first = await eventually(lambda: dropped().get("serving"), timeout=10)
            body = ex.exporter.exposition.body
            assert _serving_samples(body) == CAP
            # The counter counts every dropped sample of every refresh: it keeps growing.
            assert await eventually(lambda: dropped()["serving"] > first, timeout=5)
            promtool = shutil.which("promtool")
            assert promtool
            res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
            assert res.returncode == 0, (res.stdout + res.stderr).decode()[-2000:]
            # 60 targets of target_up alone exceed the cap of the "self" area: the guard must not
            # blind the operator to its own drops or to target health.
            got = parse_families(body, {UP, DROPPED})
            # + kube pods, nodes, the workloads serving discovery selects (deployments,
            # statefulsets, leaderworkersets) and the scheduling area's resourcequotas and events
            assert len(got[UP]) == PODS + 7
            assert "serving" in {l["source"] for l, _ in got[DROPPED]}


def test_limit_keeps_whole_families_in_order_and_counts_the_rest() -> None:
    fams = [Family(f"f{i}", "gauge", "h", ("k",)) for i in range(3)]
    for i, f in enumerate(fams):
        for j in range(10):
            f.add((f"{i}-{j}",), j)
    kept, dropped = apply_cardinality_limit(fams, 25)
    assert [len(f.samples) for f in kept] == [10, 10, 5] and dropped == 5
    kept, dropped = apply_cardinality_limit(fams, 1000)
    assert kept == fams and dropped == 0
