"""KubeSource with the real kubernetes_asyncio client against FakeKubeAPI over real sockets,
and the test API server's own protocol (so the simulator and other tests can rely on it).

Every wait is bounded (`wait_for` polls state for a few seconds at most).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio import watch as kwatch

from ai_signals_exporter.config import Config
from ai_signals_exporter.sim.kubeapi import FakeKubeAPI, rbac_rules
from ai_signals_exporter.sim.objects import (
    make_deployment,
    make_event,
    make_leaderworkerset,
    make_node,
    make_pod,
    make_resource_quota,
    make_statefulset,
    quota_exceeded_message,
)
from ai_signals_exporter.sources import kube as kube_module
from ai_signals_exporter.sources.kube_objects import parse_time
from ai_signals_exporter.sources.kube_stores import Watch
from ai_signals_exporter.state import AppState

from ..helpers.kube import kube_config, running_kube_api, running_kube_source, wait_for


def _names(state: AppState) -> set[str]:
    return {f"{p.namespace}/{p.name}" for p in state.kube.pods.values()}


def _seed(api: FakeKubeAPI) -> None:
    api.add(make_node("gpu-1"))
    api.add(make_node("gpu-2"))
    api.add(make_node("cpu-1", gpus=0))
    api.add(make_pod("inference", "llama-0", "gpu-1", owner=("Deployment", "llama"), gpu=2))
    api.add(make_pod("inference", "llama-1", "gpu-2", owner=("Deployment", "llama"), gpu=2))
    api.add(make_pod("training", "bert-worker-0", "gpu-2", owner=("PyTorchJob", "bert"), gpu=4))
    api.add(make_pod("gpu-operator", "dcgm-exporter-abcde", "gpu-1", owner=("DaemonSet", "dcgm-exporter")))


def _lists(state: AppState, resource: str, result: str = "success") -> int:
    return state.selfmon.kube_lists.get((resource, result), 0)


# ---- KubeSource against the fake API ---------------------------------------------------------


async def test_initial_list_fills_state(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state) as source:
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            assert set(state.kube.nodes) == {"gpu-1", "gpu-2", "cpu-1"}
            assert state.kube.nodes["gpu-1"].allocatable == {"nvidia.com/gpu": 8}
            assert _names(state) == {
                "inference/llama-0", "inference/llama-1", "training/bert-worker-0",
                "gpu-operator/dcgm-exporter-abcde",
            }
            by_name = {p.name: p for p in state.kube.pods.values()}
            assert (by_name["llama-0"].workload_kind, by_name["llama-0"].workload) == ("Deployment", "llama")
            assert by_name["bert-worker-0"].workload_kind == "PyTorchJob"
            assert by_name["dcgm-exporter-abcde"].is_daemonset
            # Pods are keyed by uid, as the API assigned it.
            stored = api.get("Pod", "inference", "llama-0")
            assert stored is not None and stored["metadata"]["uid"] in state.kube.pods
            assert _lists(state, "pods") == 1 and _lists(state, "nodes") == 1
            await wait_for(lambda: state.selfmon.targets.get(("kube", "pods")) is True)
            assert state.selfmon.targets[("kube", "nodes")] is True
            assert [(t.target, t.up) for t in source.targets()] == [("pods", True), ("nodes", True)]
            assert state.selfmon.sources["kube"].last_success > 0
            assert state.kube.generation > 0
            # The client only ever listed and watched: the RBAC it needs is exactly that.
            await wait_for(lambda: ("watch", "/api/v1/pods", "pods") in api.requests
                           and ("watch", "/api/v1/nodes", "nodes") in api.requests)
            assert rbac_rules(api.requests) == [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
            ]


async def test_initial_list_is_paginated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube_module, "PAGE_SIZE", 7)
    async with running_kube_api() as api:
        for i in range(30):
            api.add(make_pod("batch", f"p-{i:02d}", "gpu-1", owner=("Job", f"j{i}")))
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            await wait_for(lambda: state.kube.pods_synced)
            assert len(state.kube.pods) == 30
            pod_lists = [r for r in api.requests if r == ("list", "/api/v1/pods", "pods")]
            assert len(pod_lists) == 5  # ceil(30 / 7) pages, each a real list call
            assert _lists(state, "pods") == 1  # ... making up one successful list


async def test_watch_added_modified_deleted(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            await wait_for(lambda: api.watch_count() == 2)
            gen = state.kube.generation

            pending = make_pod("inference", "mistral-0", owner=("StatefulSet", "mistral"), gpu=1)
            api.add(pending)
            await wait_for(lambda: "inference/mistral-0" in _names(state))
            assert state.kube.generation > gen
            uid = api.get("Pod", "inference", "mistral-0")["metadata"]["uid"]
            assert state.kube.pods[uid].phase == "Pending" and state.kube.pods[uid].node == ""

            # Scheduled and running: the same uid is updated in place.
            api.update(make_pod("inference", "mistral-0", "gpu-2", owner=("StatefulSet", "mistral"), gpu=1))
            await wait_for(lambda: state.kube.pods[uid].phase == "Running")
            assert state.kube.pods[uid].node == "gpu-2" and state.kube.pods[uid].ready

            api.delete("Pod", "inference", "mistral-0")
            await wait_for(lambda: uid not in state.kube.pods)

            # Nodes: a taint removed, a node gone.
            api.update(make_node("gpu-1", taints=[]))
            await wait_for(lambda: state.kube.nodes["gpu-1"].taints == [])
            api.delete("Node", None, "cpu-1")
            await wait_for(lambda: "cpu-1" not in state.kube.nodes)

            events = state.selfmon.kube_watch_events
            assert events[("pods", "ADDED")] == 1
            assert events[("pods", "MODIFIED")] == 1
            assert events[("pods", "DELETED")] == 1
            assert events[("nodes", "MODIFIED")] == 1 and events[("nodes", "DELETED")] == 1
            assert _lists(state, "pods") == 1  # all of it through the watch, no re-list


async def test_bookmark_advances_resource_version(tmp_path: Path) -> None:
    async with running_kube_api(bookmark_interval=0.1) as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state) as source:
            await wait_for(lambda: state.kube.nodes_synced and api.watch_count() == 2)
            listed_rv = int(source.resource_version("nodes"))
            # Pod churn moves the global resourceVersion; the node watch sees no event of its
            # own, only bookmarks, which must carry its resourceVersion forward.
            for i in range(3):
                api.add(make_pod("ns", f"churn-{i}", "gpu-1"))
            await wait_for(lambda: int(source.resource_version("nodes")) == api.resource_version)
            assert int(source.resource_version("nodes")) > listed_rv
            assert state.selfmon.kube_watch_events[("nodes", "BOOKMARK")] >= 1

            # Why it matters: after compaction, a reconnecting watch resumes without a re-list.
            api.compact()
            api.drop_watches()
            await wait_for(lambda: state.selfmon.errors.get(("kube", "watch"), 0) >= 2)
            await wait_for(lambda: api.watch_count() == 2)
            api.update(make_node("gpu-2", labels={"pool": "b"}))
            await wait_for(lambda: state.kube.nodes["gpu-2"].labels.get("pool") == "b")
            assert _lists(state, "nodes") == 1
            assert ("kube", "gone") not in state.selfmon.errors


async def test_gone_triggers_quiet_relist(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_kube_api(bookmark_interval=60) as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            # The watches are cut before these changes reach them, and the history is then
            # compacted: the client's resourceVersion is now too old and the server says 410.
            api.drop_watches()
            api.add(make_pod("inference", "late-0", "gpu-1"))
            api.delete("Pod", "inference", "llama-1")
            api.compact()
            await wait_for(lambda: _lists(state, "pods") == 2)
            assert _names(state) == {
                "inference/llama-0", "inference/late-0", "training/bert-worker-0",
                "gpu-operator/dcgm-exporter-abcde",
            }
            assert state.selfmon.errors[("kube", "gone")] >= 1
            assert state.selfmon.kube_watch_events[("pods", "ERROR")] >= 1
            assert _lists(state, "pods", "error") == 0
            await wait_for(lambda: state.selfmon.targets.get(("kube", "pods")) is True)
        # A 410 is routine: never logged as an error.
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_dropped_watch_reconnects_and_resumes(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            watches_before = sum(1 for r in api.requests if r[0] == "watch")
            api.drop_watches()
            await wait_for(lambda: state.selfmon.errors.get(("kube", "watch"), 0) >= 2)
            await wait_for(lambda: sum(1 for r in api.requests if r[0] == "watch") >= watches_before + 2)
            api.add(make_pod("inference", "after-drop", "gpu-1"))
            await wait_for(lambda: "inference/after-drop" in _names(state))
            # Resumed from the last resourceVersion: no re-list needed.
            assert _lists(state, "pods") == 1 and _lists(state, "nodes") == 1
            await wait_for(lambda: state.selfmon.targets.get(("kube", "pods")) is True)


async def test_watch_that_ends_normally_is_rewatched(tmp_path: Path) -> None:
    async with running_kube_api(bookmark_interval=60) as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, watch_timeout="1s"), state):
            await wait_for(lambda: state.kube.pods_synced)
            # timeoutSeconds=1: the server ends each watch after a second; the client re-watches.
            await wait_for(lambda: sum(1 for r in api.requests if r == ("watch", "/api/v1/pods", "pods")) >= 3)
            api.add(make_pod("inference", "x", "gpu-1"))
            await wait_for(lambda: "inference/x" in _names(state))
            assert _lists(state, "pods") == 1
            assert ("kube", "watch") not in state.selfmon.errors


async def test_server_ending_watches_cleanly_is_not_an_error(tmp_path: Path) -> None:
    async with running_kube_api(bookmark_interval=0.1) as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            events = state.selfmon.kube_watch_events
            await wait_for(lambda: events.get(("pods", "BOOKMARK")) and events.get(("nodes", "BOOKMARK")))
            watches = sum(1 for r in api.requests if r[0] == "watch")
            api.end_watches()
            await wait_for(lambda: sum(1 for r in api.requests if r[0] == "watch") >= watches + 2)
            api.add(make_pod("inference", "y", "gpu-1"))
            await wait_for(lambda: "inference/y" in _names(state))
            assert ("kube", "watch") not in state.selfmon.errors
            assert _lists(state, "pods") == 1


async def test_api_down_at_start_then_up(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        api.set_down(True)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, backoff_max="200ms"), state) as source:
            await wait_for(lambda: _lists(state, "pods", "error") >= 2)
            assert state.selfmon.targets[("kube", "pods")] is False
            assert state.selfmon.errors[("kube", "list")] >= 2
            assert not state.kube.pods_synced and not state.kube.pods
            assert {t.target: t.last_error for t in source.targets()} == {"pods": "list", "nodes": "list"}
            api.set_down(False)
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            assert len(state.kube.pods) == 4
            await wait_for(lambda: state.selfmon.targets[("kube", "pods")] is True)


async def test_api_unreachable_then_reachable(tmp_path: Path) -> None:
    """Connection refused (not a 503): the port has no listener until the server starts."""
    api = FakeKubeAPI(bookmark_interval=0.2)
    await api.start()
    port_url = api.base_url
    await api.stop()
    state = AppState()
    config = kube_config(api, tmp_path, backoff_max="200ms")
    async with running_kube_source(config, state):
        await wait_for(lambda: _lists(state, "nodes", "error") >= 2)
        assert state.selfmon.targets[("kube", "nodes")] is False
    assert port_url.startswith("http://127.0.0.1:")


async def test_deleted_during_outage_vanish_after_relist(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, backoff_max="200ms"), state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            api.set_down(True)
            await wait_for(lambda: state.selfmon.targets.get(("kube", "pods")) is False)
            api.delete("Pod", "inference", "llama-0")
            api.delete("Pod", "training", "bert-worker-0")
            api.delete("Node", None, "gpu-2")
            api.compact()  # the outage outlasted the apiserver's event window
            api.set_down(False)
            await wait_for(lambda: _lists(state, "pods") == 2 and _lists(state, "nodes") == 2)
            assert _names(state) == {"inference/llama-1", "gpu-operator/dcgm-exporter-abcde"}
            assert set(state.kube.nodes) == {"gpu-1", "cpu-1"}


async def test_deleted_during_short_outage_replayed_from_history(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, backoff_max="200ms"), state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            api.set_down(True)
            await wait_for(lambda: state.selfmon.targets.get(("kube", "pods")) is False)
            api.delete("Pod", "inference", "llama-0")
            api.set_down(False)
            await wait_for(lambda: "inference/llama-0" not in _names(state))
            assert _lists(state, "pods") == 1  # the DELETED event was replayed, no re-list


async def test_node_scope_sees_only_its_node(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, node_scope="gpu-2"), state):
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            assert set(state.kube.nodes) == {"gpu-2"}
            assert _names(state) == {"inference/llama-1", "training/bert-worker-0"}
            await wait_for(lambda: api.watch_count() == 2)
            api.add(make_pod("inference", "elsewhere", "gpu-1"))
            api.add(make_pod("inference", "here", "gpu-2"))
            api.update(make_node("gpu-1", labels={"x": "1"}))
            await wait_for(lambda: "inference/here" in _names(state))
            assert "inference/elsewhere" not in _names(state)
            assert set(state.kube.nodes) == {"gpu-2"}


async def test_node_scope_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "gpu-1")
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, node_scope="${NODE_NAME}"), state):
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            assert set(state.kube.nodes) == {"gpu-1"}
            assert _names(state) == {"inference/llama-0", "gpu-operator/dcgm-exporter-abcde"}


async def test_namespaces_filter_on_ingest(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        config = kube_config(api, tmp_path, namespaces=["inference", "gpu-operator"])
        async with running_kube_source(config, state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            assert _names(state) == {"inference/llama-0", "inference/llama-1", "gpu-operator/dcgm-exporter-abcde"}
            api.add(make_pod("training", "ignored", "gpu-1"))
            api.add(make_pod("inference", "kept", "gpu-1"))
            await wait_for(lambda: "inference/kept" in _names(state))
            assert "training/ignored" not in _names(state)
            assert ("list", "/api/v1/pods", "pods") in api.requests


async def test_single_namespace_is_listed_directly(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path, namespaces=["inference"]), state):
            await wait_for(lambda: state.kube.pods_synced and api.watch_count() == 2)
            assert _names(state) == {"inference/llama-0", "inference/llama-1"}
            api.add(make_pod("training", "ignored", "gpu-1"))
            api.add(make_pod("inference", "kept", "gpu-1"))
            await wait_for(lambda: "inference/kept" in _names(state))
            assert "training/ignored" not in _names(state)
            pod_paths = {path for verb, path, res in api.requests if res == "pods"}
            assert pod_paths == {"/api/v1/namespaces/inference/pods"}  # a namespaced Role suffices


async def test_undecodable_watch_lines_and_objects_are_counted_and_skipped(tmp_path: Path) -> None:
    """A hand-rolled server (not FakeKubeAPI) that sends a garbage line and a pod without uid
    in its watch stream: both are counted as decode errors, the good event still lands."""
    from aiohttp import web

    from ..helpers.net import run_app

    good = make_pod("ns", "good", "gpu-1")
    good["metadata"].update(resourceVersion="12", uid="u-good")
    broken = make_pod("ns", "broken", "gpu-1")
    del broken["metadata"]["uid"]

    async def handler(request: web.Request) -> web.StreamResponse:
        kind = "PodList" if request.path.endswith("pods") else "NodeList"
        if request.query.get("watch") not in ("True", "true", "1"):
            return web.json_response({"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
                                      "items": []})
        resp = web.StreamResponse()
        await resp.prepare(request)
        if kind == "PodList":
            await resp.write(b"{not json\n")
            await resp.write(orjson.dumps({"type": "ADDED", "object": broken}) + b"\n")
            await resp.write(orjson.dumps({"type": "ADDED", "object": good}) + b"\n")
        await asyncio.sleep(0.5)
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/{resource}", handler)
    async with run_app(app) as base:
        fake = FakeKubeAPI(token=None)
        fake.base_url = base
        state = AppState()
        async with running_kube_source(kube_config(fake, tmp_path), state):
            await wait_for(lambda: "ns/good" in _names(state))
            assert state.selfmon.errors[("kube", "decode")] >= 2  # the line and the object
            assert _names(state) == {"ns/good"}


async def test_bad_kubeconfig_is_reported_not_raised(tmp_path: Path) -> None:
    config = Config.model_validate(
        {"kubernetes": {"enabled": True, "kubeconfig": str(tmp_path / "missing"), "backoff_max": "100ms"}}
    )
    state = AppState()
    async with running_kube_source(config, state) as source:
        await wait_for(lambda: state.selfmon.errors.get(("kube", "config"), 0) >= 2)
        assert state.selfmon.targets[("kube", "pods")] is False
        assert {t.last_error for t in source.targets()} == {"config"}


async def test_wrong_token_is_a_list_error(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        _seed(api)
        config = kube_config(api, tmp_path, backoff_max="100ms")
        api.token = "rotated"  # the kubeconfig still carries the old token: 401
        state = AppState()
        async with running_kube_source(config, state):
            await wait_for(lambda: _lists(state, "pods", "error") >= 1)
            assert not state.kube.pods_synced
            assert any(r[0] == "unauthorized" for r in api.requests)


async def test_disabled_by_default_and_close_is_idempotent() -> None:
    source = kube_module.KubeSource(Config(), AppState())
    assert not source.enabled()
    await source.close()
    await source.close()


def test_backoff_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(7)
    delays = [kube_module.backoff_delay(n, 2.0, rng) for n in range(12)]
    assert all(0 < d <= 2.0 for d in delays)
    assert delays[0] <= kube_module.BACKOFF_BASE
    assert min(delays[6:]) >= 1.0  # capped base 2.0: at least half of it
    assert len(set(delays[6:])) > 1  # jitter


# ---- the test API server's protocol ------------------------------------------------------------


async def _get(session: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, dict]:
    async with session.get(url, params=params) as resp:
        return resp.status, orjson.loads(await resp.read())


async def _watch_events(session: aiohttp.ClientSession, url: str, n: int | None = None, **params: str) -> list[dict]:
    """Read a watch stream until it ends or `n` events arrived."""
    params = {"watch": "true", **params}
    out = []
    async with session.get(url, params=params) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                out.append(orjson.loads(line))
                if n is not None and len(out) >= n:
                    break
    return out


@pytest.fixture
async def fake_api():
    async with running_kube_api(bookmark_interval=0.1) as api:
        _seed(api)
        yield api


@pytest.fixture
async def http(fake_api: FakeKubeAPI):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {fake_api.token}"}) as s:
        yield s


async def test_protocol_list_shape_and_pagination(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    status, body = await _get(http, f"{base}/api/v1/pods")
    assert status == 200 and body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(fake_api.resource_version)
    assert len(body["items"]) == 4
    item = body["items"][0]
    assert "kind" not in item and item["metadata"]["uid"] and item["metadata"]["creationTimestamp"]
    seen, token, pages = [], None, 0
    while True:
        params = {"limit": "3"} | ({"continue": token} if token else {})
        status, page = await _get(http, f"{base}/api/v1/pods", **params)
        assert status == 200
        pages += 1
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 2 and len(seen) == 4 == len(set(seen))
    status, ns_only = await _get(http, f"{base}/api/v1/namespaces/inference/pods")
    assert {i["metadata"]["name"] for i in ns_only["items"]} == {"llama-0", "llama-1"}
    status, nodes = await _get(http, f"{base}/api/v1/nodes")
    assert nodes["kind"] == "NodeList" and len(nodes["items"]) == 3
    status, one = await _get(http, f"{base}/api/v1/namespaces/inference/pods/llama-0")
    assert status == 200 and one["kind"] == "Pod"
    status, missing = await _get(http, f"{base}/api/v1/namespaces/inference/pods/nope")
    assert status == 404 and missing["kind"] == "Status" and missing["reason"] == "NotFound"


async def test_protocol_expired_continue_and_exact_list_are_410(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    _, page = await _get(http, f"{base}/api/v1/pods", limit="1")
    old_rv = page["metadata"]["resourceVersion"]
    fake_api.add(make_pod("ns", "new", "gpu-1"))
    fake_api.compact()
    status, body = await _get(http, f"{base}/api/v1/pods", limit="1", **{"continue": page["metadata"]["continue"]})
    assert status == 410 and body["reason"] == "Expired" and body["code"] == 410
    status, body = await _get(http, f"{base}/api/v1/pods", resourceVersion=old_rv, resourceVersionMatch="Exact")
    assert status == 410
    status, body = await _get(http, f"{base}/api/v1/pods", resourceVersion=old_rv)
    assert status == 200  # NotOlderThan semantics: served from the current state


async def test_protocol_selectors(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    _, body = await _get(http, f"{base}/api/v1/pods", fieldSelector="spec.nodeName=gpu-2")
    assert {i["metadata"]["name"] for i in body["items"]} == {"llama-1", "bert-worker-0"}
    _, body = await _get(http, f"{base}/api/v1/pods", fieldSelector="spec.nodeName=gpu-2,metadata.namespace!=training")
    assert {i["metadata"]["name"] for i in body["items"]} == {"llama-1"}
    _, body = await _get(http, f"{base}/api/v1/nodes", fieldSelector="metadata.name=gpu-1")
    assert [i["metadata"]["name"] for i in body["items"]] == ["gpu-1"]
    _, body = await _get(http, f"{base}/api/v1/pods", labelSelector="pod-template-hash")
    assert {i["metadata"]["name"] for i in body["items"]} == {"llama-0", "llama-1"}
    _, body = await _get(http, f"{base}/api/v1/pods", labelSelector="training.kubeflow.org/job-name=bert")
    assert [i["metadata"]["name"] for i in body["items"]] == ["bert-worker-0"]
    _, body = await _get(http, f"{base}/api/v1/nodes", labelSelector="nvidia.com/gpu.present!=true")
    assert [i["metadata"]["name"] for i in body["items"]] == ["cpu-1"]
    status, body = await _get(http, f"{base}/api/v1/pods", fieldSelector="spec.bogus=1")
    assert status == 400 and body["reason"] == "BadRequest"


async def test_protocol_watch_replay_bookmarks_timeout(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    rv = fake_api.resource_version
    fake_api.add(make_pod("ns", "a", "gpu-1"))
    fake_api.update(make_pod("ns", "a", "gpu-1", phase="Succeeded"))
    fake_api.delete("Pod", "ns", "a")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    events = await _watch_events(http, f"{base}/api/v1/pods", resourceVersion=str(rv), timeoutSeconds="1",
                                 allowWatchBookmarks="true")
    elapsed = loop.time() - t0
    assert [e["type"] for e in events[:3]] == ["ADDED", "MODIFIED", "DELETED"]
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in events[:3]] == [rv + 1, rv + 2, rv + 3]
    assert events[0]["object"]["kind"] == "Pod"
    bookmarks = [e for e in events[3:] if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[-1]["object"]["metadata"]["resourceVersion"] == str(fake_api.resource_version)
    assert 0.9 <= elapsed < 3.0  # timeoutSeconds honoured
    # No bookmarks unless asked for.
    events = await _watch_events(http, f"{base}/api/v1/nodes", resourceVersion=str(fake_api.resource_version),
                                 timeoutSeconds="1")
    assert events == []
    # No resourceVersion: the current state as synthetic ADDED events first.
    events = await _watch_events(http, f"{base}/api/v1/nodes", n=3, timeoutSeconds="5")
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["cpu-1", "gpu-1", "gpu-2"]
    assert {e["type"] for e in events} == {"ADDED"}


async def test_protocol_watch_expired_rv_sends_error_event(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    rv = fake_api.resource_version
    fake_api.add(make_pod("ns", "b", "gpu-1"))
    fake_api.compact()
    events = await _watch_events(http, f"{fake_api.base_url}/api/v1/pods", resourceVersion=str(rv), timeoutSeconds="5")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"], status["status"]) == ("Status", 410, "Expired", "Failure")


async def test_protocol_selector_transitions_in_watch(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    """A pod that leaves a watch's field selector is DELETED for that watch, one that enters is ADDED."""
    base = fake_api.base_url
    rv = fake_api.resource_version
    fake_api.add(make_pod("ns", "mover", "gpu-1"))
    fake_api.update(make_pod("ns", "mover", "gpu-2"))
    fake_api.update(make_pod("ns", "mover", "gpu-1"))
    events = await _watch_events(http, f"{base}/api/v1/pods", n=3, resourceVersion=str(rv),
                                 fieldSelector="spec.nodeName=gpu-1", timeoutSeconds="5")
    assert [e["type"] for e in events] == ["ADDED", "DELETED", "ADDED"]


async def test_protocol_discovery_auth_and_down(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    _, version = await _get(http, f"{base}/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    _, api = await _get(http, f"{base}/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    _, resources = await _get(http, f"{base}/api/v1")
    assert {r["name"]: r["namespaced"] for r in resources["resources"]} == {
        "pods": True, "nodes": False, "resourcequotas": True, "events": True}
    _, groups = await _get(http, f"{base}/apis")
    assert {g["name"] for g in groups["groups"]} == {"apps", "leaderworkerset.x-k8s.io"}
    _, apps = await _get(http, f"{base}/apis/apps/v1")
    assert {r["name"] for r in apps["resources"]} == {"deployments", "statefulsets"}
    async with aiohttp.ClientSession() as anonymous:
        status, body = await _get(anonymous, f"{base}/api/v1/pods")
        assert status == 401 and body["reason"] == "Unauthorized"
    fake_api.set_down(True)
    status, body = await _get(http, f"{base}/api/v1/pods")
    assert status == 503 and body["reason"] == "ServiceUnavailable"
    fake_api.set_down(False)
    status, _ = await _get(http, f"{base}/api/v1/pods")
    assert status == 200


async def test_protocol_drop_watches_cuts_the_stream(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    async def read_all() -> None:
        async with http.get(f"{fake_api.base_url}/api/v1/pods",
                            params={"watch": "1", "resourceVersion": str(fake_api.resource_version)}) as resp:
            async for _ in resp.content:
                pass

    task = asyncio.create_task(read_all())
    await wait_for(lambda: fake_api.watch_count() == 1)
    fake_api.drop_watches()
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(task, 5)
    assert fake_api.watch_count() == 0


async def test_official_client_typed_models_and_watch_helper(fake_api: FakeKubeAPI, tmp_path: Path) -> None:
    """The stock typed client and its Watch helper accept the fake server's objects and events."""
    path = fake_api.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = await kconfig.new_client_from_config(config_file=str(path))
    try:
        version = await kclient.VersionApi(api_client).get_code()
        assert version.major == "1"
        core = kclient.CoreV1Api(api_client)
        pods = await core.list_pod_for_all_namespaces()
        assert {p.metadata.name for p in pods.items} >= {"llama-0", "bert-worker-0"}
        llama = next(p for p in pods.items if p.metadata.name == "llama-0")
        assert llama.spec.containers[0].resources.requests["nvidia.com/gpu"] == "2"
        assert llama.metadata.owner_references[0].kind == "ReplicaSet"
        nodes = await core.list_node(field_selector="metadata.name=gpu-1")
        assert [n.metadata.name for n in nodes.items] == ["gpu-1"]
        assert nodes.items[0].spec.taints[0].key == "nvidia.com/gpu"
        rv = pods.metadata.resource_version
        fake_api.add(make_pod("ns", "typed", "gpu-1"))
        w = kwatch.Watch()
        async with w:
            async for event in w.stream(core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=2):
                assert event["type"] == "ADDED"
                assert event["object"].metadata.name == "typed"
                assert w.resource_version == str(fake_api.resource_version)
                break
    finally:
        await api_client.close()


async def test_watch_event_larger_than_the_read_buffer(tmp_path: Path) -> None:
    """A single watch event line can be larger than aiohttp's default 128 KiB readline limit (a
    pod whose annotations carry a whole workflow template, up to the API's 256 KiB).  It must be
    applied, not fail the watch again and again from the same resourceVersion (the source would
    be stuck on that event for good).  Holds because kubernetes_asyncio's session reads with a
    2 MiB buffer (4 MiB lines); this guards that assumption."""
    async with running_kube_api() as api:
        _seed(api)
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state):
            await wait_for(lambda: state.kube.pods_synced and state.kube.nodes_synced)
            await wait_for(lambda: api.watch_count() == 2)
            big = make_pod("training", "argo-step-0", "gpu-1", owner=("Workflow", "argo"),
                           annotations={"workflows.argoproj.io/template": "x" * 200_000})
            api.add(big)
            api.add(make_pod("training", "after-it", "gpu-1", owner=("Job", "after")))
            await wait_for(lambda: {"training/argo-step-0", "training/after-it"} <= _names(state))
            assert state.selfmon.errors.get(("kube", "exception"), 0) == 0
            assert _lists(state, "pods") == 1


async def test_kube_that_never_worked_exports_last_success_zero(tmp_path: Path) -> None:
    """A kube source that has never listed (401 from the start, or no client config) must export
    last-success 0 ("never"), as the other sources do: with no series at all,
    AiSignalsSourceStale (whose runbook is about exactly this: RBAC, API reachability) stays
    silent."""
    async with running_kube_api() as api:
        _seed(api)
        config = kube_config(api, tmp_path, backoff_max="100ms")
        api.token = "rotated"
        state = AppState()
        async with running_kube_source(config, state):
            await wait_for(lambda: _lists(state, "pods", "error") >= 1)
            assert state.selfmon.sources["kube"].last_success == 0
    config = Config.model_validate(
        {"kubernetes": {"enabled": True, "kubeconfig": str(tmp_path / "missing"), "backoff_max": "100ms"}}
    )
    state = AppState()
    async with running_kube_source(config, state):
        await wait_for(lambda: state.selfmon.errors.get(("kube", "config"), 0) >= 1)
        assert state.selfmon.sources["kube"].last_success == 0


# ---- resources beyond pods and nodes (off by default; areas enable them) ---------------------

# The builders' timestamps are 2026-01-05T10:00:00Z; warning events are pruned by age against
# this injected clock, a minute later.
CLOCK_NOW = parse_time("2026-01-05T10:01:00Z")


def _clock() -> float:
    return CLOCK_NOW


@dataclass(frozen=True)
class _Case:
    kind: str
    build: Callable[[str, int], dict]  # (name, version) -> object in namespace "ml"
    version: Callable[[Any], int]  # record -> the version it reflects
    path: str  # the list path the source uses


_CASES = {
    "resourcequotas": _Case(
        "ResourceQuota",
        lambda n, v: make_resource_quota("ml", n, {"requests.nvidia.com/gpu": 8, "count/pods": 20},
                                         {"requests.nvidia.com/gpu": v}),
        lambda r: r.used["requests.nvidia.com/gpu"], "/api/v1/resourcequotas"),
    "events": _Case(
        "Event",
        lambda n, v: make_event("ml", ("ReplicaSet", n), "FailedCreate", quota_exceeded_message(f"{n}-x", "gpu"),
                                count=v, last="2026-01-05T10:00:30Z", name=f"{n}.17f3a1b2c3d4e5f6"),
        lambda r: r.count, "/api/v1/events"),
    "deployments": _Case("Deployment", lambda n, v: make_deployment("ml", n, replicas=v),
                         lambda r: r.replicas, "/apis/apps/v1/deployments"),
    "statefulsets": _Case("StatefulSet", lambda n, v: make_statefulset("ml", n, replicas=v),
                          lambda r: r.replicas, "/apis/apps/v1/statefulsets"),
    "leaderworkersets": _Case("LeaderWorkerSet", lambda n, v: make_leaderworkerset("ml", n, replicas=v),
                              lambda r: r.replicas, "/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets"),
}


def _stored_name(case: _Case, name: str) -> str:
    return f"{name}.17f3a1b2c3d4e5f6" if case.kind == "Event" else name


def _records(state: AppState, resource: str) -> dict[str, str]:
    """name -> version (the involved object's name for events)."""
    case = _CASES[resource]
    return {r.name: case.version(r) for r in getattr(state.kube, resource).values()}


@pytest.mark.parametrize("resource", sorted(_CASES))
async def test_new_resource_list_watch_bookmark_relist(
    resource: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_module, "PAGE_SIZE", 1)  # every list of two is two pages
    case = _CASES[resource]
    async with running_kube_api(bookmark_interval=0.1) as api:
        _seed(api)
        api.add(case.build("a", 1))
        api.add(case.build("b", 1))
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state, resources=[resource],
                                       clock=_clock) as source:
            await wait_for(lambda: resource in state.kube.synced and api.watch_count() == 1)
            assert _records(state, resource) == {"a": 1, "b": 1}
            assert not state.kube.pods and not state.kube.pods_synced  # not asked for
            assert [(t.target, t.up) for t in source.targets()] == [(resource, True)]

            api.add(case.build("c", 1))
            await wait_for(lambda: "c" in _records(state, resource))
            api.update(case.build("a", 3))
            await wait_for(lambda: _records(state, resource).get("a") == 3)
            api.delete(case.kind, "ml", _stored_name(case, "b"))
            await wait_for(lambda: "b" not in _records(state, resource))

            # Pod churn moves the global resourceVersion; this watch sees only bookmarks.
            api.add(make_pod("x", "churn", "gpu-1"))
            await wait_for(lambda: int(source.resource_version(resource) or 0) == api.resource_version)
            assert state.selfmon.kube_watch_events[(resource, "BOOKMARK")] >= 1

            # Missed changes past the compacted window: 410, a quiet re-list replaces the set.
            api.drop_watches()
            api.delete(case.kind, "ml", _stored_name(case, "c"))
            api.add(case.build("d", 2))
            api.compact()
            await wait_for(lambda: _lists(state, resource) == 2)
            assert _records(state, resource) == {"a": 3, "d": 2}
            assert state.selfmon.errors[("kube", "gone")] >= 1
            events = state.selfmon.kube_watch_events
            assert events[(resource, "ADDED")] == 1 and events[(resource, "MODIFIED")] == 1
            assert events[(resource, "DELETED")] == 1
        # Exactly this resource's list and watch, on its own API group's path.
        calls = {(verb, path) for verb, path, res in api.requests if res}
        assert calls == {("list", case.path), ("watch", case.path)}
        assert sum(1 for r in api.requests if r[0] == "list") == 4  # 2 lists x 2 pages


@pytest.mark.parametrize("resource", ["deployments", "leaderworkersets", "events"])
async def test_one_namespace_lists_new_resources_namespaced(resource: str, tmp_path: Path) -> None:
    case = _CASES[resource]
    async with running_kube_api() as api:
        api.add(case.build("a", 1))
        other = case.build("b", 1)
        other["metadata"]["namespace"] = "elsewhere"
        if case.kind == "Event":
            other["involvedObject"]["namespace"] = "elsewhere"
        api.add(other)
        state = AppState()
        config = kube_config(api, tmp_path, namespaces=["ml"])
        async with running_kube_source(config, state, resources=[resource], clock=_clock):
            await wait_for(lambda: resource in state.kube.synced and api.watch_count() == 1)
            assert _records(state, resource) == {"a": 1}
        prefix = case.path.rsplit("/", 1)[0] + "/namespaces/ml/" + resource
        assert {path for _v, path, res in api.requests if res} == {prefix}


async def test_events_are_warnings_only_and_pruned_by_age(tmp_path: Path) -> None:
    now = [CLOCK_NOW]
    async with running_kube_api() as api:
        api.add(make_event("ml", ("ReplicaSet", "llama-1"), "FailedCreate", "quota", count=4,
                           last="2026-01-05T10:00:30Z", name="w1"))
        api.add(make_event("ml", ("Pod", "llama-1-x"), "Scheduled", "assigned", type="Normal", name="n1"))
        api.add(make_event("ml", ("Pod", "old"), "BackOff", "restarting", last="2026-01-05T09:30:00Z", name="w-old"))
        state = AppState()
        source_cfg = kube_config(api, tmp_path)
        watches = [Watch("events", max_age=600)]
        async with running_kube_source(source_cfg, state, resources=watches, clock=lambda: now[0]):
            await wait_for(lambda: state.kube.events and api.watch_count() == 1)
            # Normal events never reach us (server-side field selector); the one older than
            # max_age is not kept.
            assert {e.name for e in state.kube.events.values()} == {"llama-1"}
            (ev,) = state.kube.events.values()
            assert (ev.reason, ev.kind, ev.namespace, ev.count) == ("FailedCreate", "ReplicaSet", "ml", 4)
            api.add(make_event("ml", ("Pod", "p2"), "Scheduled", "assigned", type="Normal", name="n2"))
            api.add(make_event("ml", ("StatefulSet", "db"), "FailedCreate", "quota", name="w2",
                               last="2026-01-05T10:00:59Z"))
            await wait_for(lambda: len(state.kube.events) == 2)
            # Ten minutes on, a new occurrence elsewhere prunes the first one (not seen since).
            now[0] = CLOCK_NOW + 590
            api.add(make_event("ml", ("StatefulSet", "db2"), "FailedCreate", "quota", name="w3",
                               last="2026-01-05T10:10:59Z"))
            await wait_for(lambda: {e.name for e in state.kube.events.values()} == {"db", "db2"})
        # Filtered by the server, not only on ingest: every call carried the selector.
        event_calls = [q for (path, q) in api.queries if path == "/api/v1/events"]
        assert event_calls and all(q.get("fieldSelector") == "type=Warning" for q in event_calls)


async def test_workload_label_selector(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        api.add(make_deployment("llm", "llama", replicas=0, labels={"ai-signals.io/serving": "true"}))
        api.add(make_deployment("llm", "batch", replicas=3))
        state = AppState()
        watches = [Watch("deployments", label_selector="ai-signals.io/serving=true")]
        async with running_kube_source(kube_config(api, tmp_path), state, resources=watches):
            await wait_for(lambda: "deployments" in state.kube.synced and api.watch_count() == 1)
            # Scaled to zero and still there: what keeps a workload visible at 0 replicas.
            (d,) = state.kube.deployments.values()
            assert (d.kind, d.namespace, d.name, d.replicas, d.template_labels) == (
                "Deployment", "llm", "llama", 0, {"app": "llama"})
            # Leaving the selector is a DELETED for this watch; entering one an ADDED.
            api.update(make_deployment("llm", "llama", replicas=1))
            api.update(make_deployment("llm", "batch", replicas=3, labels={"ai-signals.io/serving": "true"}))
            await wait_for(lambda: set(state.kube.deployments) == {"llm/batch"})


async def test_crd_not_installed_is_quiet_and_picked_up_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kube_module, "CRD_RECHECK", 0.2)
    caplog.set_level("INFO", logger="ai_signals_exporter.sources.kube")
    async with running_kube_api(crds=()) as api:
        _seed(api)
        with pytest.raises(ValueError):
            api.add(make_leaderworkerset("llm", "big"))  # as kubectl: no such kind
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state,
                                       resources=["pods", "nodes", "leaderworkersets"]) as source:
            await wait_for(lambda: state.selfmon.kube_lists.get(("leaderworkersets", "not_installed"), 0) >= 3)
            assert {"pods", "nodes", "leaderworkersets"} <= state.kube.synced
            assert state.kube.not_installed == {"leaderworkersets"} and not state.kube.leaderworkersets
            assert len(state.kube.pods) == 4  # the others are not held up
            assert not [k for k in state.selfmon.errors if k[0] == "kube"]  # not an error
            assert {t.target: t.up for t in source.targets()}["leaderworkersets"] is True
            lines = [r for r in caplog.records if "leaderworkersets" in r.getMessage()]
            assert len(lines) == 1 and lines[0].levelname == "INFO"  # said once, not per re-check

            api.install_crd("leaderworkersets")
            api.add(make_leaderworkerset("llm", "big", replicas=2, size=4))
            await wait_for(lambda: "llm/big" in state.kube.leaderworkersets)
            assert state.kube.not_installed == set()
            lws = state.kube.leaderworkersets["llm/big"]
            assert (lws.kind, lws.replicas, lws.group_size) == ("LeaderWorkerSet", 2, 4)

            api.uninstall_crd("leaderworkersets")  # CRD deleted: its objects go, then 404
            await wait_for(lambda: state.kube.not_installed == {"leaderworkersets"})
            assert not state.kube.leaderworkersets
            assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_unknown_or_misused_resources_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown kube resource"):
        kube_module.KubeSource(Config(), AppState(), resources=["secrets"])
    with pytest.raises(ValueError, match="label selector"):
        Watch("events", label_selector="a=b")
    with pytest.raises(ValueError, match="twice"):
        kube_module.KubeSource(Config(), AppState(), resources=["pods", Watch("pods")])
    assert [w.resource for w in kube_module.KubeSource(Config(), AppState()).watches] == ["pods", "nodes"]


async def test_protocol_new_resources(fake_api: FakeKubeAPI, http: aiohttp.ClientSession) -> None:
    base = fake_api.base_url
    fake_api.add(make_event("ml", ("ReplicaSet", "r"), "FailedCreate", "quota", name="w"))
    fake_api.add(make_event("ml", ("Pod", "p"), "Pulled", "pulled", type="Normal", name="n"))
    fake_api.add(make_leaderworkerset("ml", "big"))
    fake_api.add(make_deployment("ml", "d"))
    _, body = await _get(http, f"{base}/api/v1/events", fieldSelector="type=Warning")
    assert body["kind"] == "EventList" and [i["metadata"]["name"] for i in body["items"]] == ["w"]
    _, body = await _get(http, f"{base}/api/v1/namespaces/ml/events",
                         fieldSelector="involvedObject.kind=Pod,reason=Pulled")
    assert [i["metadata"]["name"] for i in body["items"]] == ["n"]
    status, body = await _get(http, f"{base}/api/v1/pods", fieldSelector="type=Warning")
    assert status == 400  # pods have no such field label
    _, body = await _get(http, f"{base}/apis/apps/v1/namespaces/ml/deployments")
    assert (body["kind"], body["apiVersion"]) == ("DeploymentList", "apps/v1") and "kind" not in body["items"][0]
    _, body = await _get(http, f"{base}/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets")
    assert body["items"][0]["kind"] == "LeaderWorkerSet"  # custom resources keep kind per item
    status, _ = await _get(http, f"{base}/api/v1/deployments")  # wrong group
    assert status == 404
    fake_api.uninstall_crd("leaderworkersets")
    status, body = await _get(http, f"{base}/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets")
    assert status == 404 and body["reason"] == "NotFound"
    assert ("list", "/apis/leaderworkerset.x-k8s.io/v1/leaderworkersets", "leaderworkersets") in fake_api.requests
    assert rbac_rules([r for r in fake_api.requests if r[2] in ("leaderworkersets", "deployments")]) == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]},
        {"apiGroups": ["leaderworkerset.x-k8s.io"], "resources": ["leaderworkersets"], "verbs": ["list"]},
    ]


async def test_recorded_event_repeats_bump_count_on_one_object(tmp_path: Path) -> None:
    async with running_kube_api() as api:
        state = AppState()
        async with running_kube_source(kube_config(api, tmp_path), state, resources=["events"], clock=_clock):
            await wait_for(lambda: "events" in state.kube.synced and api.watch_count() == 1)
            msg = quota_exceeded_message("llama-abc-x", "gpu")
            api.record_event(make_event("llm", ("ReplicaSet", "llama-abc"), "FailedCreate", msg))
            api.record_event(make_event("llm", ("ReplicaSet", "llama-abc"), "FailedCreate", msg),
                             at="2026-01-05T10:00:40Z")
            api.record_event(make_event("llm", ("ReplicaSet", "other"), "FailedCreate", msg))
            await wait_for(lambda: sorted(e.count for e in state.kube.events.values()) == [1, 2])
            assert len(api.objects("Event")) == 2
            bumped = next(e for e in state.kube.events.values() if e.count == 2)
            assert bumped.last_seen == parse_time("2026-01-05T10:00:40Z") and bumped.name == "llama-abc"
