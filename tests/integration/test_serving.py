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
            assert {"timeout", "http_status", "not_metrics", "too_large"} <= reasons
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
    from ai_signals_exporter.serving.history import TargetIdentity
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


async def test_bodies_that_are_not_metrics_are_down_with_the_bad_line() -> None:
    """Issue 13: a 200 that is not exposition format (a web UI on the wrong port, an API's JSON,
    binary data, another exporter's metrics for a named engine) is down with a bounded reason,
    and the first bad line, escaped, reaches the landing page and the debug log."""
    import logging

    import aiohttp

    from ai_signals_exporter.config import Config
    from ai_signals_exporter.expo.families import render
    from ai_signals_exporter.signals.serving import derive

    llama = SimEngine("llamacpp", "m", constant(2.0), seed=6)

    def reply(body: bytes, ctype: str):
        async def handler(_):
            return web.Response(body=body, headers={"Content-Type": ctype})
        return handler

    bodies = {
        "html": (b"<!DOCTYPE html>\n<html><script>alert(1)</script></html>\n", "text/html; charset=utf-8"),
        "html-as-text": (b"<html><body>Gradio</body></html>\n", "text/plain"),
        "json": (b'{"object":"list","data":[]}', "application/json"),
        "json-as-text": (b'{"object":"list","data":[]}', "text/plain; version=0.0.4"),
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "application/octet-stream"),
        "other-exporter": (b"# TYPE node_load1 gauge\nnode_load1 0.5\n", "text/plain; version=0.0.4"),
    }
    app = engines_app({"/router/metrics": llama})
    for name, (body, ctype) in bodies.items():
        app.router.add_get(f"/{name}", reply(body, ctype))
    async with run_app(app) as base:
        targets = [{"url": f"{base}/{n}", "engine": "vllm" if n == "other-exporter" else "auto",
                    "labels": {"pod": n}} for n in bodies]  # fmt: skip
        # llama.cpp router mode: one target per model, the model named by the query
        targets.append({"url": f"{base}/router/metrics?model=qwen3-8b", "engine": "llamacpp"})
        cfg = Config.model_validate({"serving": {"interval": "1s", "window": "10s", "targets": targets}})
        from ai_signals_exporter.sources.serving import ServingSource

        exporter = Exporter(cfg)
        source = ServingSource(cfg, exporter.state)
        exporter.sources = [source]  # scraped once by hand: no loop, no waiting
        logger = logging.getLogger("ai_signals_exporter.sources.serving")
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = records.append  # type: ignore[method-assign]
        logger.addHandler(handler)
        old_level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            await source.run_once()
            async with run_app(make_app(exporter)) as ui, aiohttp.ClientSession() as http:
                async with http.get(ui + "/") as r:
                    page = await r.text()
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            await source.close()
        state = source.state
        status = {t.target.rsplit("/", 1)[-1]: t for t in source.targets()}
        up = {k: state.selfmon.targets[("serving", t.target)] for k, t in status.items()}
        assert up == {**{n: False for n in bodies}, "metrics?model=qwen3-8b": True}
        errors = {k: t.last_error for k, t in status.items()}
        assert errors["html"] == "not_metrics: text/html; charset=utf-8"
        assert errors["json"] == "not_metrics: application/json"
        assert errors["html-as-text"] == "not_metrics: <html><body>Gradio</body></html>"
        assert errors["json-as-text"] == 'not_metrics: {"object":"list","data":[]}'
        assert errors["binary"].startswith("not_metrics: \\ufffdPNG")
        assert errors["other-exporter"] == "not_metrics: node_load1 0.5"
        assert {r for (src, r) in state.selfmon.errors if src == "serving"} == {"not_metrics"}
        assert any("Gradio" in r.getMessage() for r in records)
        assert "&lt;html&gt;&lt;body&gt;Gradio" in page and "<html><body>Gradio" not in page
        text = render(derive(state, cfg, time.time())).decode()
        assert 'engine="llamacpp",model="qwen3-8b"}' in text


def test_discovered_llamacpp_router_pod_names_the_model_from_the_path() -> None:
    """llama.cpp router mode: the annotation path `/metrics?model=<id>` scrapes one model; the
    model label comes from the query unless `ai-signals.io/model` says otherwise."""
    from ai_signals_exporter.sources.serving import target_for_pod
    from ai_signals_exporter.state import PodInfo

    def pod(**ann: str) -> PodInfo:
        return PodInfo("u1", "llm", "router-0", "n1", "Running", "10.0.0.7", {},
                       {"ai-signals.io/path": "/metrics?model=qwen3-8b", **ann}, "Deployment", "router", {})  # fmt: skip

    t = target_for_pod(pod(), 8080, "/metrics")
    assert t.url == "http://10.0.0.7:8080/metrics?model=qwen3-8b" and t.identity.model == "qwen3-8b"
    assert target_for_pod(pod(**{"ai-signals.io/model": "Qwen3"}), 8080, "/metrics").identity.model == "Qwen3"
