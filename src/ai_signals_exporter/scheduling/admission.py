"""GPU pods the kubelet rejected at admission.

kubelet rejectPod() sets phase=Failed, status.reason and status.message="Pod was rejected: ...":
- `UnexpectedAdmissionError`: the device manager could not allocate (pkg/kubelet/cm/admission
  errors.go: "Allocate failed due to %v, which is unexpected"), e.g. "no healthy devices present;
  cannot allocate unhealthy devices nvidia.com/gpu" (pkg/kubelet/cm/devicemanager/manager.go);
- `OutOf<resource>`: the admission predicate found allocatable short (pkg/kubelet/lifecycle/
  predicate.go: reason "OutOf%s", message "Node didn't have enough resource: %s, requested: %d,
  used: %d, capacity: %d").
The `reason` label is a closed set so a new kubelet reason cannot create series.
"""

from __future__ import annotations

from .model import PodView
from .resources import DEFAULT, GpuResources

ADMISSION_REASONS = ("unexpected_admission_error", "out_of_gpu", "out_of_resource")


def admission_reason(pod: PodView, gpus: GpuResources = DEFAULT) -> str | None:
    """The admission failure class of a failed GPU pod, or None."""
    if pod.phase != "Failed" or not pod.node or gpus.count(pod.requests) <= 0:
        return None
    if pod.reason == "UnexpectedAdmissionError":
        return "unexpected_admission_error"
    if pod.reason.startswith("OutOf"):
        return "out_of_gpu" if pod.reason[len("OutOf"):] in gpus else "out_of_resource"
    return None
