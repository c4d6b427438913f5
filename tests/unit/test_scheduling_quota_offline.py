"""GPU quota headroom, quota rejections from events, and offline GPU capacity."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ai_signals_exporter.scheduling.model import EventView, NodeView, QuotaView
from ai_signals_exporter.scheduling.offline import OFFLINE_REASONS, offline_gpus
from ai_signals_exporter.scheduling.quota import exceeded_quota, is_gpu_quota_rejection, quota_gpus
from ai_signals_exporter.scheduling.resources import GpuResources, parse_quantity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scheduling"
EVENTS = yaml.safe_load((FIXTURES / "quota_events.yaml").read_text())


@pytest.mark.parametrize("case", EVENTS, ids=[c["name"] for c in EVENTS])
def test_failed_create_events(case):
    ev = EventView("e", "team-a", "Warning", "FailedCreate", case["message"], 1)
    assert is_gpu_quota_rejection(ev) is case["gpu"]


def test_exceeded_quota_parse_and_event_filters():
    name, keys = exceeded_quota(EVENTS[1]["message"])
    assert name == "team-a" and keys == ["nvidia.com/gpu", "requests.cpu"]
    msg = EVENTS[0]["message"]
    assert not is_gpu_quota_rejection(EventView("e", "ns", "Normal", "FailedCreate", msg))
    assert not is_gpu_quota_rejection(EventView("e", "ns", "Warning", "FailedScheduling", msg))


def test_quota_gpus_precedence_and_mig():
    q = QuotaView("team-a", "gpu-quota",
                  hard={"requests.nvidia.com/gpu": "8", "limits.nvidia.com/gpu": "16", "requests.cpu": "64"},
                  used={"requests.nvidia.com/gpu": "7", "limits.nvidia.com/gpu": "7"})
    assert quota_gpus(q) == {"hard": 8.0, "used": 7.0}
    mig = QuotaView("team-b", "mig", hard={"nvidia.com/mig-1g.10gb": "7", "nvidia.com/gpu": 1}, used={})
    assert quota_gpus(mig) == {"hard": 8.0, "used": 0.0}
    assert quota_gpus(QuotaView("ns", "cpu", hard={"requests.cpu": "10"})) == {}
    custom = QuotaView("ns", "amd", hard={"requests.amd.com/gpu": "4"}, used={"requests.amd.com/gpu": "1"})
    assert quota_gpus(custom) == {}
    assert quota_gpus(custom, GpuResources(["amd.com/gpu"])) == {"hard": 4.0, "used": 1.0}


def test_quantities():
    assert parse_quantity("8") == 8 and parse_quantity(3) == 3
    assert parse_quantity("500m") == 0.5 and parse_quantity("1k") == 1000
    with pytest.raises(ValueError):
        parse_quantity("lots")
    bad = QuotaView("ns", "q", hard={"requests.nvidia.com/gpu": "lots", "nvidia.com/gpu": "4"})
    assert quota_gpus(bad) == {"hard": 4.0, "used": 0.0}  # the malformed key is skipped


GPU = {"nvidia.com/gpu": 8}


@pytest.mark.parametrize("node,expect", [
    (NodeView("ok", capacity=GPU, allocatable=GPU), {}),
    (NodeView("cordon", capacity=GPU, allocatable=GPU, unschedulable=True), {"cordoned": 8}),
    (NodeView("down", capacity=GPU, allocatable=GPU, unschedulable=True, ready=False), {"not_ready": 8}),
    (NodeView("xid", capacity=GPU, allocatable={"nvidia.com/gpu": 7}), {"unhealthy": 1}),
    (NodeView("upgrade", labels={"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8"}), {"plugin_missing": 8}),
    (NodeView("nfd", labels={"feature.node.kubernetes.io/pci-10de.present": "true"}), {"plugin_missing": 1}),
    (NodeView("cpu"), {}),
    (NodeView("mig", capacity={"nvidia.com/mig-3g.40gb": 2}, allocatable={"nvidia.com/mig-3g.40gb": 1}), {"unhealthy": 1}),
])
def test_offline_gpus(node, expect):
    got = offline_gpus(node)
    assert got == expect
    assert set(got) <= set(OFFLINE_REASONS)
