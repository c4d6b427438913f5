"""dcgm-exporter discovery (and the serving pods' port) from real pod JSON served by the stand-in
API server and read by the real kube source: the GPU Operator's classic and DRA stacks and the
upstream Helm chart are found with no configuration, each on its declared `metrics` port."""

from __future__ import annotations

import json
from pathlib import Path

from ai_signals_exporter.config import Config
from ai_signals_exporter.sources.gpu import DcgmSource
from ai_signals_exporter.sources.serving import target_for_pod
from ai_signals_exporter.state import AppState
from tests.helpers.kube import kube_config, running_kube_api, running_kube_source, wait_for

PODS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "dcgm" / "discovery-pods.json").read_text())["items"]


async def _state_from_api(tmp_path: Path, extra: dict | None = None) -> tuple[Config, AppState]:
    async with running_kube_api() as api:
        for obj in PODS:
            api.add(obj)
        cfg = kube_config(api, tmp_path, extra)
        state = AppState()
        async with running_kube_source(cfg, state):
            await wait_for(lambda: state.kube.pods_synced and len(state.kube.pods) == len(PODS))
    return cfg, state


async def test_default_selectors_find_operator_helm_and_dra_exporters_on_their_ports(tmp_path):
    cfg, state = await _state_from_api(tmp_path)
    by_name = {p.name: p for p in state.kube.pods.values()}
    assert by_name["dcgm-exporter-q8n4d"].ports == (("metrics", 9401),)
    assert by_name["nvidia-dcgm-exporter-hostnet"].ports == ()
    endpoints = {e.url: (e.node, e.own_pod) for e in DcgmSource(cfg, state).endpoints()}
    assert endpoints == {
        "http://127.0.0.2:9400/metrics": ("gpu-a", ("gpu-operator", "nvidia-dcgm-exporter-7xk2p")),
        "http://127.0.0.3:9401/metrics": ("gpu-b", ("monitoring", "dcgm-exporter-q8n4d")),  # Helm, custom port
        "http://127.0.0.4:9400/metrics": ("gpu-c", ("gpu-operator", "nvidia-dcgm-exporter-dra-m2v7c")),
        # no named port declared: the configured port
        "http://127.0.0.5:9400/metrics": ("gpu-d", ("gpu-operator", "nvidia-dcgm-exporter-hostnet")),
    }


async def test_port_name_and_single_selector_are_configurable(tmp_path):
    cfg, state = await _state_from_api(tmp_path, {"gpu": {"discovery": {
        "label_selector": "app.kubernetes.io/name=dcgm-exporter", "port_name": "prom", "port": 9500}}})
    assert [e.url for e in DcgmSource(cfg, state).endpoints()] == ["http://127.0.0.3:9500/metrics"]


async def test_serving_port_annotation_then_named_port_then_default(tmp_path):
    _, state = await _state_from_api(tmp_path)
    by_name = {p.name: p for p in state.kube.pods.values()}
    url = {n: target_for_pod(by_name[n], 8000, "/metrics").url for n in ("vllm-0", "tgi-0", "sglang-0")}
    assert url == {
        "vllm-0": "http://127.0.0.7:8080/metrics",  # port named http
        "tgi-0": "http://127.0.0.8:9000/metrics",  # `metrics` wins over `http`
        "sglang-0": "http://127.0.0.9:31000/metrics",  # the annotation wins over both
    }
    plugin = by_name["nvidia-device-plugin-daemonset-h5c2x"]
    assert target_for_pod(plugin, 8000, "/metrics").url == "http://127.0.0.6:8000/metrics"
