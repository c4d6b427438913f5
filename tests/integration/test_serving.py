"""Serving signals end to end: simulated engines over real HTTP, discovery through the Kubernetes
test API server, broken targets, and a real Prometheus scraping the exporter."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp import web

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.server import make_app
from ai_signals_exporter.signals.serving import _window as serving_window
from ai_signals_exporter.sim import serving as sim_serving
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sim.engines import SimEngine, constant, make_app as engines_app
from ai_signals_exporter.sources.serving import ServingSource

from ..helpers.clock import FakeClock
from ..helpers.kube import running_kube_source
from ..helpers.wait import wait_for, wait_until
from ..helpers.net import run_app
from ..helpers.promstack import prometheus, query

GEN = "ai_serving_generation_tokens_per_second"
WANT = {GEN, "ai_serving_requests_waiting", "ai_serving_token_capacity_ratio",
        "ai_serving_time_to_first_token_seconds", "ai_serving_kv_cache_usage_ratio",
        "ai_signals_exporter_target_up", "ai_signals_exporter_errors_total"}

FAST = {"global": {"refresh_interval": "200ms"}, "serving": {"interval": "500ms", "window": "5s"}}


async def test_discovered_pods_rates_match_ground_truth() -> None:
    """Pods discovered from annotations in the test API server; per-pod token rate within 10 %
    of the simulator's ground truth over the same window; workload resolved from owners.
    Engines and the source share a fake clock: 6 s of scrapes take no wall time."""
    clock = FakeClock()
    async with SimCluster() as cluster:
        cluster.config.update(FAST)
        sim = await sim_serving.attach(cluster, pods=sim_serving.default_pods(clock=clock))
        exporter = Exporter(cluster.exporter_config())
        async with running_kube_source(exporter.config, exporter.state):
            source = ServingSource(exporter.config, exporter.state, clock)
            try:
                await wait_for(lambda: len(source.current_targets()) == len(sim.pods), timeout=20)
                for _ in range(12):  # every 0.5 s for 6 s: one full 5 s window of scrapes
                    clock.advance(0.5)
                    await source.run_once()
            finally:
                await source.close()
        now = clock.t
        exporter.refresh(now)
        got = parse_families(exporter.exposition.body, WANT)
        by_pod = {l["pod"]: (l, v) for l, v in got[GEN]}
        for p in sim.pods:
            labels, value = by_pod[p.name]
            assert labels["workload"] == p.workload
            assert labels["workload_kind"] == p.workload_kind
            assert labels["engine"] == p.engine.kind
            if p.engine.kind == "vllm":
                # vLLM counts tokens as generated: compare with the exact ground truth over the
                # samples the exporter used (first and last scrape in the window).
                history = next(h for h in exporter.state.serving.values() if h.identity.pod == p.name)
                win = serving_window(history, now, 5.0)
                truth = p.engine.expected_generation_rate(win[0][0], win[-1][0])
                assert value == pytest.approx(truth, rel=0.10), (p.name, value, truth)
                assert labels["model"] == p.engine.model
            else:
                assert labels["model"] == p.engine.model  # from the ai-signals.io/model annotation
        caps = {l["pod"]: v for l, v in got["ai_serving_token_capacity_ratio"]}
        for p in sim.pods:
            if p.capacity:
                assert caps[p.name] == pytest.approx(by_pod[p.name][1] / p.capacity, rel=1e-6)
            else:
                assert p.name not in caps
        # TTFT quantiles exist for vLLM and are ordered.
        q = {}
        for l, v in got["ai_serving_time_to_first_token_seconds"]:
            q.setdefault(l["pod"], {})[l.get("quantile")] = v
        for p in sim.pods:
            if p.engine.kind == "vllm":
                assert 0 < q[p.name]["0.5"] <= q[p.name]["0.95"]


async def test_counter_reset_on_pod_restart_keeps_rate_sane() -> None:
    clock = FakeClock()
    engine = SimEngine("vllm", "m", constant(5.0), seed=3, clock=clock)
    async with run_app(engines_app({"/metrics": engine})) as base:
        from ai_signals_exporter.config import Config

        cfg = Config.model_validate({**FAST, "serving": {
            "interval": "300ms", "window": "3s", "targets": [{"url": base + "/metrics", "labels": {"pod": "p"}}]}})
        exporter = Exporter(cfg)
        source = ServingSource(cfg, exporter.state, clock)
        try:
            # Past the simulator's ramp-up (a request lasts ~6.5 s) plus one window.
            for _ in range(34):
                clock.advance(0.3)
                await source.run_once()
            engine.restart()  # counters drop to zero, as after a container restart
            rates = []
            for _ in range(12):
                clock.advance(0.3)
                await source.run_once()
                exporter.refresh(clock.t)
                rates += [v for _, v in parse_families(exporter.exposition.body, {GEN}).get(GEN, [])]
        finally:
            await source.close()
        truth = engine.expected_generation_rate(clock.t - 3, clock.t)
        assert rates and min(rates) >= 0
        # Never a huge negative or positive spike from the reset: within 35 % of the truth.
        assert max(rates) <= truth * 1.35 and min(rates) >= truth * 0.5, (rates, truth)


async def test_broken_targets_mark_only_themselves_down() -> None:
    good = SimEngine("vllm", "m", constant(3.0), seed=1)
    slow = SimEngine("vllm", "m", constant(3.0), seed=2)
    slow.delay = 5.0  # beyond the 1 s scrape timeout
    failing = SimEngine("tgi", "m", constant(3.0), seed=4)
    failing.status = 500
    app = engines_app({"/good": good, "/slow": slow, "/failing": failing})

    async def garbage(_):
        return web.Response(text="<html>not metrics</html>\n" * 10)

    async def huge(_):
        return web.Response(body=b"vllm:num_requests_running 1\n" * 200_000)

    app.router.add_get("/garbage", garbage)
    app.router.add_get("/huge", huge)
    async with run_app(app) as base:
        names = ["good", "slow", "failing", "garbage", "huge"]
        from ai_signals_exporter.config import Config

        cfg = Config.model_validate({
            "global": {"refresh_interval": "200ms"},
            "serving": {"interval": "500ms", "window": "5s", "timeout": "1s", "max_response_bytes": 1048576,
                        "targets": [{"url": f"{base}/{n}", "labels": {"pod": n}} for n in names]},
        })
        exporter = Exporter(cfg)
        await exporter.start()
        try:
            def all_seen():
                exporter.refresh()
                got = parse_families(exporter.exposition.body, WANT)
                ups = {l["target"].rsplit("/", 1)[-1]: v for l, v in got.get("ai_signals_exporter_target_up", [])}
                return got if len(ups) == 5 and got.get(GEN) else None

            got = await wait_for(all_seen, timeout=20, interval=0.2)
            ups = {l["target"].rsplit("/", 1)[-1]: v for l, v in got["ai_signals_exporter_target_up"]}
            assert ups == {"good": 1, "slow": 0, "failing": 0, "garbage": 0, "huge": 0}
            assert [l["pod"] for l, _ in got[GEN]] == ["good"]
            reasons = {l["reason"] for l, v in got["ai_signals_exporter_errors_total"] if l["source"] == "serving"}
            assert {"timeout", "http_status", "no_engine", "too_large"} <= reasons
        finally:
            await exporter.stop()


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: scripts/setup installs the Debian package 'prometheus'"
    return path


async def test_real_prometheus_sees_token_rate(tmp_path: Path, promtool: str) -> None:
    """A real Prometheus scrapes the exporter; the PromQL value of the served token rate matches
    the simulated load within 15 %; `promtool check metrics` accepts the whole output."""
    async with SimCluster() as cluster:
        cluster.config.update(FAST)
        load = 4.0
        pods = [sim_serving.SimPod("llm", "steady-0", "Deployment", "steady",
                                   SimEngine("vllm", "m", constant(load), seed=7, output_tokens=200),
                                   capacity=2000.0)]
        sim = await sim_serving.attach(cluster, pods=pods)
        exporter = Exporter(cluster.exporter_config())
        await exporter.start()
        async with run_app(make_app(exporter)) as base:
            hostport = base.removeprefix("http://")
            config = {"global": {"scrape_interval": "1s"},
                      "scrape_configs": [{"job_name": "ai-signals", "scrape_interval": "1s",
                                          "static_configs": [{"targets": [hostport]}]}]}
            # Prometheus calls block: run them in threads so the exporter keeps working.
            stack = prometheus(tmp_path / "prom", config)
            prom_url = await asyncio.to_thread(stack.__enter__)
            try:
                expr = f'{GEN}{{workload="steady"}}'
                await asyncio.to_thread(wait_until, lambda: query(prom_url, expr), 40, "Prometheus to see the token rate")
                # Past the simulator's ramp-up (~1 request duration) and one exporter window
                # the served rate settles on the truth; Prometheus runs on wall time, so wait
                # for that condition rather than for a fixed time.
                def settled():
                    res = query(prom_url, f"avg_over_time({expr}[4s])")
                    truth = sim.pods[0].engine.expected_generation_rate(time.time() - 9, time.time())
                    value = float(res[0]["value"][1]) if res else 0.0
                    return (value, truth) if truth == pytest.approx(load * 200, rel=0.05) and \
                        value == pytest.approx(truth, rel=0.15) else None

                value, truth = await asyncio.to_thread(wait_until, settled, 40, "the served rate to match the load")
                assert value == pytest.approx(truth, rel=0.15), (value, truth)
                up = await asyncio.to_thread(query, prom_url, 'ai_signals_exporter_target_up{source="serving"}')
                assert up and all(r["value"][1] == "1" for r in up)
            finally:
                await asyncio.to_thread(stack.__exit__, None, None, None)
        exporter.refresh()
        check = subprocess.run([promtool, "check", "metrics"], input=exporter.exposition.body,
                               capture_output=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        await exporter.stop()


async def test_pod_ip_reused_by_another_pod_starts_a_fresh_history() -> None:
    """Pod IPs are recycled: when a new pod answers at a deleted pod's address, the old pod's
    samples must not become the new pod's rate (its tokens would be credited to the newcomer,
    and the counter drop read as a restart of the same server)."""
    from ai_signals_exporter.config import Config
    from ai_signals_exporter.signals.serving import TargetIdentity
    from ai_signals_exporter.sources.http import new_session
    from ai_signals_exporter.sources.serving import ServingSource, Target
    from ai_signals_exporter.state import AppState

    body = {"text": 'vllm:generation_tokens_total{model_name="m"} 5000\n'}

    async def metrics(_):
        return web.Response(text=body["text"])

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    async with run_app(app) as base:
        state = AppState()
        source = ServingSource(Config.model_validate({"serving": {"interval": "1s", "window": "10s"}}), state)
        url = base + "/metrics"
        old = Target(url, "vllm", TargetIdentity("llm", "llama-old", "Deployment", "llama"))
        new = Target(url, "vllm", TargetIdentity("llm", "llama-new", "Deployment", "llama"))
        try:
            source._session = new_session(2)
            await source._scrape(old)
            await source._scrape(old)
            body["text"] = 'vllm:generation_tokens_total{model_name="m"} 40\n'
            await source._scrape(new)
            history = state.serving[url]
            assert history.identity.pod == "llama-new"
            assert [s[1]["m"].generation_tokens for s in history.samples] == [40.0]
        finally:
            await source.close()


async def test_unlabelled_static_targets_do_not_collide() -> None:
    """Static targets without labels (outside Kubernetes) all had the same label set: two vLLM
    servers of one model rendered the same series twice, and Prometheus keeps only one of
    duplicate samples.  The target's host:port names the pod when no `pod` label is given."""
    from ai_signals_exporter.config import Config
    from ai_signals_exporter.state import AppState
    from ai_signals_exporter.sources.serving import ServingSource

    engine = SimEngine("vllm", "m", constant(2.0), seed=5)
    async with run_app(engines_app({"/metrics": engine})) as a, run_app(engines_app({"/metrics": engine})) as b:
        cfg = Config.model_validate({"serving": {"interval": "1s", "window": "10s", "targets": [
            {"url": a + "/metrics"}, {"url": b + "/metrics"},
            {"url": b + "/metrics?x", "labels": {"pod": "given"}}]}})
        # User-info in a URL (basic auth) stays out of the label.
        (secret,) = ServingSource(Config.model_validate({"serving": {"targets": [
            {"url": "http://u:pw@10.0.0.9:8000/metrics"}]}}), AppState()).static_targets()
        assert secret.identity.pod == "10.0.0.9:8000"
        source = ServingSource(cfg, AppState())
        try:
            for _ in range(2):
                await source.run_once()
            from ai_signals_exporter.expo.families import render
            from ai_signals_exporter.signals.serving import derive

            text = render(derive(source.state, cfg, time.time())).decode()
            pods = sorted(l["pod"] for l, _ in parse_families(text, {GEN})[GEN])
            assert pods == sorted([a.split("//")[1], b.split("//")[1], "given"])
        finally:
            await source.close()
