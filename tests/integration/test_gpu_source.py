"""DcgmSource against dcgm-exporter endpoints served over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from aiohttp import web

from ai_signals_exporter.config import Config
from ai_signals_exporter.signals.gpu import derive
from ai_signals_exporter.sources.gpu import DcgmSource
from ai_signals_exporter.state import AppState, PodInfo
from tests.helpers.net import run_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcgm"


class Endpoint:
    """A dcgm-exporter stand-in whose body, status and delay tests can change between scrapes."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 200
        self.delay = 0.0
        self.hits = 0

    def app(self) -> web.Application:
        async def metrics(_: web.Request) -> web.Response:
            self.hits += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.status, body=self.body, content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def make_config(**gpu) -> Config:
    gpu.setdefault("interval", "15s")
    gpu.setdefault("timeout", "2s")
    return Config.model_validate({"gpu": gpu})


def series(families, name):
    for f in families:
        if f.name == name:
            return {values: value for _, values, value, _ in f.samples}
    return {}


@contextlib.asynccontextmanager
async def source_for(config: Config, state: AppState):
    src = DcgmSource(config, state)
    try:
        yield src
    finally:
        await src.close()


async def test_static_targets_end_to_end():
    ep_a, ep_b = Endpoint(fixture("h100x4-operator.prom")), Endpoint(fixture("l40s-hostname-lowercase.prom"))
    async with run_app(ep_a.app()) as a, run_app(ep_b.app()) as b:
        cfg = make_config(dcgm_targets=[{"url": f"{a}/metrics", "node": "node-a"}, {"url": f"{b}/metrics"}])
        state = AppState()
        async with source_for(cfg, state) as src:
            assert src.enabled() and src.name == "gpu"
            await src.run_once()
        now = time.time()
        util = series(derive(state, cfg, now), "ai_gpu_utilization_ratio")
        # node-a from the static target's `node`; l40s-node-b from the lowercase hostname label
        assert {k[0] for k in util} == {"node-a", "l40s-node-b"}
        assert util[("node-a", "0", "GPU-5b0c1e2a-7d3f-4c1b-9e8a-0f1d2c3b4a51", "NVIDIA H100 80GB HBM3", "serving", "llama-70b-0")] == pytest.approx(0.97)
        assert state.selfmon.targets == {("gpu", f"{a}/metrics"): True, ("gpu", f"{b}/metrics"): True}
        assert [t.up for t in src.targets()] == [True, True]


async def test_busy_idle_busy_over_http():
    busy = fixture("l40s-hostname-lowercase.prom")
    # gpu 0 at 55 %, gpu 1 at 0 %; flip gpu 0 to 1 % (idle) and back by rewriting the body.
    idle = busy.replace(b"} 55\n", b"} 1\n")
    assert idle != busy
    ep = Endpoint(busy)
    async with run_app(ep.app()) as url:
        cfg = make_config(dcgm_targets=[{"url": f"{url}/metrics"}], idle_after="1s")
        state = AppState()
        key = "GPU-40540000-5555-4555-8555-555555555500"
        async with source_for(cfg, state) as src:
            await src.run_once()
            assert state.gpu_idle[(key, "")].since is None
            ep.body = idle
            await src.run_once()
            went_idle = state.gpu_idle[(key, "")].since
            assert went_idle is not None
            await src.run_once()
            assert state.gpu_idle[(key, "")].since == went_idle  # still the same stretch
            fams = derive(state, cfg, went_idle + 5)
            idle_s = series(fams, "ai_gpu_idle_seconds")
            assert idle_s[("l40s-node-b", "0", key, "NVIDIA L40S", "", "")] == pytest.approx(5)
            assert series(fams, "ai_gpu_node_idle_gpus") == {("l40s-node-b",): 2}
            ep.body = busy
            await src.run_once()
            assert state.gpu_idle[(key, "")].since is None
            fams = derive(state, cfg, time.time())
            assert series(fams, "ai_gpu_idle_seconds")[("l40s-node-b", "0", key, "NVIDIA L40S", "", "")] == 0


async def test_failing_target_keeps_last_good_then_goes_stale():
    ep = Endpoint(fixture("h100x4-operator.prom"))
    async with run_app(ep.app()) as url:
        cfg = make_config(dcgm_targets=[{"url": f"{url}/metrics"}])
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
            good = state.dcgm[f"{url}/metrics"]
            ep.status = 503
            await src.run_once()
        obs = state.dcgm[f"{url}/metrics"]
        assert not obs.up and obs.last_error == "http_status"
        assert obs.ts == good.ts and obs.readings == good.readings
        assert state.selfmon.targets[("gpu", f"{url}/metrics")] is False
        assert state.selfmon.errors[("gpu", "http_status")] == 1
        assert len(series(derive(state, cfg, good.ts + 10), "ai_gpu_utilization_ratio")) == 4
        assert series(derive(state, cfg, good.ts + 46), "ai_gpu_utilization_ratio") == {}


async def test_timeout_too_large_connect_and_wrong_endpoint():
    slow = Endpoint(fixture("h100x4-operator.prom"))
    slow.delay = 1.0
    big = Endpoint(b"# " + b"x" * 5000 + b"\n" + fixture("h100x4-operator.prom"))
    wrong = Endpoint(b"# HELP up something else\nup 1\n")
    async with run_app(slow.app()) as s, run_app(big.app()) as b, run_app(wrong.app()) as w:
        from tests.helpers.net import free_port

        dead = f"http://127.0.0.1:{free_port()}/metrics"
        cfg = make_config(
            timeout="300ms", max_response_bytes=4096,
            dcgm_targets=[{"url": f"{s}/metrics"}, {"url": f"{b}/metrics"}, {"url": f"{w}/metrics"}, {"url": dead}],
        )
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
        reasons = {url: o.last_error for url, o in state.dcgm.items()}
        assert reasons == {f"{s}/metrics": "timeout", f"{b}/metrics": "too_large", f"{w}/metrics": "parse", dead: "connect"}
        assert not any(state.selfmon.targets.values())


async def test_concurrency_is_bounded():
    eps = [Endpoint(fixture("l40s-hostname-lowercase.prom")) for _ in range(6)]
    in_flight = {"now": 0, "max": 0}

    def app_for(ep):
        async def metrics(_):
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
            await asyncio.sleep(0.05)
            in_flight["now"] -= 1
            return web.Response(body=ep.body, content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app

    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(run_app(app_for(ep))) for ep in eps]
        cfg = make_config(max_concurrency=2, dcgm_targets=[{"url": f"{u}/metrics"} for u in urls])
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
        assert in_flight["max"] == 2
        assert all(o.up for o in state.dcgm.values())


async def test_cardinality_guard_drops_and_counts():
    ep = Endpoint(fixture("h100x4-operator.prom"))
    async with run_app(ep.app()) as url:
        cfg = Config.model_validate({"global": {"max_series_per_source": 3},
                                     "gpu": {"dcgm_targets": [{"url": f"{url}/metrics"}]}})
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
        assert len(state.dcgm[f"{url}/metrics"].readings) == 3
        assert state.selfmon.series_dropped["gpu"] == 1
        assert state.selfmon.errors[("gpu", "cardinality")] == 1


async def test_removed_target_is_forgotten():
    ep = Endpoint(fixture("h100x4-operator.prom"))
    async with run_app(ep.app()) as url:
        cfg = make_config(dcgm_targets=[{"url": f"{url}/metrics"}])
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
            src.config = make_config()
            await src.run_once()
        assert state.dcgm == {} and state.selfmon.targets == {}


def _dcgm_pod(name: str, node: str, ip: str, labels=None, ns="gpu-operator") -> PodInfo:
    return PodInfo(
        uid=name, namespace=ns, name=name, node=node, phase="Running", ip=ip,
        labels=labels if labels is not None else {"app": "nvidia-dcgm-exporter"}, annotations={},
        workload_kind="DaemonSet", workload="nvidia-dcgm-exporter", requests={}, is_daemonset=True,
    )


@contextlib.asynccontextmanager
async def serve_on(app: web.Application, host: str, port: int):
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_discovered_pods_on_loopback_addresses():
    """Two dcgm-exporter pods with their own IPs (127.0.0.2 and .3) on the same port, the way
    discovery addresses them in a cluster; the node comes from each pod's placement."""
    ep_a = Endpoint(fixture("h100x4-operator.prom"))
    # this exporter labels the free GPU with its own pod (as a relabelling setup would)
    own = b',namespace="gpu-operator",pod="dcgm-b"'
    ep_b = Endpoint(fixture("l40s-hostname-lowercase.prom").replace(b'DCGM_FI_DRIVER_VERSION="580.105.08"}', b'DCGM_FI_DRIVER_VERSION="580.105.08"' + own + b"}"))
    for _ in range(5):
        try:
            async with serve_on(ep_a.app(), "127.0.0.2", 0) as port, serve_on(ep_b.app(), "127.0.0.3", port):
                cfg = Config.model_validate({
                    "kubernetes": {"enabled": True},
                    "gpu": {"discovery": {"port": port, "namespaces": ["gpu-operator"]}},
                })
                state = AppState()
                state.kube.pods = {
                    "a": _dcgm_pod("dcgm-a", "k8s-node-a", "127.0.0.2"),
                    "b": _dcgm_pod("dcgm-b", "k8s-node-b", "127.0.0.3"),
                    "x": _dcgm_pod("other-ns", "k8s-node-c", "127.0.0.4", ns="monitoring"),
                    "y": _dcgm_pod("other-app", "k8s-node-c", "127.0.0.4", labels={"app": "x"}),
                }
                state.kube.touch()
                async with source_for(cfg, state) as src:
                    await src.run_once()
                    assert sorted(state.dcgm) == [f"http://127.0.0.2:{port}/metrics", f"http://127.0.0.3:{port}/metrics"]
                    util = series(derive(state, cfg, time.time()), "ai_gpu_utilization_ratio")
                    assert {k[0] for k in util} == {"k8s-node-a", "k8s-node-b"}
                    # the exporter's own pod label is not a workload
                    assert {(k[4], k[5]) for k in util if k[0] == "k8s-node-b"} == {("", "")}
                    # the pod goes away: its target is dropped
                    del state.kube.pods["b"]
                    state.kube.touch()
                    await src.run_once()
                    assert list(state.dcgm) == [f"http://127.0.0.2:{port}/metrics"]
                return
        except OSError:  # the port happened to be taken on 127.0.0.3: try another
            continue
    pytest.fail("no free port shared by 127.0.0.2 and 127.0.0.3")


async def test_bad_discovery_selector_is_a_config_error_not_a_crash():
    cfg = Config.model_validate({"kubernetes": {"enabled": True}})
    # config validation rejects this selector; the source must still not crash on one
    cfg.gpu.discovery.label_selector = "app in (("
    state = AppState()
    state.kube.pods = {"a": _dcgm_pod("dcgm-a", "n", "127.0.0.2")}
    state.kube.touch()
    async with source_for(cfg, state) as src:
        await src.run_once()
    assert state.selfmon.errors[("gpu", "config")] == 1
    assert state.dcgm == {}


async def test_cardinality_guard_across_targets_is_stable_over_runs():
    eps = [Endpoint(fixture("h100x4-operator.prom")), Endpoint(fixture("a100-mig-mixed.prom"))]
    async with run_app(eps[0].app()) as a, run_app(eps[1].app()) as b:
        cfg = Config.model_validate({"global": {"max_series_per_source": 6},
                                     "gpu": {"dcgm_targets": [{"url": f"{a}/metrics"}, {"url": f"{b}/metrics"}]}})
        state = AppState()
        async with source_for(cfg, state) as src:
            for run in range(3):
                await src.run_once()
                assert sum(len(o.readings) for o in state.dcgm.values()) == 6
        assert state.selfmon.series_dropped["gpu"] == 3 * 2  # 4 + 4 readings, 2 over, every run


async def test_idle_stretch_restarts_when_a_pod_takes_the_gpu():
    # gpu 1 of the fixture is free and idle; a pod is then attributed to it (dcgm-exporter adds
    # pod labels).  Its series names the pod, so its idle time must be the pod's, not the free
    # GPU's: a pod still loading its model is not blamed for the idle hours before it came.
    free = fixture("l40s-hostname-lowercase.prom")
    held = free.replace(b'DCGM_FI_DRIVER_VERSION="580.105.08"} 0\n',
                        b'DCGM_FI_DRIVER_VERSION="580.105.08",namespace="prod",pod="vllm-0"} 0\n')
    assert held.count(b'pod="vllm-0"') == 1
    ep = Endpoint(free)
    async with run_app(ep.app()) as url:
        cfg = make_config(dcgm_targets=[{"url": f"{url}/metrics"}], idle_after="1s")
        state = AppState()
        key = ("GPU-40540001-5555-4555-8555-555555555501", "")
        async with source_for(cfg, state) as src:
            await src.run_once()
            free_since = state.gpu_idle[key].since
            assert free_since is not None
            await asyncio.sleep(0.05)
            ep.body = held
            await src.run_once()
            held_since = state.gpu_idle[key].since
            assert held_since > free_since
            idle_s = series(derive(state, cfg, held_since + 2), "ai_gpu_idle_seconds")
            assert idle_s[("l40s-node-b", "1", key[0], "NVIDIA L40S", "prod", "vllm-0")] == pytest.approx(2)


async def test_busy_time_sliced_gpu_of_4_8_3_is_busy_and_never_idle():
    """dcgm-exporter 4.8.3, virtual GPUs, --use-old-namespace: per-pod zeros print first."""
    ep = Endpoint(fixture("v4.8.3-virtual-gpus-old-namespace.prom"))
    async with run_app(ep.app()) as url:
        cfg = make_config(dcgm_targets=[{"url": f"{url}/metrics"}])
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
            await src.run_once()
        key = ("GPU-4c0ffee0-1111-4111-8111-1111111100a0", "")
        assert state.gpu_idle[key].since is None
        fams = derive(state, cfg, time.time() + 5)
        util = series(fams, "ai_gpu_utilization_ratio")
        busy = ("l4-ts-node", "0", key[0], "NVIDIA L4", "serving", "chat-a-0")
        assert util[busy] == pytest.approx(0.87)
        assert series(fams, "ai_gpu_idle_seconds")[busy] == 0


async def test_4_8_3_error_500_and_empty_200_are_down_with_reasons_keeping_last_good():
    ep = Endpoint(fixture("v4.8.3-virtual-gpus.prom"))
    async with run_app(ep.app()) as url:
        target = f"{url}/metrics"
        cfg = make_config(dcgm_targets=[{"url": target}])
        state = AppState()
        async with source_for(cfg, state) as src:
            await src.run_once()
            good = state.dcgm[target]
            # duplicate label sets or a NaN counter: 4.8.3 fails the whole scrape
            ep.status, ep.body = 500, fixture("v4.8.3-500.txt")
            await src.run_once()
            assert (state.dcgm[target].up, state.dcgm[target].last_error) == (False, "http_status")
            # reloading its collectors: 200 with no body
            ep.status, ep.body = 200, b""
            await src.run_once()
            obs = state.dcgm[target]
            assert (obs.up, obs.last_error) == (False, "empty")
            assert obs.ts == good.ts and obs.readings == good.readings
            assert state.selfmon.errors[("gpu", "empty")] == 1
            assert state.selfmon.errors[("gpu", "http_status")] == 1
            assert [(t.up, t.last_error) for t in src.targets()] == [(False, "empty")]
            # last good readings until stale (3 intervals), then nothing
            assert len(series(derive(state, cfg, good.ts + 44), "ai_gpu_utilization_ratio")) == 2
            assert series(derive(state, cfg, good.ts + 46), "ai_gpu_utilization_ratio") == {}
            ep.body = fixture("v4.8.3-virtual-gpus.prom")
            await src.run_once()
            assert state.dcgm[target].up
