"""Placeholder: the checkpoints source lands in its own change."""

from __future__ import annotations

from .base import Source


class CheckpointSource(Source):
    name = "checkpoints"

    def enabled(self) -> bool:
        return False
