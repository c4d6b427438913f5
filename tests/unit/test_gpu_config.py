"""The `gpu` config section: defaults and the errors a user sees."""

from __future__ import annotations

import pytest

from ai_signals_exporter.config import ConfigError, load_config_text


def test_defaults_match_gpu_operator_and_helm_chart():
    g = load_config_text("").gpu
    assert g.discovery.selectors == [
        "app=nvidia-dcgm-exporter", "app.kubernetes.io/name=dcgm-exporter", "app=nvidia-dcgm-exporter-dra",
    ]
    assert g.discovery.port_name == "metrics"
    assert g.resource_names == ("nvidia.com/gpu",)
    assert (g.discovery.port, g.discovery.path) == (9400, "/metrics")
    assert (g.idle_threshold, g.idle_after) == (0.05, 600.0)
    assert (g.resource_name, g.taint_key) == ("nvidia.com/gpu", "nvidia.com/gpu")


def test_full_section_parses():
    g = load_config_text(
        """
gpu:
  interval: 30s
  idle_threshold: 0.1
  idle_after: 1h
  price_per_gpu_hour: {NVIDIA-H100-80GB-HBM3: 4.5, default: 1}
  dcgm_targets:
    - {url: "http://10.0.1.7:9400/metrics", node: gpu-1}
    - url: https://dcgm.example/metrics
  discovery: {label_selector: "app.kubernetes.io/name in (dcgm-exporter,nvidia-dcgm-exporter)", namespaces: [gpu-operator]}
"""
    ).gpu
    assert g.interval == 30 and g.idle_after == 3600
    assert g.dcgm_targets[0].node == "gpu-1" and g.dcgm_targets[1].node is None
    assert g.price_per_gpu_hour["default"] == 1.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("gpu: {dcgm_targets: [{url: 'ftp://x'}]}", "gpu.dcgm_targets.0"),
        ("gpu: {dcgm_targets: [{url: 'http://x', nod: a}]}", "gpu.dcgm_targets.0.nod: unknown key"),
        ("gpu: {discovery: {label_selector: 'app in (('}}", "gpu.discovery"),
        ("gpu: {discovery: {path: metrics}}", "gpu.discovery.path"),
        ("gpu: {discovery: {port: 70000}}", "gpu.discovery.port"),
        ("gpu: {price_per_gpu_hour: {default: -1}}", "gpu.price_per_gpu_hour.default"),
        ("gpu: {idle_threshold: 5}", "gpu.idle_threshold"),
        ("gpu: {idle_after: 10}", "gpu.idle_after"),
    ],
)
def test_errors_name_the_key(text, message):
    with pytest.raises(ConfigError) as exc:
        load_config_text(text)
    assert message in str(exc.value)
