"""The layouts, one module each, in sniffing order: most specific first.  An HF checkpoint may
hold a DeepSpeed tree, a Lightning `.ckpt` directory a DeepSpeed or DCP one, a Megatron
iteration a DCP one, and everything holds `.pt` files.  `config.Layout` is tested against
`LAYOUTS` (tests/unit/test_checkpoint_layouts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model import Listing
from . import composer, dcp, deepspeed, hf_trainer, lightning, megatron, nemo, orbax, torch_save
from .common import Candidate, Ctx, Names


@dataclass(frozen=True)
class Layout:
    name: str
    sniff: Callable[[Names], bool]
    rule: Callable[[Listing, Ctx], list[Candidate]]


_SNIFF_ORDER = (megatron, nemo, composer, hf_trainer, lightning, deepspeed, orbax, dcp, torch_save)
REGISTRY: dict[str, Layout] = {m.NAME: Layout(m.NAME, m.sniff, m.rule) for m in _SNIFF_ORDER}
LAYOUTS: tuple[str, ...] = tuple(REGISTRY)


def sniff(listing: Listing) -> str:
    """Guess the layout from names alone; "unknown" when nothing matches."""
    names = Names(listing)
    return next((lay.name for lay in REGISTRY.values() if lay.sniff(names)), "unknown")
