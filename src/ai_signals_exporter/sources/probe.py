"""Placeholder: the probes source lands in its own change."""

from __future__ import annotations

from .base import Source


class ProbeSource(Source):
    name = "probes"

    def enabled(self) -> bool:
        return False
