"""GPU ResourceQuota headroom and the pod creations it rejected.

A quota can limit GPUs as `requests.nvidia.com/gpu` (extended resources are quota'd by request),
the bare name, or `limits.<name>` — and per MIG profile.  Per GPU resource the first present of
those keys is taken (they bound the same devices), then resources are summed as devices.

The apiserver's ResourceQuota admission (plugin/pkg/admission/resourcequota/controller.go) denies
with "exceeded quota: %s, requested: %s, used: %s, limited: %s" (quota name, then the *exceeded*
resources only, as name=quantity joined by ","), wrapped by NewForbidden into
`pods "x" is forbidden: ...`; the ReplicaSet/Job controllers report it as a Warning event with
reason FailedCreate and message "Error creating: <that>".
"""

from __future__ import annotations

import re

from .model import EventView, QuotaView
from .resources import DEFAULT, GpuResources, parse_quantity

_PREFIXES = ("requests.", "", "limits.")
_EXCEEDED = re.compile(r"exceeded quota: ([^,]+), requested: (\S+), used: (\S+), limited: (\S+)", re.I)


def _base(key: str) -> str:
    for prefix in ("requests.", "limits."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _gpu_total(amounts: dict[str, object], gpus: GpuResources) -> float | None:
    by_resource: dict[str, float] = {}
    for prefix in _PREFIXES:  # precedence: requests.X, then X, then limits.X
        for key, value in amounts.items():
            base = _base(key)
            if key == prefix + base and base in gpus and base not in by_resource:
                try:
                    by_resource[base] = parse_quantity(value)
                except ValueError:
                    continue
    return sum(by_resource.values()) if by_resource else None


def quota_gpus(quota: QuotaView, gpus: GpuResources = DEFAULT) -> dict[str, float]:
    """{"hard": n, "used": m} for a quota that limits GPUs; {} for one that does not."""
    hard = _gpu_total(quota.hard, gpus)
    if hard is None:
        return {}
    return {"hard": hard, "used": _gpu_total(quota.used, gpus) or 0.0}


def exceeded_quota(message: str) -> tuple[str, list[str]] | None:
    """(quota name, exceeded resource keys) from a quota denial message, or None."""
    m = _EXCEEDED.search(message)
    if m is None:
        return None
    keys = [item.split("=", 1)[0] for item in m.group(2).split(",") if "=" in item]
    return m.group(1).strip(), keys


def is_gpu_quota_rejection(event: EventView, gpus: GpuResources = DEFAULT) -> bool:
    if event.type != "Warning" or event.reason != "FailedCreate":
        return False
    parsed = exceeded_quota(event.message)
    return parsed is not None and any(_base(k) in gpus for k in parsed[1])
