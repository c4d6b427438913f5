"""Hugging Face Trainer: `checkpoint-N/`, `trainer_state.json` written last; `tmp-checkpoint-*`
staging dirs from the versions that had them.

Source: huggingface/transformers src/transformers/trainer.py `_save_checkpoint` (docs/checkpoints.md).
"""

from __future__ import annotations

import re

from ..model import Listing, basename, join
from .common import Candidate, Ctx, Names, newest, oldest, size_of, step_of
from .dcp import nested_dcp_ok
from .deepspeed import ds_inside_ok

NAME = "hf_trainer"
HF_RE = re.compile(r"^checkpoint-(\d+)$")
_RNG_RE = re.compile(r"^rng_state(?:_\d+)?\.pth$")
TMP_PREFIX = "tmp-checkpoint-"


def rule(listing: Listing, ctx: Ctx) -> list[Candidate]:
    out = []
    for d in sorted(listing.dirs()):
        name = basename(d)
        files = listing.under(d)
        if name.startswith(TMP_PREFIX):
            out.append(Candidate(d, step_of(name[len(TMP_PREFIX):]), False, oldest(files), size_of(files)))
            continue
        m = HF_RE.match(name)
        if not m:
            continue
        state = listing.entries.get(join(d, "trainer_state.json"))
        # trainer_state.json is written last; anything newer means the folder was overwritten in
        # place after it (a resumed run saving the same step) and is torn until a new one lands.
        # Except the RNG states: transformers <= 4.35 saved rng_state*.pth after
        # trainer_state.json, and every rank writes its own one without a barrier.
        weights = [e for e in files if not _RNG_RE.match(basename(e.path))]
        complete = (
            state is not None
            and newest(weights) <= state.mtime
            and nested_dcp_ok(listing, d)
            and ds_inside_ok(listing, d)
        )
        ts = state.mtime if complete and state is not None else oldest(
            [e for e in weights if state is None or e.mtime > state.mtime] or files
        )
        out.append(Candidate(d, int(m.group(1)), complete, ts, size_of(files)))
    return out


def sniff(names: Names) -> bool:
    return any(HF_RE.match(d) or d.startswith(TMP_PREFIX) for d in names.dirs)
