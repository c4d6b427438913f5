"""dcgm-exporter payloads -> one reading per device, across the exporter's label quirks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.gpu.readings import (
    GPU_UTIL,
    WANTED,
    extract_readings,
    instance_of,
    key_of,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dcgm"
REAL = Path(__file__).resolve().parents[3] / "shared" / "real-payloads"


def readings_of(name: str, **kw):
    data = (FIXTURES / name).read_bytes()
    return {r.series_gpu: r for r in extract_readings(parse_families(data, WANTED), **kw)}


def test_operator_payload_normalises_percent_and_keeps_pod_labels():
    rs = readings_of("h100x4-operator.prom")
    assert sorted(rs) == ["0", "1", "2", "3"]
    assert rs["0"].util == pytest.approx(0.97)
    assert rs["0"].pods == (("serving", "llama-70b-0"),)
    assert rs["1"].util == 0 and rs["1"].pods == (("research", "notebook-7f9c"),)
    assert rs["2"].pods == ()
    assert rs["0"].hostname == "h100-node-a"
    assert rs["0"].model == "NVIDIA H100 80GB HBM3"
    assert rs["0"].uuid == "GPU-5b0c1e2a-7d3f-4c1b-9e8a-0f1d2c3b4a51"


def test_blank_gpu_util_falls_back_to_engine_active():
    # gpu 3 has no DCGM_FI_DEV_GPU_UTIL line (blank field dropped by the exporter).
    rs = readings_of("h100x4-operator.prom")
    assert rs["3"].util == pytest.approx(0.031)


def test_no_utilisation_field_means_no_reading_not_idle():
    data = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-x",Hostname="n"} 40\n'
    assert extract_readings(parse_families(data, WANTED)) == []


def test_lowercase_hostname_label():
    rs = readings_of("l40s-hostname-lowercase.prom")
    assert {r.hostname for r in rs.values()} == {"l40s-node-b"}
    assert rs["0"].util == pytest.approx(0.55)


def test_mig_instances_use_engine_active_and_skip_parent():
    rs = readings_of("a100-mig-mixed.prom")
    # three instances of GPU 0 and the whole GPU 1
    assert sorted(rs) == ["0/1", "0/13", "0/5", "1"]
    assert rs["0/1"].is_mig and rs["0/1"].profile == "3g.20gb"
    assert rs["0/1"].util == pytest.approx(0.812)
    assert rs["0/1"].pods == (("serving", "mistral-7b-6d5f"),)
    assert rs["0/5"].util == 0
    # the whole GPU prefers GPU_UTIL (12 %) over engine-active (0.118)
    assert rs["1"].util == pytest.approx(0.12)
    assert not rs["1"].is_mig


def test_mig_ignores_gpu_util_and_parent_device_series():
    labels = 'gpu="0",UUID="GPU-m",modelName="NVIDIA H100 80GB HBM3",Hostname="n"'
    data = (
        f'DCGM_FI_DEV_GPU_UTIL{{{labels},GPU_I_PROFILE="1g.10gb",GPU_I_ID="7"}} 90\n'
        f'DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels},GPU_I_PROFILE="1g.10gb",GPU_I_ID="7"}} 0.01\n'
        # a device-level series of the same, MIG-enabled GPU: counting it would double the silicon
        f'DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{labels}}} 0.5\n'
    ).encode()
    rs = extract_readings(parse_families(data, WANTED))
    assert len(rs) == 1
    assert rs[0].series_gpu == "0/7" and rs[0].util == pytest.approx(0.01)


def test_time_sliced_device_counted_once_with_all_pods():
    rs = readings_of("l4-timesliced.prom")
    assert list(rs) == ["0"]
    r = rs["0"]
    assert r.util == pytest.approx(0.42)
    assert r.pods == (("ci", "embedding-test-x2k"), ("dev", "jupyter-alice"), ("dev", "jupyter-bob"))


def test_federated_payload_uses_exported_labels_only():
    rs = readings_of("h100-federated-exported-labels.prom")
    assert rs["0"].pods == (("serving", "qwen-0"),)
    # gpu 1 only carries the exporter pod's own target labels: it is unallocated
    assert rs["1"].pods == ()
    assert rs["0"].util == pytest.approx(0.88)


def test_own_pod_labels_are_not_a_workload():
    data = b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-o",Hostname="n",namespace="gpu-operator",pod="dcgm-x"} 0\n'
    rs = extract_readings(parse_families(data, WANTED), own_pod=("gpu-operator", "dcgm-x"))
    assert rs[0].pods == ()
    rs = extract_readings(parse_families(data, WANTED))
    assert rs[0].pods == (("gpu-operator", "dcgm-x"),)


def test_old_namespace_labels_and_blank_sentinel():
    rs = readings_of("v100-old-namespace-sentinel.prom")
    assert list(rs) == ["0"]  # gpu 1 reported DCGM's blank sentinel: no data, not 9e18 %
    assert rs["0"].uuid == "GPU-01d00000-4444-4444-8444-444444444400"
    assert rs["0"].pods == (("research", "resnet-train-0"),)
    assert rs["0"].util == pytest.approx(0.73)


def test_no_hostname_uses_default_host_for_identity():
    data = b'DCGM_FI_DEV_GPU_UTIL{gpu="2"} 5\n'
    rs = extract_readings(parse_families(data, WANTED), default_host="node-9")
    assert rs[0].key == ("node-9/2", "") and rs[0].hostname == "node-9"


def test_nan_and_negative_values_are_absent():
    data = b'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="A"} NaN\nDCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="B"} -1\n'
    assert extract_readings(parse_families(data, WANTED)) == []


def test_null_profile_of_old_exporters_is_not_mig():
    labels = {"gpu": "0", "UUID": "GPU-z", "GPU_I_PROFILE": "<<<NULL>>>", "GPU_I_ID": ""}
    assert instance_of(labels) == ("", "")
    assert key_of(labels) == ("GPU-z", "")


# Real payloads from ../shared (present in the development checkout, not on every CI runner).
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-payloads not present")


@needs_real
def test_real_l4_operator_payload():
    data = (REAL / "dcgm-l4-default-counters-gpu-operator.prom").read_bytes()
    rs = extract_readings(parse_families(data, WANTED))
    assert len(rs) == 1
    r = rs[0]
    assert r.hostname == "i-030791dc5a37cd257" and r.model == "NVIDIA L4"
    assert r.uuid == "GPU-c2f76b33-7953-256e-8f33-1343419b1a1c"
    assert r.util == 0 and r.pods == ()


@needs_real
def test_real_h100x8_payload_with_one_allocated_gpu():
    data = (REAL / "dcgm-h100x8-k8s-pod-labels-sampled.prom").read_bytes()
    rs = {r.gpu: r for r in extract_readings(parse_families(data, WANTED))}
    assert sorted(rs) == [str(i) for i in range(8)]
    assert rs["0"].pods == (("dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5"),)
    assert all(rs[str(i)].pods == () for i in range(1, 8))
    assert {r.hostname for r in rs.values()} == {"gpu-node-1"}


@needs_real
def test_real_a30_mig_identity():
    # The excerpt only has SM clocks (no utilisation), so check the identity of every instance.
    data = (REAL / "dcgm-a30-mig-excerpt.prom").read_bytes()
    samples = parse_families(data, {"DCGM_FI_DEV_SM_CLOCK"})["DCGM_FI_DEV_SM_CLOCK"]
    keys = {key_of(labels) for labels, _ in samples}
    assert len(keys) == 7
    assert all(instance_of(labels)[1] == "1g.6gb" for labels, _ in samples)
    assert ("GPU-2d20791a-b4a6-ba59-97f1-e95b99fe5b49", "6") in keys
    assert extract_readings(parse_families(data, WANTED)) == []


@needs_real
def test_real_xid_payload_has_no_utilisation():
    data = (REAL / "dcgm-xid-errors-count-pr239.prom").read_bytes()
    assert GPU_UTIL not in parse_families(data, WANTED)


from hypothesis import given, strategies as st  # noqa: E402


@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 100), st.lists(st.text("abc", min_size=1, max_size=3), max_size=4)),
        min_size=1, max_size=8, unique_by=lambda d: d[0],
    )
)
def test_each_device_counted_once_whatever_the_sharing(devices):
    """Any number of pods sharing a device (time-slicing) yields exactly one reading per device
    with the device value, and every sharer recorded."""
    lines = []
    for index, pct, pods in devices:
        base = f'gpu="{index}",UUID="GPU-{index}",modelName="M",Hostname="h"'
        for i, pod in enumerate(pods or [None]):
            extra = f',namespace="ns",pod="{pod}",vgpu="{i}"' if pod else ""
            lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{base}{extra}}} {pct}")
            lines.append(f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{base}{extra}}} {pct / 100}")
    rs = {r.gpu: r for r in extract_readings(parse_families("\n".join(lines) + "\n", WANTED))}
    assert len(rs) == len(devices)
    for index, pct, pods in devices:
        r = rs[str(index)]
        assert r.util == pytest.approx(pct / 100)
        assert r.pods == tuple(sorted({("ns", p) for p in pods}))


# --- dcgm-exporter 4.8.x (fixtures written from its source; see generate_v48.py) ---


@pytest.mark.parametrize("payload", ["v4.8.2-virtual-gpus.prom", "v4.8.3-virtual-gpus.prom",
                                     "v4.8.3-virtual-gpus-old-namespace.prom"])
def test_busy_time_sliced_gpu_reads_the_device_value_not_per_pod_zeros(payload):
    rs = readings_of(payload)
    assert rs["0"].util == pytest.approx(0.87)
    assert rs["0"].pods == (("serving", "chat-a-0"), ("serving", "chat-b-0"))
    assert rs["0"].pod_uids == ("0f5a0000-aaaa-4aaa-8aaa-00000000000a", "0f5b0000-bbbb-4bbb-8bbb-00000000000b")
    assert rs["0"].hostname == "l4-ts-node"
    assert rs["1"].util == 0 and rs["1"].pods == ()  # the free GPU is kept since 4.8.2


def test_without_a_device_series_the_largest_per_pod_value_wins():
    base = 'gpu="0",UUID="GPU-x",modelName="M",hostname="h"'
    text = (f'DCGM_FI_DEV_GPU_UTIL{{{base},namespace="a",pod="p1",pod_uid="u1"}} 0\n'
            f'DCGM_FI_DEV_GPU_UTIL{{{base},namespace="a",pod="p2",pod_uid="u2"}} 61\n')
    (r,) = extract_readings(parse_families(text, WANTED))
    assert r.util == pytest.approx(0.61)
    assert r.pods == (("a", "p1"), ("a", "p2")) and r.pod_uids == ("u1", "u2")


def test_device_series_wins_over_a_larger_per_pod_value():
    base = 'gpu="0",UUID="GPU-x",modelName="M",hostname="h"'
    text = (f'DCGM_FI_DEV_GPU_UTIL{{{base},pod_name="p1",pod_namespace="a",pod_uid="u1"}} 70\n'
            f'DCGM_FI_DEV_GPU_UTIL{{{base}}} 64\n')
    (r,) = extract_readings(parse_families(text, WANTED))
    assert r.util == pytest.approx(0.64)


def test_relabelled_device_series_is_device_level_despite_the_exporter_pod_label():
    base = 'gpu="0",UUID="GPU-x",modelName="M",Hostname="h",namespace="gpu-operator",pod="nvidia-dcgm-exporter-abc"'
    text = (f'DCGM_FI_DEV_GPU_UTIL{{{base},exported_namespace="a",exported_pod="p1",pod_uid="u1"}} 0\n'
            f'DCGM_FI_DEV_GPU_UTIL{{{base}}} 55\n')
    (r,) = extract_readings(parse_families(text, WANTED))
    assert r.util == pytest.approx(0.55) and r.pods == (("a", "p1"),)


def test_hpc_job_copies_are_one_device():
    rs = readings_of("v4.8.3-hpc-job.prom")
    assert sorted(rs) == ["0", "1"]
    assert rs["0"].util == pytest.approx(0.64) and rs["0"].pods == ()


def test_dra_mig_4_8_2_attributes_every_pod_of_the_parent_4_8_3_per_instance():
    old, new = readings_of("v4.8.2-dra-mig.prom"), readings_of("v4.8.3-dra-mig.prom")
    for rs in (old, new):
        assert sorted(rs) == ["0/1", "0/9", "1"]
        assert rs["0/1"].util == pytest.approx(0.793) and rs["0/9"].util == 0
        assert rs["0/1"].profile == "3g.40gb" and rs["1"].pods == ()
    assert old["0/1"].pods == (("ml", "infer-0"), ("ml", "notebook-0"))  # 4.8.2's DRA+MIG mapping
    assert new["0/1"].pods == (("ml", "infer-0"),) and new["0/9"].pods == (("ml", "notebook-0"),)


# Own-fixture equivalents of the ../shared real-payload checks below (a clone without ../shared
# runs these): a default-counter Operator payload with no pod, one allocated GPU with
# pod_uid="", MIG identity, and a payload with no utilisation field at all.


def test_own_operator_payload_identity_and_pod_uid_blank():
    rs = readings_of("h100x4-operator.prom")
    assert {r.hostname for r in rs.values()} == {"h100-node-a"}
    assert rs["0"].pods == (("serving", "llama-70b-0"),) and rs["0"].pod_uids == ()
    assert all(rs[g].pods == () for g in ("2", "3"))


def test_own_mig_identity_and_no_reading_without_utilisation():
    text = (FIXTURES / "a100-mig-mixed.prom").read_bytes()
    samples = parse_families(text, {"DCGM_FI_DEV_SM_CLOCK"})["DCGM_FI_DEV_SM_CLOCK"]
    keys = {key_of(labels) for labels, _ in samples}
    assert ("GPU-a1b2c3d4-0000-4000-8000-00000000a100", "13") in keys and len(keys) == 4
    assert extract_readings(parse_families(
        b"\n".join(line for line in text.splitlines() if line.startswith(b"DCGM_FI_DEV_SM_CLOCK")) + b"\n",
        WANTED)) == []


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.prom")))
def test_own_dcgm_payloads_are_no_serving_engine(name):
    # A dcgm-exporter scraped as a serving target is not mistaken for an inference engine (the
    # same check runs on ../shared's real payloads in test_engines.py where they exist).
    from ai_signals_exporter.engines import UnknownEngine, extract

    with pytest.raises(UnknownEngine):
        extract((FIXTURES / name).read_bytes(), "auto")
