"""Money for idle GPUs: a price per GPU-hour per GPU model, and the share a MIG instance takes.

Models are matched loosely because the same GPU is spelt two ways: GPU feature discovery labels
nodes ``NVIDIA-H100-80GB-HBM3`` while dcgm-exporter reports ``NVIDIA H100 80GB HBM3``.
"""

from __future__ import annotations

import re

_SLICES_RE = re.compile(r"^(\d+)g\.")
# Compute slices of a whole GPU in MIG mode: 4 on the A30, 7 on A100/H100/H200/B200.
_FOUR_SLICE_MODELS = ("A30",)


# GFD's single MIG strategy appends the profile to the product (NVIDIA-A100-SXM4-40GB-MIG-1g.5gb)
# and time-slicing without a rename appends -SHARED (k8s-device-plugin internal/lm/resource.go).
_PRODUCT_SUFFIX_RE = re.compile(r"(-mig-\d+g\.\d+gb)?(-shared)?$")


def normalise_model(model: str) -> str:
    return _PRODUCT_SUFFIX_RE.sub("", re.sub(r"[\s_]+", "-", model.strip()).lower())


def price_for(model: str, prices: dict[str, float]) -> float | None:
    """Price of one GPU-hour of `model`, the "default" entry for unlisted models, else None."""
    if not prices:
        return None
    if model in prices:
        return prices[model]
    wanted = normalise_model(model)
    for name, price in prices.items():
        if name != "default" and normalise_model(name) == wanted:
            return price
    return prices.get("default")


def mig_fraction(profile: str, model: str) -> float:
    """Share of the physical GPU a MIG instance holds, from its profile ("3g.40gb" -> 3/7)."""
    m = _SLICES_RE.match(profile)
    if not m:
        return 1.0
    total = 4 if any(t in model.upper() for t in _FOUR_SLICE_MODELS) else 7
    return min(1.0, int(m.group(1)) / total)
