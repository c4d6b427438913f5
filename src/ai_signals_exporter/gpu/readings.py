"""From parsed dcgm-exporter samples to one utilisation reading per GPU (or MIG instance).

dcgm-exporter quirks handled here, so nothing downstream has to know them:

- ``Hostname`` (every release up to 4.8.x) and ``hostname`` (main since #655) name the host.
- ``UUID`` becomes ``uuid`` and ``pod/namespace`` become ``pod_name/pod_namespace`` with
  ``--use-old-namespace``.
- MIG instances carry ``GPU_I_ID``/``GPU_I_PROFILE`` and have no ``DCGM_FI_DEV_GPU_UTIL``; their
  utilisation is ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (already a 0..1 ratio).  Old exporters print
  ``GPU_I_PROFILE="<<<NULL>>>"`` for non-MIG series.
- Time-slicing (``--kubernetes-virtual-gpus``) repeats the device value once per sharing pod: a
  device is one reading keyed by (UUID, GPU_I_ID) whatever the number of series, with all pods.
  From 4.8.2 (#594, ``internal/pkg/transformation/kubernetes.go`` createPerProcessMetrics)
  ``GPU_UTIL`` and ``FB_USED`` come once per device *without* pod labels and once per pod with
  that pod's process value, "0" when the process-to-pod mapping fails (buildIdlePodValues).  The
  device's utilisation is therefore the series without pod labels, else the maximum over the
  pods' series; per-pod values only say which pods hold the device.
- Blank DCGM fields are dropped by the exporter (the series is absent); old releases leaked the
  int64 blank sentinels (~9.2e18), which are treated as absent too.
- Payloads that went through Prometheus (federation, a relabelling proxy) carry the workload in
  ``exported_pod/exported_namespace`` while ``pod/namespace`` name the exporter pod itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..expo.parse import Samples

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent, whole devices only
GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # ratio, whole devices and MIG instances
WANTED = frozenset({GPU_UTIL, GR_ENGINE_ACTIVE})

# DCGM's blank values are int64/float sentinels near 2**63 (and 1e38-ish for floats); no real
# utilisation reading is anywhere near this.
_SENTINEL_FLOOR = 1e6
_NULL_VALUES = frozenset({"", "<<<NULL>>>"})

GpuKey = tuple[str, str]  # (uuid or "node/index" fallback, GPU_I_ID or "")


@dataclass(slots=True, frozen=True)
class GpuReading:
    """One GPU or MIG instance at one scrape.  `util` is 0..1."""

    key: GpuKey
    gpu: str  # NVML index as exported ("0"); the per-GPU series label
    uuid: str
    instance: str  # GPU_I_ID, "" for a whole GPU
    profile: str  # GPU_I_PROFILE ("1g.10gb"), "" for a whole GPU
    model: str  # dcgm modelName
    hostname: str
    util: float
    # (namespace, pod) of every pod dcgm attributes the device to, sorted; () when unallocated.
    pods: tuple[tuple[str, str], ...] = ()
    # pod_uid of each entry of `pods` ("" where the exporter does not print it); () when none is.
    pod_uids: tuple[str, ...] = ()

    @property
    def is_mig(self) -> bool:
        return self.instance != ""

    @property
    def series_gpu(self) -> str:
        """The `gpu` label: the index for a whole GPU, "index/GPU_I_ID" for a MIG instance (the
        GPU/GI notation of nvidia-smi and of MIG device paths), so instances stay distinct
        series without adding a label to the contract."""
        return f"{self.gpu}/{self.instance}" if self.instance else self.gpu


def _label(labels: dict[str, str], *names: str) -> str:
    for name in names:
        value = labels.get(name)
        if value is not None and value not in _NULL_VALUES:
            return value
    return ""


def hostname_of(labels: dict[str, str]) -> str:
    return _label(labels, "Hostname", "hostname")


def instance_of(labels: dict[str, str]) -> tuple[str, str]:
    """(GPU_I_ID, GPU_I_PROFILE), both "" on a whole GPU."""
    return _label(labels, "GPU_I_ID"), _label(labels, "GPU_I_PROFILE")


def key_of(labels: dict[str, str], default_host: str = "") -> GpuKey:
    """Identity of a device: the UUID is globally unique; without one (a stripped payload) fall
    back to host + index, which is unique within a cluster."""
    # Plain lookups: this runs for every sample of every payload.
    uuid = labels.get("UUID") or labels.get("uuid") or ""
    instance = labels.get("GPU_I_ID") or ""
    if instance in _NULL_VALUES:
        instance = ""
    if not uuid:
        uuid = f"{hostname_of(labels) or default_host}/{_label(labels, 'gpu')}"
    return (uuid, instance)


def is_relabelled(samples: Samples) -> bool:
    """True when the payload's pod labels were moved aside by Prometheus (honor_labels: false):
    then `pod`/`namespace` name the scraped exporter pod, never the workload."""
    for series in samples.values():
        for labels, _ in series:
            if "exported_pod" in labels or "exported_namespace" in labels:
                return True
    return False


def pod_of(labels: dict[str, str], relabelled: bool, own_pod: tuple[str, str] | None) -> tuple[str, str] | None:
    """The workload pod a series is attributed to, or None.

    In a relabelled payload only exported_* count: a series without them belongs to an
    unallocated GPU even though it carries the exporter's own `pod` target label.  `own_pod` is the
    dcgm-exporter pod we discovered; a series naming it is not a workload either.
    """
    if relabelled:
        pod = labels.get("exported_pod")
        if not pod:
            return None
        ns = labels.get("exported_namespace", "")
    else:
        pod = labels.get("pod") or labels.get("pod_name")
        if not pod:
            return None
        ns = labels.get("namespace") or labels.get("pod_namespace") or ""
    if own_pod is not None and (ns, pod) == own_pod:
        return None
    return (ns, pod)


def _usable(value: float) -> bool:
    return not math.isnan(value) and 0 <= value < _SENTINEL_FLOOR


def is_per_pod(labels: dict[str, str], relabelled: bool) -> bool:
    """A per-pod copy of a device series (with or without --use-old-namespace, relabelled or
    not).  `pod` alone is not enough: in a relabelled payload it names the exporter."""
    if labels.get("pod_name") or labels.get("exported_pod") or labels.get("pod_uid"):
        return True
    return not relabelled and bool(labels.get("pod"))


@dataclass(slots=True)
class _Acc:
    """One device: per field (0 = GPU_UTIL, 1 = engine-active) the device-level value, which
    wins, and the largest per-pod copy."""

    labels: dict[str, str]
    device: list  # [util_pct, engine], None where absent
    per_pod: list
    pods: set[tuple[str, str]] | None = None
    # pod -> pod_uid where the exporter names it, so a recreated pod of the same name is new.
    uids: dict[tuple[str, str], str] | None = None

    def value(self, field: int) -> float | None:
        v = self.device[field]
        return v if v is not None else self.per_pod[field]


def extract_readings(
    samples: Samples, own_pod: tuple[str, str] | None = None, default_host: str = ""
) -> list[GpuReading]:
    """One reading per device (UUID + GPU_I_ID).  Devices with neither utilisation field (DCP
    metrics off and MIG, or blank fields) produce no reading: unknown is not idle.
    `default_host` names the node when the payload has no host label (``--no-hostname``)."""
    relabelled = is_relabelled(samples)
    acc: dict[GpuKey, _Acc] = {}
    for field, name in enumerate((GPU_UTIL, GR_ENGINE_ACTIVE)):
        for labels, value in samples.get(name, ()):
            if not _usable(value):
                continue
            key = key_of(labels, default_host)
            a = acc.get(key)
            if a is None:
                a = acc[key] = _Acc(labels, [None, None], [None, None])
            # Two device-level series (hpc_job copies, old exporters) carry the same value.
            slot = a.per_pod if is_per_pod(labels, relabelled) else a.device
            prev = slot[field]
            if prev is None or value > prev:
                slot[field] = value
            pod = pod_of(labels, relabelled, own_pod)
            if pod is not None:
                if a.pods is None:
                    a.pods = set()
                a.pods.add(pod)
                uid = labels.get("pod_uid")
                if uid:
                    if a.uids is None:
                        a.uids = {}
                    a.uids[pod] = uid
    # A MIG-enabled GPU is its instances: a device-level reading next to them would count the
    # same silicon twice.
    mig_parents = {uuid for uuid, instance in acc if instance}
    out: list[GpuReading] = []
    for key, a in acc.items():
        if not key[1] and key[0] in mig_parents:
            continue
        instance, profile = instance_of(a.labels)
        util_pct, engine = a.value(0), a.value(1)
        if instance:
            # GPU_UTIL is not defined for a MIG instance; a value there would be the parent's.
            util = engine
        else:
            util = util_pct / 100.0 if util_pct is not None else engine
        if util is None:
            continue
        out.append(
            GpuReading(
                key=key,
                gpu=_label(a.labels, "gpu"),
                uuid=_label(a.labels, "UUID", "uuid"),
                instance=instance,
                profile=profile,
                model=_label(a.labels, "modelName"),
                hostname=hostname_of(a.labels) or default_host,
                util=min(max(util, 0.0), 1.0),
                pods=tuple(sorted(a.pods)) if a.pods else (),
                pod_uids=tuple(a.uids.get(p, "") for p in sorted(a.pods)) if a.uids and a.pods else (),
            )
        )
    return out
