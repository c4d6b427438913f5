"""The demo's scaling workload through the real kube source (list/watch of the test API server)
and the real serving source (HTTP scrapes), on a clock the test moves: replicas by state follow
the pods' phases, and each new replica's cold start is observed once, phase by phase."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.sources.kube import KubeSource
from ai_signals_exporter.areas import kube_watches
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.signals import serving_lifecycle
from ai_signals_exporter.sim import coldstart
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sources.serving import ServingSource

from ..helpers.clock import FakeClock
from ..helpers.promstack import need
from ..helpers.wait import wait_for

T0 = 1_800_000_000.0  # the demo's cycle starts at attach


def mistral(state):
    return [p for p in state.kube.pods.values() if p.workload == "mistral-7b"]


async def test_demo_workload_cold_starts_and_replicas(tmp_path) -> None:
    clock = FakeClock(T0)
    async with SimCluster(tmp_path) as cluster:
        w = await coldstart.attach(cluster, clock=clock, tick=0.02)
        exporter = Exporter(cluster.exporter_config())
        config, state = exporter.config, exporter.state
        kube = KubeSource(config, state, kube_watches(config), clock)
        kube_task = asyncio.create_task(kube.run())
        scrape = ServingSource(config, state, clock)
        seen_states = set()
        try:
            await wait_for(lambda: {"pods", "deployments"} <= state.kube.synced, timeout=20)
            assert [d.name for d in state.kube.deployments.values()] == ["mistral-7b"]
            for step in range(0, 181, 5):  # one step in load at 60 s, two replicas starting
                clock.t = T0 + step
                await wait_for(lambda: len(w.pods) == coldstart.demo_replicas(clock.t - T0) and (
                    len(mistral(state)), sum(p.ready for p in mistral(state))) == (
                    len(w.pods), len(w.ready_pods(clock.t))), timeout=10, what=f"kube state at +{step}s")
                await scrape.run_once()
                body = render(serving_lifecycle.derive(state, config, clock.t))
                fams = parse_families(body,
                                      {"ai_serving_replicas", "ai_serving_cold_start_seconds_count",
                                       "ai_serving_cold_start_seconds_sum"})
                by_state = {l["state"]: v for l, v in fams["ai_serving_replicas"] if l["workload"] == "mistral-7b"}
                seen_states.add((by_state["ready"], by_state["starting"]))
                if step == 65:  # two replicas pending: their histograms exist, at zero, before any start ends
                    counts = {l["phase"]: v for l, v in fams["ai_serving_cold_start_seconds_count"]}
                    assert counts == dict.fromkeys(("scheduling", "init", "startup", "first_token", "total"), 0.0)
        finally:
            kube_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kube_task
            await scrape.close()
            await kube.close()
    res = subprocess.run([need("promtool"), "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert b"ai_serving_cold_start_seconds_bucket" in body
    # 1 ready before the step; 1 ready + 2 starting while they load; 3 ready after.
    assert {(1.0, 0.0), (1.0, 2.0), (3.0, 0.0)} <= seen_states, seen_states
    count = {l["phase"]: v for l, v in fams["ai_serving_cold_start_seconds_count"] if l["workload"] == "mistral-7b"}
    total = {l["phase"]: v for l, v in fams["ai_serving_cold_start_seconds_sum"] if l["workload"] == "mistral-7b"}
    assert count == dict.fromkeys(("scheduling", "init", "startup", "first_token", "total"), 2.0)
    p = coldstart.DEMO_PROFILE
    assert total["scheduling"] == 2 * p.scheduling and total["init"] == 2 * p.init
    assert total["startup"] == 2 * p.startup
    # The first token is counted by the first scrape after Ready (5 s steps).
    assert 0 <= total["first_token"] <= 2 * 5
    assert total["total"] == total["scheduling"] + total["init"] + total["startup"] + total["first_token"]
