"""Placeholder: the checkpoints signal area lands in its own change."""

from __future__ import annotations


def derive(state, config, now):
    return []
