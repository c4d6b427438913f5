"""Placeholder: the gpu source lands in its own change."""

from __future__ import annotations

from .base import Source


class DcgmSource(Source):
    name = "gpu"

    def enabled(self) -> bool:
        return False
