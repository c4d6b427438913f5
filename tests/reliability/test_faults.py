"""Faults the exporter must survive, each injected for real over loopback sockets.

In every case: the failing source or target is marked down in `ai_signals_exporter_target_up`
and counted in `ai_signals_exporter_errors_total` with a bounded reason, the healthy ones keep
fresh values, `/metrics` keeps answering fast, and no background task dies.

Covered elsewhere (not repeated here): 500 / garbage / too-large fixed bodies / hanging targets
for serving (tests/integration/test_serving.py::test_broken_targets_mark_only_themselves_down)
and dcgm (tests/integration/test_gpu_source.py); S3 errors and 503 SlowDown
(tests/integration/test_checkpoint_s3.py::test_source_end_to_end_on_s3_and_failures); the kube
source alone against drops, 410 and outages (tests/integration/test_kube_source.py).
"""

from __future__ import annotations

import pytest

import asyncio
import time
from pathlib import Path

from aiohttp import web

from ai_signals_exporter.sim.engines import SimEngine, constant, make_app as engines_app
from ai_signals_exporter.sim.objects import make_node, make_pod

from ..helpers.kube import running_kube_api
from ..helpers.net import run_app
from ..helpers.wait import SCALE
from .common import RUNNING, eventually, running_exporter
from ..helpers.faultserver import (
    VLLM_PAYLOAD, FaultServer, byte_by_byte, endless, hang, reset_mid_body, sse_reset_after,
)

# Timing-sensitive: also run under a CPU hog by scripts/test (-m timing).
pytestmark = pytest.mark.timing

FAST_SERVING = {"interval": "1s", "window": "5s", "timeout": "1500ms", "max_response_bytes": 1048576}


async def test_scrape_faults_hang_reset_dribble_endless() -> None:
    good = SimEngine("vllm", "m", constant(3.0), seed=1)
    async with (
        run_app(engines_app({"/metrics": good})) as good_url,
        FaultServer(hang()) as hanging,
        FaultServer(reset_mid_body(VLLM_PAYLOAD * 50)) as resetting,
        FaultServer(byte_by_byte(VLLM_PAYLOAD, 0.02)) as too_slow,  # ~6 s: beyond the 1.5 s timeout
        FaultServer(byte_by_byte(VLLM_PAYLOAD, 0.0005)) as slow_ok,  # well within it
        FaultServer(endless()) as endless_url,
    ):
        urls = {"good": good_url, "hang": hanging, "reset": resetting, "too_slow": too_slow,
                "slow_ok": slow_ok, "endless": endless_url}
        cfg = {"global": {"refresh_interval": "200ms"},
               "serving": {**FAST_SERVING, "targets": [
                   {"url": u + "/metrics", "labels": {"pod": name}} for name, u in urls.items()]}}
        async with running_exporter(cfg) as ex:
            by_name = {u + "/metrics": n for n, u in urls.items()}
            await eventually(lambda: len(ex.ups("serving")) == 6 and ex.ups("serving"), timeout=20)
            ups = {by_name[t]: v for t, v in ex.ups("serving").items()}
            assert ups == {"good": 1, "hang": 0, "reset": 0, "too_slow": 0, "slow_ok": 1, "endless": 0}
            assert {"timeout", "reset", "too_large"} <= set(ex.errors("serving"))
            # While the hanging and dribbling targets hold their connections, scrapes of the
            # exporter are served from cache, fast.
            latencies = [(await ex.scrape())[1] for _ in range(20)]
            assert max(latencies) < 0.5, latencies
            # The healthy target keeps being scraped: its sample time moves with every interval.
            good_key = good_url + "/metrics"
            first = ex.exporter.state.serving[good_key].last_success
            await eventually(lambda: ex.exporter.state.serving[good_key].last_success > first + 1.5,
                             timeout=10)
            pods = {l["pod"] for l, _ in ex.families({RUNNING})[RUNNING]}
            assert pods == {"good", "slow_ok"}
            assert ex.tasks_alive()


async def test_kube_api_down_at_start_then_watch_drop_and_gone(tmp_path: Path) -> None:
    """Exporter level: serving discovery rides on the kube watch; the API is down at start,
    comes back, drops its watches, and compacts its history (410 Gone).  A static target keeps
    fresh values throughout and discovery catches up after each fault."""
    engines = {f"/pods/{i}": SimEngine("vllm", "m", constant(2.0), seed=i) for i in range(4)}
    static = SimEngine("vllm", "m", constant(2.0), seed=9)
    engines["/static"] = static
    # Bookmarks on (the default 1 s): the stand-in API never sends one ahead of events still
    # queued for a stream (sim/kubeapi.py), which a drop or 410 here once raced with.
    async with running_kube_api() as api, run_app(engines_app(engines)) as base:
        port = base.rsplit(":", 1)[1]
        api.add(make_node("cpu-1", gpus=0))

        def pod(i: int) -> dict:
            return make_pod("llm", f"llama-{i}", node="cpu-1", owner=("Deployment", "llama"),
                            ip="127.0.0.1", annotations={"ai-signals.io/scrape": "true",
                                                         "ai-signals.io/port": port,
                                                         "ai-signals.io/path": f"/pods/{i}"})

        api.add(pod(0))
        api.set_down(True)
        cfg = {"global": {"refresh_interval": "200ms"},
               "kubernetes": {"enabled": True, "kubeconfig": str(api.write_kubeconfig(tmp_path / "kc")),
                              "watch_timeout": "5s", "request_timeout": "1s", "backoff_max": "500ms"},
               "serving": {**FAST_SERVING, "targets": [{"url": base + "/static", "labels": {"pod": "static"}}]},
               "gpu": {"discovery": {"enabled": False}},
               "checkpoints": {"discovery": {"enabled": False}}}

        def pod_lists() -> int:
            return api.requests.count(("list", "/api/v1/pods", "pods"))

        def discovered() -> set[str]:
            got = ex.families({RUNNING}).get(RUNNING, [])
            return {l["pod"] for l, _ in got}

        async with running_exporter(cfg) as ex:
            await eventually(lambda: ex.ups("kube").get("pods") == 0, timeout=10)
            assert "static" in await eventually(discovered)
            assert ex.errors("kube"), "an unreachable API server is counted"
            # A scrape never waits on the unreachable API server (its request timeout is 1 s).
            _, latency = await ex.scrape()
            assert latency < 1.0 * SCALE

            api.set_down(False)
            assert await eventually(lambda: discovered() == {"static", "llama-0"}, timeout=15)
            # Every watched resource recovers: the scheduling area's resourcequotas and events and
            # the workload kinds serving discovery watches (replicas at zero) too.
            all_up = {"pods": 1, "nodes": 1, "resourcequotas": 1, "events": 1, "deployments": 1,
                      "statefulsets": 1, "leaderworkersets": 1}
            assert await eventually(lambda: ex.ups("kube") == all_up, timeout=15)

            lists = pod_lists()
            api.drop_watches()  # abrupt end of every watch stream
            api.add(pod(1))
            assert await eventually(lambda: discovered() == {"static", "llama-0", "llama-1"}, timeout=15)
            assert pod_lists() == lists, "a dropped watch resumes from its resourceVersion, no re-list"

            # 410 Gone: history compacted while the watch is cut; the source relists.
            failures = sum(ex.errors("kube").values())
            api.set_down(True)
            api.add(pod(2))
            api.delete("Pod", "llm", "llama-0")
            api.compact()
            # The watches were cut and a retry against the down server failed: only then does
            # the server come back (the source must resume from a compacted resourceVersion).
            await eventually(lambda: api.watch_count() == 0 and sum(ex.errors("kube").values()) > failures,
                             timeout=15)
            gone = ex.errors("kube").get("gone", 0)
            api.set_down(False)
            assert await eventually(lambda: discovered() == {"static", "llama-1", "llama-2"}, timeout=15)
            assert ex.errors("kube").get("gone", 0) > gone and pod_lists() > lists, "410 -> re-list"
            assert {t.rsplit("/", 1)[-1] for t in ex.ups("serving")} == {"static", "1", "2"}
            assert ex.tasks_alive()


def _s3_list_page(prefix: str, page: int, n: int = 1000) -> str:
    contents = "".join(
        f"<Contents><Key>{prefix}obj-{page}-{i}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
        f"<ETag>\"e\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for i in range(n)
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>b</Name><Prefix>{prefix}</Prefix><KeyCount>{n}</KeyCount><MaxKeys>{n}</MaxKeys>"
            f"<IsTruncated>true</IsTruncated><NextContinuationToken>t{page + 1}</NextContinuationToken>"
            f"{contents}</ListBucketResult>")


async def test_object_store_that_lists_forever_or_never_answers(tmp_path: Path) -> None:
    """An S3 endpoint whose listing never ends (IsTruncated forever) is cut at max_objects; one
    that never answers is cut by the scan timeout; a healthy store next to them stays up."""
    pages = {"n": 0}

    async def forever(request: web.Request) -> web.Response:
        pages["n"] += 1
        token = request.query.get("continuation-token", "t0")
        return web.Response(text=_s3_list_page(request.query.get("prefix", ""), int(token[1:])),
                            content_type="application/xml")

    async def never(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_get("/forever{tail:.*}", forever)
    app.router.add_get("/never{tail:.*}", never)
    (tmp_path / "ok").mkdir()
    creds = {"access_key_id": "k", "secret_access_key": "s", "region": "us-east-1", "allow_http": "true"}
    async with run_app(app) as base:
        cfg = {"global": {"refresh_interval": "200ms"},
               "checkpoints": {"interval": "2s", "timeout": "2s", "max_objects": 5000, "stores": [
                   {"name": "forever", "uri": "s3://forever/ckpt", "options": {**creds, "endpoint": base}},
                   {"name": "never", "uri": "s3://never/ckpt", "options": {**creds, "endpoint": base}},
                   {"name": "ok", "uri": (tmp_path / "ok").as_uri()},
               ]}}
        async with running_exporter(cfg) as ex:
            await eventually(lambda: len(ex.ups("checkpoints")) == 3, timeout=15)
            assert ex.ups("checkpoints") == {"forever": 0, "never": 0, "ok": 1}
            errs = ex.errors("checkpoints")
            assert errs.get("too_large") and errs.get("timeout"), errs
            # Bounded: each scan of the endless listing stops just past max_objects (1,000 keys a
            # page; obstore may fetch a page or two ahead), a scan in progress aside.
            scans = ex.errors("checkpoints")["too_large"]
            assert pages["n"] <= 8 * (scans + 1), (pages["n"], scans)
            t0 = time.time()
            await eventually(lambda: ex.exporter.state.checkpoints["ok"].scanned_at > t0, timeout=10)
            _, latency = await ex.scrape()
            assert latency < 0.5
            assert ex.tasks_alive()


async def test_probe_connection_reset_mid_stream() -> None:
    good = SimEngine("vllm", "m", constant(3.0), seed=1)
    async with (
        FaultServer(sse_reset_after(3)) as cut,
        run_app(engines_app({"/metrics": good})) as good_url,
    ):
        cfg = {"global": {"refresh_interval": "200ms"},
               "serving": {**FAST_SERVING, "targets": [{"url": good_url + "/metrics", "labels": {"pod": "good"}}]},
               "probes": [{"name": "chat", "url": cut + "/v1/completions", "body": "{}",
                           "interval": "1s", "timeout": "1s"}]}
        async with running_exporter(cfg) as ex:
            success = "ai_stream_probe_success"
            got = await eventually(lambda: ex.families({success}).get(success), timeout=10)
            assert got == [({"probe": "chat", "route": "ingress"}, 0.0)]
            assert ex.errors("probes").get("reset"), ex.errors("probes")
            chunks = ex.families({"ai_stream_chunks"}).get("ai_stream_chunks", [])
            assert all(v <= 3 for _, v in chunks)  # the events before the cut, never more
            assert ex.ups("serving") == {good_url + "/metrics": 1}
            # It keeps probing on its interval after the reset, and nothing else is disturbed.
            n = ex.errors("probes")["reset"]
            await eventually(lambda: ex.errors("probes")["reset"] >= n + 2, timeout=10)
            assert ex.ups("serving") == {good_url + "/metrics": 1}
            assert ex.tasks_alive()


async def test_invalid_reload_keeps_sources_running_with_fresh_values(tmp_path: Path) -> None:
    good = SimEngine("vllm", "m", constant(3.0), seed=1)
    async with run_app(engines_app({"/metrics": good})) as good_url:
        text = (f"global: {{refresh_interval: 200ms}}\n"
                f"serving: {{interval: 1s, window: 5s, targets: [{{url: '{good_url}/metrics'}}]}}\n")
        cfg_file = tmp_path / "config.yaml"
        cfg_file.write_text(text)
        from ai_signals_exporter.config import load_config

        async with running_exporter(load_config(cfg_file), str(cfg_file)) as ex:
            await eventually(lambda: ex.ups("serving") == {good_url + "/metrics": 1})
            tasks_before = list(ex.exporter._tasks)
            bad_files = [
                b"serving: {interval: 1s, window: 1s}\n",  # fails validation
                b"serving: [\n",  # not YAML
                b"\xff\xfe not utf-8\n",
                b"[" * 50_000,  # nesting bomb
            ]
            for bad in bad_files:
                cfg_file.write_bytes(bad)
                async with ex.http.post(ex.base + "/-/reload") as r:
                    assert r.status == 500, bad
                assert ex.families({"ai_signals_exporter_config_last_reload_successful"})[
                    "ai_signals_exporter_config_last_reload_successful"] == [({}, 0.0)]
            cfg_file.unlink()
            ok, _ = await ex.exporter.reload()
            assert not ok
            # Same source tasks as before, still running, still scraping.
            assert ex.exporter._tasks == tasks_before and ex.tasks_alive()
            key = good_url + "/metrics"
            t0 = ex.exporter.state.serving[key].last_success
            await eventually(lambda: ex.exporter.state.serving[key].last_success > t0 + 0.5, timeout=5)
            assert ex.errors("config")["config"] == len(bad_files) + 1


async def test_crashing_source_and_deriver_are_contained(monkeypatch) -> None:
    """A bug that raises out of a source's run() or out of a signal area: the source restarts
    with backoff, the area is skipped for that refresh, both are counted, the rest is served."""
    from ai_signals_exporter import app as app_module
    from ai_signals_exporter.areas import AREAS, Area
    from ai_signals_exporter.sources.base import Source

    runs = {"n": 0}

    class Crashy(Source):
        name = "crashy"

        async def run(self) -> None:
            runs["n"] += 1
            if runs["n"] % 2:
                raise RuntimeError("bug")  # a crash...
            # ...or a run() that returns, which a source must never do

    def broken_derive(state, config, now):
        raise ZeroDivisionError("bug in a signal area")

    # Two areas registered the way real ones are: one whose source crashes, one whose derive does.
    areas = (*AREAS, Area("crashy", (Crashy,)), Area("broken", derive=broken_derive))
    monkeypatch.setattr(app_module, "AREAS", areas)
    monkeypatch.setattr(app_module, "SOURCE_RESTART_MIN", 0.05)
    good = SimEngine("vllm", "m", constant(3.0), seed=1)
    async with run_app(engines_app({"/metrics": good})) as good_url:
        cfg = {"global": {"refresh_interval": "100ms"},
               "serving": {**FAST_SERVING, "targets": [{"url": good_url + "/metrics"}]}}
        async with running_exporter(cfg) as ex:
            await eventually(lambda: runs["n"] >= 4, timeout=10)  # restarted again and again
            assert ex.errors("crashy").get("exception", 0) >= 2
            assert await eventually(lambda: ex.errors("broken").get("exception", 0) >= 3)
            await eventually(lambda: ex.ups("serving") == {good_url + "/metrics": 1})
            body, latency = await ex.scrape()
            assert b"ai_serving_requests_running" in body and latency < 0.5 * SCALE
            assert ex.tasks_alive()
